//! Sandbox probe: computes forever without calling the host. host-runner's
//! epoch watchdog must interrupt it within 2 s.

fn main() {
    println!("spinning");
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
