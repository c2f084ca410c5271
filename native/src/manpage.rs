//! Manual pages from the binaries' own clap definitions (clap_mangen):
//! `chatclient --generate-man DIR`, run by `ci/man.sh`.

use std::io;
use std::path::Path;

/// Writes `NAME.1` for `cmd`, and a page for each visible subcommand
/// (`NAME-SUB.1`), into `dir` (created if needed).
pub fn write_pages(cmd: clap::Command, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cmd, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_roff() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = clap::Command::new("demo")
            .about("A demo")
            .subcommand(clap::Command::new("sub").about("A subcommand"));
        write_pages(cmd, dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("demo.1")).unwrap();
        assert!(page.starts_with(".ie"), "{page}");
        assert!(page.contains("A demo"));
        assert!(dir.path().join("demo-sub.1").exists());
    }
}
