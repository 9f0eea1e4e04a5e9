//! The runtime's wall clock: where the instants the agent stamps (collections, evaluations,
//! alert and silence times, the API's "now") come from.
//!
//! The pure core never reads a clock ([`crate::time`] only has types); the runtime reads this
//! one. It is a value handed to the agent, not a global, so a test can run the whole agent on
//! tokio's paused clock: [`Clock::following_tokio`] starts at a chosen instant and moves only as
//! tokio's time does, so with `#[tokio::test(start_paused = true)]` an hour-long outage, the
//! timers of collectors, evaluation, grouping and retries, and the instants they stamp all move
//! together, in milliseconds of real time and deterministically.

use crate::time::Timestamp;

/// A source of wall-clock instants. Cheap to clone.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// The system clock (production).
    System,
    /// `start` plus the tokio time elapsed since `origin`.
    Tokio {
        start: Timestamp,
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// The system's wall clock: what `run` and `demo` use.
    pub const fn system() -> Clock {
        Clock { kind: Kind::System }
    }

    /// A clock that reads `start` now and then advances exactly as tokio's clock does. Under
    /// paused time (`tokio::time::pause`, `start_paused`) it follows the simulated time, so
    /// the instants the agent stamps agree with its timers. Must be called inside a tokio
    /// runtime.
    pub fn following_tokio(start: Timestamp) -> Clock {
        Clock {
            kind: Kind::Tokio {
                start,
                origin: tokio::time::Instant::now(),
            },
        }
    }

    /// Now, in milliseconds since the epoch.
    pub fn now(&self) -> Timestamp {
        match self.kind {
            Kind::System => Timestamp(wall_ms()),
            Kind::Tokio { start, origin } => {
                let elapsed = origin.elapsed().as_millis();
                Timestamp(
                    start
                        .0
                        .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX)),
                )
            }
        }
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

/// The system wall clock now, in ms since the epoch (0 before 1970, saturated far in the
/// future): for the CLI and one-shot commands, which have no agent clock to follow.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_with_paused_time_only() {
        let c = Clock::following_tokio(Timestamp(1_000_000));
        assert_eq!(c.now(), Timestamp(1_000_000));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(c.now(), Timestamp(1_000_000 + 3_600_000));
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(c.now(), Timestamp(1_000_000 + 3_600_250));
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = wall_ms();
        let now = Clock::system().now().0;
        assert!(now >= before && now <= wall_ms());
        assert!(before > 1_600_000_000_000, "after 2020: {before}");
    }
}
