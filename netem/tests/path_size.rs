//! Acceptance: probing the path for larger datagrams (PROTOCOL.md §3.9).
//! On a path that carries 1452 bytes (a 1500-byte Ethernet MTU under IPv6
//! and UDP) the endpoints settle at 1452 and only probes ever go above it;
//! when a route change stops large datagrams mid-session, the channels fall
//! back to 1200 bytes and nothing is lost.

use udpchat_core::wire::{BASE_DATAGRAM, Datagram, Frame, MAX_DATAGRAM};
use udpchat_netem::LinkConfig;
use udpchat_sim::{SERVER, SentDatagram, World, WorldConfig, ms, secs};

/// Every endpoint probes, up to the protocol's largest datagram.
fn probing(seed: u64, link: LinkConfig) -> WorldConfig {
    let mut c = WorldConfig::new(seed).with_link(link).recording();
    c.server.channel.max_datagram = MAX_DATAGRAM;
    c.client.channel.max_datagram = MAX_DATAGRAM;
    c
}

fn is_probe(d: &SentDatagram) -> bool {
    d.plain.as_deref().is_some_and(|p| {
        Datagram::decode(p).is_ok_and(|d| d.frames().any(|f| matches!(f, Frame::Probe(_))))
    })
}

fn text(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

#[test]
fn a_1500_byte_path_settles_at_1452_bytes() {
    let link = LinkConfig::default().with_delay(ms(15)).with_mtu(1452);
    let mut w = World::with_clients(probing(0x1452, link), 3);
    w.login_all(secs(30));
    // Probing runs after the first acknowledgements: 1452 is answered,
    // 8952 is tried three times and lost.
    let t = w.now;
    w.run_until(t + secs(5));
    for i in 0..3 {
        assert_eq!(w.client(i).path_max(), 1452, "{}", w.peers[i].name);
    }
    // Messages of 1,200 bytes: two segments each (1,100 bytes and the
    // rest), which fit one 1452-byte datagram but not one of 1200.
    let start = w.now;
    let want: Vec<String> = (0..10).map(|k| format!("{k} {}", text(1_200))).collect();
    for m in &want {
        w.send_pm(0, m).unwrap();
    }
    assert!(w.run_until_cond(start + secs(10), |w| w.deliveries == 20));
    for i in [1, 2] {
        let got: Vec<String> = w.messages_of(i).into_iter().map(|(_, m)| m.text).collect();
        assert_eq!(got, want);
    }
    // They went in datagrams above 1200 bytes...
    let sent_late: Vec<&SentDatagram> = w.log.iter().filter(|d| d.at >= start).collect();
    assert!(sent_late.iter().any(|d| d.bytes.len() > BASE_DATAGRAM));
    // ...and nothing but a probe was ever larger than the path: no data
    // was lost to the MTU.
    for d in &w.log {
        assert!(
            d.bytes.len() <= 1452 || is_probe(d),
            "{} bytes",
            d.bytes.len()
        );
    }
    let total = w.net.total();
    assert!(total.too_large > 0, "the 8952-byte probes were dropped");
    assert_eq!(
        total.too_large,
        w.log.iter().filter(|d| d.bytes.len() > 1452).count() as u64
    );
}

#[test]
fn a_route_that_stops_carrying_large_datagrams_costs_nothing_but_time() {
    let link = LinkConfig::default().with_delay(ms(10));
    let mut w = World::with_clients(probing(0xB1AC, link), 3);
    w.login_all(secs(30));
    let t = w.now;
    w.run_until(t + secs(3));
    assert_eq!(w.client(0).path_max(), MAX_DATAGRAM);
    // The route changes: only 1200 bytes get through from now on.
    w.net.set_default_link(link.with_mtu(BASE_DATAGRAM));
    let long = text(50_000);
    let start = w.now;
    w.send_pm(0, &long).unwrap();
    assert!(
        w.run_until_cond(start + secs(10), |w| w.deliveries == 2),
        "{} deliveries",
        w.deliveries
    );
    for i in [1, 2] {
        assert_eq!(w.messages_of(i)[0].1.text, long);
    }
    // The sender fell back (its large datagrams timed out twice), and so
    // did the server's channels to the receivers: large datagrams were
    // lost, and the last of each sender's data went in small ones.
    assert_eq!(w.client(0).path_max(), BASE_DATAGRAM);
    assert!(w.net.total().too_large > 0);
    let with_data: Vec<&SentDatagram> = w
        .log
        .iter()
        .filter(|d| d.at >= start && !d.segments().is_empty())
        .collect();
    for from in [w.peers[0].addr, SERVER] {
        let last: Vec<usize> = with_data
            .iter()
            .filter(|d| d.from == from)
            .rev()
            .take(5)
            .map(|d| d.bytes.len())
            .collect();
        assert_eq!(last.len(), 5);
        assert!(last.iter().all(|&n| n <= BASE_DATAGRAM), "{last:?}");
    }
    // Delivered well before the idle timeout: two RTOs and the resends.
    assert!(w.now < start + secs(5), "took {:?}", w.now - start);
}
