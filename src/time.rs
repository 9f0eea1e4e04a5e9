//! Time as the engine sees it: instants in milliseconds since the Unix epoch and positive
//! durations with a compact human syntax (`30d`, `1h30m`, `250ms`).
//!
//! The engine never reads a clock: every call takes a [`Timestamp`], so tests drive it with a
//! simulated clock. Milliseconds are enough for SLO windows and keep arithmetic in integers.
//! The runtime that hands those instants in reads them from a [`crate::clock::Clock`].

use std::fmt;

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }
    /// The instant `s` seconds after the epoch.
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s * 1000)
    }
    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// This instant moved forward by `d`.
    pub const fn add(self, d: Dur) -> Self {
        Timestamp(self.0.saturating_add(d.0 as i64))
    }
    /// This instant moved back by `d`.
    pub const fn sub(self, d: Dur) -> Self {
        Timestamp(self.0.saturating_sub(d.0 as i64))
    }
    /// The duration from `earlier` to `self`, zero when `earlier` is later.
    pub const fn since(self, earlier: Timestamp) -> Dur {
        if self.0 > earlier.0 {
            Dur((self.0 - earlier.0) as u64)
        } else {
            Dur(0)
        }
    }
}

/// A non-negative duration in milliseconds.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Dur(pub u64);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurError {
    /// The text is empty.
    #[error("empty duration; write a number with a unit such as 30s, 5m, 1h or 30d")]
    Empty,
    /// A unit is missing after a number.
    #[error("`{0}` has a number without a unit; add one of ms, s, m, h, d, w (e.g. `{0}s`)")]
    MissingUnit(String),
    /// A unit that is not known.
    #[error("unknown unit `{unit}` in `{text}`; units are ms, s, m (minutes), h, d, w{hint}")]
    UnknownUnit {
        /// The whole duration text.
        text: String,
        /// The unit that was not recognised.
        unit: String,
        /// Extra advice for likely mistakes such as `M` (months).
        hint: &'static str,
    },
    /// Not a number where one was expected.
    #[error("`{0}` is not a duration; write a number with a unit such as 30s, 5m, 1h or 30d")]
    Syntax(String),
    /// The value does not fit.
    #[error("`{0}` is too long a duration")]
    Overflow(String),
}

impl Dur {
    /// One millisecond.
    pub const MILLI: Dur = Dur(1);
    /// One second.
    pub const SECOND: Dur = Dur(1_000);
    /// One minute.
    pub const MINUTE: Dur = Dur(60_000);
    /// One hour.
    pub const HOUR: Dur = Dur(3_600_000);
    /// One day (24 hours; calendar days that are not 24 hours long are handled by calendar windows).
    pub const DAY: Dur = Dur(86_400_000);
    /// One week of 7 days.
    pub const WEEK: Dur = Dur(7 * 86_400_000);

    /// `n` milliseconds.
    pub const fn from_millis(n: u64) -> Dur {
        Dur(n)
    }
    /// `n` seconds.
    pub const fn from_secs(n: u64) -> Dur {
        Dur(n * 1_000)
    }
    /// `n` minutes.
    pub const fn from_mins(n: u64) -> Dur {
        Dur(n * 60_000)
    }
    /// `n` hours.
    pub const fn from_hours(n: u64) -> Dur {
        Dur(n * 3_600_000)
    }
    /// `n` days of 24 hours.
    pub const fn from_days(n: u64) -> Dur {
        Dur(n * 86_400_000)
    }
    /// The length in milliseconds.
    pub const fn millis(self) -> u64 {
        self.0
    }
    /// The length in seconds, as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000.0
    }
    /// The length in minutes, as a float.
    pub fn as_mins_f64(self) -> f64 {
        self.0 as f64 / 60_000.0
    }
    /// As a `std::time::Duration` (for timers).
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
    /// True for a zero duration.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses the Prometheus-style syntax: one or more `<integer><unit>` parts, largest first by
    /// convention (`1h30m`), units `ms`, `s`, `m`, `h`, `d`, `w`. `M` and `y` are refused with a
    /// hint, because "1M" in an SLO file almost always means a calendar month.
    pub fn parse(text: &str) -> Result<Dur, DurError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(DurError::Empty);
        }
        let bytes = t.as_bytes();
        let mut i = 0;
        let mut total: u64 = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(DurError::Syntax(t.to_owned()));
            }
            let n: u64 = t[start..i]
                .parse()
                .map_err(|_| DurError::Overflow(t.to_owned()))?;
            let ustart = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit = &t[ustart..i];
            let mult = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 7 * 86_400_000,
                "" => return Err(DurError::MissingUnit(t.to_owned())),
                "M" => {
                    return Err(DurError::UnknownUnit {
                        text: t.to_owned(),
                        unit: unit.to_owned(),
                        hint: "; `M` would be months: for a calendar month write `window: month`, for a rolling window write days such as `30d`",
                    });
                }
                "y" | "Y" => {
                    return Err(DurError::UnknownUnit {
                        text: t.to_owned(),
                        unit: unit.to_owned(),
                        hint: "; years are not supported: use `window: quarter` or days such as `90d`",
                    });
                }
                _ => {
                    return Err(DurError::UnknownUnit {
                        text: t.to_owned(),
                        unit: unit.to_owned(),
                        hint: "",
                    });
                }
            };
            let part = n
                .checked_mul(mult)
                .ok_or_else(|| DurError::Overflow(t.to_owned()))?;
            total = total
                .checked_add(part)
                .ok_or_else(|| DurError::Overflow(t.to_owned()))?;
        }
        // Beyond ~292 million years an i64 timestamp overflows; nothing sensible is that long.
        if total > i64::MAX as u64 / 4 {
            return Err(DurError::Overflow(t.to_owned()));
        }
        Ok(Dur(total))
    }
}

impl fmt::Display for Dur {
    /// Prints the shortest exact form: `30d`, `1h30m`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, ms) in [
            ("d", 86_400_000u64),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if rest >= ms {
                write!(f, "{}{}", rest / ms, unit)?;
                rest %= ms;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Dur {
    type Err = DurError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dur::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, ms) in [
            ("30d", 30 * 86_400_000u64),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("5m", 300_000),
            ("2w", 14 * 86_400_000),
        ] {
            let d = Dur::parse(s).unwrap();
            assert_eq!(d.millis(), ms, "{s}");
            assert_eq!(Dur::parse(&d.to_string()).unwrap(), d);
        }
        assert_eq!(Dur::from_days(30).to_string(), "30d");
        assert_eq!(Dur::from_millis(5_400_000).to_string(), "1h30m");
    }

    #[test]
    fn refuses_with_advice() {
        assert!(matches!(
            Dur::parse("1M"),
            Err(DurError::UnknownUnit { .. })
        ));
        assert!(
            Dur::parse("1M")
                .unwrap_err()
                .to_string()
                .contains("window: month")
        );
        assert!(matches!(Dur::parse("30"), Err(DurError::MissingUnit(_))));
        assert!(matches!(Dur::parse(""), Err(DurError::Empty)));
        assert!(matches!(Dur::parse("h"), Err(DurError::Syntax(_))));
        assert!(matches!(
            Dur::parse("99999999999999999999d"),
            Err(DurError::Overflow(_))
        ));
    }
}
