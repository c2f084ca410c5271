//! Sandbox probe: allocates (and touches) memory 1 MiB at a time until the
//! allocator fails, printing its progress. Under host-runner's 64 MiB cap
//! the allocator's failure aborts the guest; the host must survive it and
//! say why the guest ended.

fn main() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![0xa5; 1 << 20]);
        if blocks.len().is_multiple_of(8) {
            println!("allocated {} MiB", blocks.len());
        }
    }
}
