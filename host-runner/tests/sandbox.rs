//! What the sandbox refuses: a socket of the guest's own, memory past the
//! cap, computing without ever calling the host. The host survives each and
//! says why the guest ended (exit 2).

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Proc, TIMEOUT, assert_exit, host_runner, module};

fn quiet_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("read timeout");
    socket
}

#[test]
fn a_guest_that_opens_its_own_socket_is_refused() {
    let named = quiet_socket();
    let elsewhere = quiet_socket();
    let mut probe = Proc::spawn(
        "probe-socket",
        host_runner(
            &module("probe-socket"),
            named.local_addr().expect("addr").port(),
            "probe",
        ),
    );
    probe.send_line(&elsewhere.local_addr().expect("addr").to_string());
    let status = probe.wait_exit(TIMEOUT);
    assert_exit(&mut probe, status, 2);
    let stderr = probe.stderr();
    assert!(
        stderr.contains("wasi:sockets/"),
        "the refusal names wasi:sockets:\n{}",
        probe.transcript()
    );
    assert!(
        !probe.stdout_lines().iter().any(|l| l.contains("ESCAPED")),
        "{}",
        probe.transcript()
    );
    let mut buf = [0u8; 64];
    assert!(
        elsewhere.recv_from(&mut buf).is_err(),
        "the guest reached another address"
    );
    assert!(
        named.recv_from(&mut buf).is_err(),
        "the guest sent on its own"
    );
}

#[test]
fn a_guest_that_allocates_past_the_cap_fails_alone() {
    let mut probe = Proc::spawn(
        "probe-alloc",
        host_runner(&module("probe-alloc"), 9, "probe"),
    );
    probe.close_stdin();
    let status = probe.wait_exit(TIMEOUT);
    assert_exit(&mut probe, status, 2);
    // It got close to the cap, no further.
    probe.expect("allocated 56 MiB");
    let lines = probe.stdout_lines();
    assert!(
        !lines.iter().any(|l| l.contains("allocated 64 MiB")),
        "{}",
        probe.transcript()
    );
    let stderr = probe.stderr();
    assert!(
        stderr.contains("the cap is 64 MiB"),
        "the host says why:\n{}",
        probe.transcript()
    );
}

#[test]
fn a_guest_that_never_calls_the_host_is_interrupted() {
    let mut probe = Proc::spawn("probe-spin", host_runner(&module("probe-spin"), 9, "probe"));
    probe.close_stdin();
    probe.expect("spinning");
    let spinning = Instant::now();
    let status = probe.wait_exit(Duration::from_secs(10));
    let stopped_after = spinning.elapsed();
    assert_exit(&mut probe, status, 2);
    // What stopped it is the host's limit (its message), not the test's
    // patience; how long that took is a figure, not a pass mark.
    assert!(
        probe.stderr().contains("without calling the host"),
        "{}",
        probe.transcript()
    );
    eprintln!("a spinning guest was stopped {stopped_after:?} after it began to spin");
}
