//! The driver's clock: `core` time is microseconds since this process's
//! clock was created.

use udpchat_core::Instant;

/// Converts between `std::time::Instant` and core's [`Instant`].
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// How long from now until `deadline` (zero if it has passed).
    pub fn until(&self, deadline: Instant) -> std::time::Duration {
        std::time::Duration::from_micros(deadline.saturating_since(self.now()).as_micros())
    }
}
