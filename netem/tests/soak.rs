//! Soak runs over many seeds and link settings, on demand:
//! `SEEDS=500 cargo test --release -p udpchat-netem --test soak -- --ignored`.
//! Each run checks the same properties as the acceptance tests (exactly
//! once, in order, confirmations, the harness's timer checks).

use udpchat_core::time::Duration;
use udpchat_netem::{GilbertElliott, LinkConfig};
use udpchat_sim::{Plan, SplitMix, World, WorldConfig, ms, secs};

fn seeds() -> u64 {
    std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
}

/// A link drawn from `rng`: anything from perfect to bad, though not so bad
/// that twelve keep-alive round trips in a row may well all be lost (then
/// the idle timeout rightly ends a session, and the run proves nothing).
fn random_link(rng: &mut SplitMix) -> LinkConfig {
    let mut pick = |n: u64| rng.next_u64() % n;
    let mut link = LinkConfig::lossy(pick(26) as f64 / 100.0)
        .with_duplicate(pick(30) as f64 / 100.0)
        .with_delay(ms(pick(80)))
        .with_jitter(ms(pick(250)))
        .with_reorder(pick(20) as f64 / 100.0, ms(pick(300)));
    if pick(3) == 0 {
        link = link.with_burst(GilbertElliott::new(
            (1 + pick(3)) as f64 / 100.0,
            (15 + pick(30)) as f64 / 100.0,
            (50 + pick(40)) as f64 / 100.0,
        ));
    }
    link
}

#[test]
#[ignore = "soak test; run on demand"]
fn random_links() {
    for seed in 0..seeds() {
        let mut rng = SplitMix::new(seed);
        let up = random_link(&mut rng);
        let down = random_link(&mut rng);
        let clients = 2 + (rng.next_u64() % 4) as usize;
        let mut config = WorldConfig::new(seed);
        config.password_delay = ms(rng.next_u64() % 1_500);
        let mut w = World::new(config);
        for i in 0..clients {
            w.add_client(&udpchat_sim::peer_name(i));
            let a = w.peers[i].addr;
            w.net.set_link(a, udpchat_sim::SERVER, up);
            w.net.set_link(udpchat_sim::SERVER, a, down);
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            w.login_all(secs(60));
            let plan = Plan::mixed(clients, 200);
            let interval = Duration::from_micros(rng.next_u64() % 30_000);
            plan.run(&mut w, interval, secs(120));
            plan.check(&w);
        }));
        if result.is_err() {
            for p in &w.peers {
                eprintln!(
                    "{}: logged in {}, closed {:?}, last heard {:?}",
                    p.name,
                    p.client().is_logged_in(),
                    p.client().closed(),
                    p.last_heard
                );
            }
            for l in w.transcript.iter().rev().take(30).rev() {
                eprintln!("{l}");
            }
            panic!("seed {seed}: {clients} clients, up {up:?}, down {down:?}");
        }
    }
}
