//! Sandbox probe: a scriptable guest that shows exactly what crosses the
//! host's boundary. Commands, one per input line:
//!
//! * `send TEXT`: sends TEXT to the server; prints `sent` or `send-error E`;
//! * `send-bytes N`: sends N bytes of `x`; prints the same;
//! * `limits`: prints the host's limits;
//! * `quit`: exits 0.
//!
//! Every datagram is printed as `datagram LEN TEXT`, every network error as
//! `network-error E`; at end of input it exits 0.

use wasi_client::host::{self, Event};

fn main() {
    println!("ready");
    loop {
        match host::next_event(1_000) {
            Event::Datagram(d) => {
                println!("datagram {} {}", d.len(), String::from_utf8_lossy(&d));
            }
            Event::NetworkError(e) => println!("network-error {e:?}"),
            Event::Timeout => {}
            Event::EndOfInput => return,
            Event::Line(line) => {
                let (command, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                match command {
                    "send" => report(host::send(rest.as_bytes())),
                    "send-bytes" => {
                        let n = rest.parse().unwrap_or(0);
                        report(host::send(&vec![b'x'; n]));
                    }
                    "limits" => println!("{:?}", host::limits()),
                    "quit" => return,
                    _ => println!("unknown command {command:?}"),
                }
            }
        }
    }
}

fn report(result: Result<(), host::NetError>) {
    match result {
        Ok(()) => println!("sent"),
        Err(e) => println!("send-error {e:?}"),
    }
}
