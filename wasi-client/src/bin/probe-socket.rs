//! Sandbox probe: tries to reach the network on its own, around the host.
//!
//! It reads a target address (`IP:PORT`) from the first input line and
//! sends "escaped" there from a UDP socket of its own. Because std's
//! `UdpSocket` imports `wasi:sockets`, which host-runner does not link, the
//! host must refuse to start this component at all; if a host ever did link
//! it, the socket calls must fail, and the probe says which way it went.

use wasi_client::host::{self, Event};

fn main() {
    let target = loop {
        match host::next_event(1_000) {
            Event::Line(line) => break line,
            Event::EndOfInput => return,
            _ => {}
        }
    };
    match std::net::UdpSocket::bind("0.0.0.0:0") {
        Ok(socket) => match socket.send_to(b"escaped", target.as_str()) {
            Ok(n) => println!("ESCAPED: sent {n} bytes to {target}"),
            Err(e) => println!("denied at send: {e}"),
        },
        Err(e) => println!("denied at bind: {e}"),
    }
}
