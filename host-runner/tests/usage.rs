//! Command-line behaviour that needs no server.

mod common;

use common::{Proc, TIMEOUT, command};

#[test]
fn a_missing_module_is_a_clear_error() {
    let mut cmd = command(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args([
        "--module",
        "/nonexistent/client.wasm",
        "127.0.0.1",
        "9",
        "alice",
    ]);
    let mut p = Proc::spawn("host-runner", cmd);
    let status = p.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(2), "{}", p.transcript());
    assert!(
        p.stderr().contains("/nonexistent/client.wasm"),
        "{}",
        p.transcript()
    );
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm not really").expect("write");
    let mut cmd = command(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("--module")
        .arg(&bogus)
        .arg("--no-cache")
        .args(["127.0.0.1", "9", "alice"]);
    let mut p = Proc::spawn("host-runner", cmd);
    let status = p.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(2), "{}", p.transcript());
    assert!(
        p.stderr().contains("not a valid component"),
        "{}",
        p.transcript()
    );
    assert!(!p.stderr().contains("panicked"), "{}", p.transcript());
}

#[test]
fn missing_arguments_print_usage() {
    let mut p = Proc::spawn("host-runner", command(env!("CARGO_BIN_EXE_host-runner")));
    let status = p.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(2), "{}", p.transcript());
    assert!(p.stderr().contains("Usage"), "{}", p.transcript());
}
