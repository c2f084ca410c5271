//! The stepping loop that [`crate::World`] and [`crate::Cluster`] share:
//! each knows its next wake-up and how to take one step; running until a
//! condition holds is the same loop over either.

use udpchat_core::time::Instant;

/// A simulation driven one step at a time on its virtual clock.
pub(crate) trait Steps {
    /// When the next step is due, if anything is pending.
    fn next_wakeup(&mut self) -> Option<Instant>;
    /// Takes the next step.
    fn step(&mut self);
    /// Runs every step due at or before `t` and moves the clock to `t`.
    fn run_until(&mut self, t: Instant);
}

/// Steps `s` until `done` holds (checked before every step) or the clock
/// would pass `deadline`, where it is left; returns whether `done` held.
pub(crate) fn run_until_cond<S: Steps>(
    s: &mut S,
    deadline: Instant,
    mut done: impl FnMut(&S) -> bool,
) -> bool {
    loop {
        if done(s) {
            return true;
        }
        match s.next_wakeup() {
            Some(next) if next <= deadline => s.step(),
            _ => {
                s.run_until(deadline);
                return done(s);
            }
        }
    }
}
