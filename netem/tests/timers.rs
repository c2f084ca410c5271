//! Acceptance: time only moves when the test moves it. After handling a
//! timeout, the next deadline is later or there is output: no busy loop, no
//! timer that fires early. The harness asserts this on every
//! `handle_timeout` of every run; the tests here make sure the property is
//! exercised hard, and check the other side of it: a wakeup before a
//! deadline does nothing, and idle sessions wake rarely.

use udpchat_core::time::Instant;
use udpchat_netem::LinkConfig;
use udpchat_sim::{Plan, World, WorldConfig, ms, secs};

fn lossy() -> LinkConfig {
    udpchat_sim::harsh_link()
}

#[test]
fn lossy_run_handles_every_timeout_without_spinning() {
    let mut w = World::with_clients(WorldConfig::new(0x7153).with_link(lossy()), 3);
    w.login_all(secs(30));
    let plan = Plan::mixed(3, 300);
    let run = plan.run(&mut w, ms(10), secs(60));
    plan.check(&w);
    // The property was checked many times, server and clients...
    assert!(w.timeouts > 100, "only {} timeouts handled", w.timeouts);
    assert!(
        w.server_timeouts > 10,
        "only {} server timeouts",
        w.server_timeouts
    );
    // ... and in its strict form: after handling a timeout and sending what
    // it produced, the deadline was always in the future.
    assert_eq!(w.stuck_after_output, 0);
    // Steps are bounded by the work: a handful per datagram.
    let secs_run = (run.done - Instant::ZERO).as_micros().div_ceil(1_000_000);
    assert!(
        w.steps <= 2 * w.datagrams_sent + 10 * secs_run,
        "{} steps for {} datagrams",
        w.steps,
        w.datagrams_sent
    );
}

/// Calls `handle_timeout(now)` on every endpoint whose deadline is still
/// ahead, and checks that it did nothing; returns how many were poked.
fn poke_early(w: &mut World) -> usize {
    let now = w.now;
    let mut poked = 0;
    for i in 0..w.peers.len() {
        let c = w.peers[i].client_mut();
        let Some(deadline) = c.poll_timeout() else {
            continue;
        };
        if deadline <= now {
            continue;
        }
        c.handle_timeout(now);
        assert_eq!(
            c.poll_transmit(now, &mut Vec::new()),
            None,
            "an early wakeup sent something"
        );
        assert_eq!(c.poll_event(), None, "an early wakeup made an event");
        assert_eq!(
            c.poll_timeout(),
            Some(deadline),
            "an early wakeup moved the deadline"
        );
        poked += 1;
    }
    if let Some(deadline) = w.server.poll_timeout()
        && deadline > now
    {
        w.server.handle_timeout(now);
        assert_eq!(w.server.poll_transmit(now, &mut Vec::new()), None);
        assert_eq!(w.server.poll_event(), None);
        assert_eq!(w.server.poll_timeout(), Some(deadline));
        poked += 1;
    }
    poked
}

#[test]
fn early_wakeups_do_nothing() {
    // A real driver may wake before a deadline (a datagram for someone else,
    // a signal). Handling a timeout early must not send, emit or move the
    // deadline. Poke every endpoint between every two steps of a lossy run.
    let mut w = World::with_clients(WorldConfig::new(0xEA71).with_link(lossy()), 3);
    w.login_all(secs(30));
    let plan = Plan::mixed(3, 90);
    let start = w.now + ms(100);
    let end = start + secs(30);
    let mut checked = 0;
    let mut k = 0;
    loop {
        checked += poke_early(&mut w);
        let next = w.next_wakeup();
        if let Some(m) = plan.msgs.get(k) {
            let send_at = start + ms(50).saturating_mul(k as u64);
            if next.is_none_or(|n| n > send_at) {
                w.run_until(send_at);
                match m.to {
                    Some(t) => {
                        let to = w.peers[t].name.clone();
                        w.send_dm(m.sender, &to, &m.text).unwrap();
                    }
                    None => w.send_pm(m.sender, &m.text).unwrap(),
                }
                k += 1;
                continue;
            }
        }
        match next {
            Some(n) if n <= end => {
                w.step();
            }
            _ => break,
        }
    }
    assert!(checked > 2_000, "only {checked} early wakeups checked");
    plan.check(&w);
}

#[test]
fn idle_sessions_wake_rarely() {
    let link = LinkConfig::default().with_delay(ms(20));
    let mut w = World::with_clients(WorldConfig::new(0x1D1E), 3);
    w.net.set_default_link(link);
    w.login_all(secs(5));
    w.run_for(secs(5));
    let (steps, sent, server_timeouts) = (w.steps, w.datagrams_sent, w.server_timeouts);
    let minute = secs(60);
    w.run_for(minute);
    // Each client pings once a second and the server acknowledges: six
    // datagrams a second, about nine wakeups, and no server timer at all.
    let sent = w.datagrams_sent - sent;
    let steps = w.steps - steps;
    assert!(sent <= 6 * 61, "{sent} datagrams in an idle minute");
    assert!(sent >= 6 * 59, "keep-alives stopped: {sent} datagrams");
    assert!(steps <= 9 * 61, "{steps} wakeups in an idle minute");
    assert_eq!(
        w.server_timeouts, server_timeouts,
        "the server woke for nothing"
    );
    assert!((0..3).all(|i| w.client(i).is_logged_in()));
}

#[test]
fn zero_latency_world_settles_at_each_instant() {
    // Perfect links with no delay and password answers with none: whole
    // exchanges happen at one instant, and must still come to rest there.
    let mut config = WorldConfig::new(0);
    config.password_delay = ms(0);
    let mut w = World::with_clients(config, 3);
    w.login_all(secs(1));
    assert_eq!(w.now, Instant::ZERO, "logged in without the clock moving");
    let plan = Plan::mixed(3, 300);
    let run = plan.run(&mut w, ms(0), secs(1));
    plan.check(&w);
    assert_eq!(run.done, Instant::ZERO);
    assert_eq!(w.retransmissions, 0);
    // Then only keep-alives move the clock.
    w.run_for(secs(10));
    assert!((0..3).all(|i| w.client(i).is_logged_in()));
}
