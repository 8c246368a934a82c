//! The two clocks: monotonic for deadlines, wall for TAI64N stamps.

use std::time::{Instant, SystemTime};

use vigil_core::machine::Now;
use vigil_core::tai::Tai64n;

/// Reads both clocks; monotonic time counts from when the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            origin: Instant::now(),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            mono: self.origin.elapsed(),
            wall: Tai64n::from_system_time(SystemTime::now()),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The wall clock as a TAI64N label.
pub fn tai_now() -> Tai64n {
    Tai64n::from_system_time(SystemTime::now())
}
