//! Tier layout (which resolutions exist and how many buckets each keeps), the choice of tier for a
//! window, and calendar periods in a time zone.
//!
//! Window semantics, exact at bucket resolution (the proptests re-derive them from raw events):
//! - rolling `W` at `now`: the finest tier with `N x r >= W + r`; buckets `k` in
//!   `[k(now - W), k(now)]`: the current, partial bucket plus every full bucket that overlaps
//!   `[now - W, now]` (at most `ceil(W/r) + 1` buckets). A window therefore counts at least the
//!   last `W` (exactly `W` when `now` is on a bucket boundary and `W` a multiple of `r`), less
//!   than `W + r` more, never less: a `1m` window read just after a minute boundary still holds
//!   the minute before it, so a live outage cannot read as an empty window and resolve a page;
//! - calendar: the period `[start, end)` containing `now`; the finest tier whose ring (head at
//!   `k(now)`) still holds bucket `ceil(start/r)`; buckets `k` with `k*r >= start` and `k <= k(now)`.

use crate::rules::model::{CalendarUnit, Slo, Window};
use crate::time::{Dur, Timestamp};

/// Resolutions of the three count tiers: 1 minute, 10 minutes, 1 hour.
pub const COUNT_RES: [Dur; 3] = [Dur::MINUTE, Dur(600_000), Dur::HOUR];
/// Fixed lengths of the two fine count tiers: 6 h of minutes, 3 d of 10-minute buckets, each plus
/// the one bucket a window of that length needs beyond it (see the module docs), so the default
/// `6h` and `3d` alert windows stay on these resolutions.
pub const COUNT_FINE_LEN: [usize; 2] = [361, 433];
/// Resolutions of the three latency sketch tiers: 5 m, 1 h, 1 d. Percentiles are reported, not
/// alerted on, so 5 minutes is fine enough for the shortest windows and keeps a latency SLO's
/// sketches (each up to a few KiB) few: 36 + 72 + days instead of one a minute.
pub const SKETCH_RES: [Dur; 3] = [Dur(300_000), Dur::HOUR, Dur::DAY];
/// Fixed lengths of the two fine sketch tiers (3 h of 5 m, 3 d of 1 h).
pub const SKETCH_FINE_LEN: [usize; 2] = [36, 72];

/// Largest instant the engine accepts: 9000-01-01T00:00:00Z, well inside jiff's range so
/// calendar arithmetic on any accepted instant cannot fail.
pub const MAX_TIMESTAMP: Timestamp = Timestamp(221_845_392_000_000);

/// The longest true length of a calendar period: its longest instance plus one hour for a DST
/// fall-back transition (week 169 h, month 745 h, quarter 2209 h).
pub fn max_period_len(unit: CalendarUnit) -> Dur {
    let hours = match unit {
        CalendarUnit::Week => 7 * 24,
        CalendarUnit::Month => 31 * 24,
        CalendarUnit::Quarter => 92 * 24,
    };
    Dur::from_hours(hours + 1)
}

/// The longest span any query of an SLO needs: its window (calendar: longest period) and its
/// longest alert window.
pub fn needed_span(slo: &Slo) -> Dur {
    let w = match &slo.window {
        Window::Rolling(d) => *d,
        Window::Calendar { unit, .. } => max_period_len(*unit),
    };
    let alert = slo
        .alerting
        .tiers
        .iter()
        .map(|t| t.long.max(t.short))
        .max()
        .unwrap_or(Dur(0));
    // The 1 h window is always evaluated (time to exhaustion uses it).
    w.max(alert).max(Dur::HOUR)
}

/// Bucket counts of the three count tiers of one SLO. Public so the brute-force model in the
/// tests can ask which resolution a window uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierLayout {
    /// Buckets per tier (1 m, 10 m, 1 h).
    pub lens: [usize; 3],
}

impl TierLayout {
    /// The layout for an SLO: 361 x 1 m, 433 x 10 m, and enough hours for [`needed_span`] plus one
    /// bucket, so a rolling window of that span (which reads one bucket beyond it) and a calendar
    /// period that does not start on an hour boundary (zones with half-hour offsets) still fit.
    pub fn for_slo(slo: &Slo) -> TierLayout {
        let hours = needed_span(slo).millis().div_ceil(Dur::HOUR.millis()) as usize;
        TierLayout {
            lens: [COUNT_FINE_LEN[0], COUNT_FINE_LEN[1], hours + 1],
        }
    }

    /// Resolution of tier `i` (0..3).
    pub fn res(&self, i: usize) -> Dur {
        COUNT_RES[i]
    }

    /// Time covered by tier `i`.
    pub fn span(&self, i: usize) -> Dur {
        Dur(COUNT_RES[i].millis() * self.lens[i] as u64)
    }

    /// The tier used for a rolling window: the finest whose span covers it plus one bucket (the
    /// coarsest if none does, which the layout rules out for the SLO's own windows).
    pub fn rolling_tier(&self, w: Dur) -> usize {
        (0..3)
            .find(|&i| self.span(i).millis() >= w.millis().saturating_add(COUNT_RES[i].millis()))
            .unwrap_or(2)
    }

    /// Whether the rings hold a rolling window `w` whole (on the coarsest tier: `w` and one more
    /// bucket).
    pub fn holds(&self, w: Dur) -> bool {
        self.span(2).millis() >= w.millis().saturating_add(COUNT_RES[2].millis())
    }

    /// Most buckets a rolling window spans on tier `i`: `ceil(W / r) + 1` (the current partial
    /// bucket and every full bucket overlapping `[now - W, now]`), capped to the ring.
    pub fn rolling_buckets(&self, i: usize, w: Dur) -> i64 {
        (w.millis().div_ceil(COUNT_RES[i].millis()) as i64 + 1).min(self.lens[i] as i64)
    }

    /// The buckets `(lo_excl, k]` of tier `i` that a rolling window `w` reads at `now`: from the
    /// bucket holding `now - W` to the bucket of `now` (see the module docs).
    pub fn rolling_range(&self, i: usize, w: Dur, now: Timestamp) -> (i64, i64) {
        let r = COUNT_RES[i].millis() as i64;
        let k = now.0.div_euclid(r);
        let lo = now.0.saturating_sub(w.millis() as i64).div_euclid(r);
        ((lo - 1).max(k - self.rolling_buckets(i, w)), k)
    }

    /// The tier used for a calendar period starting at `start` evaluated at `now`: the finest
    /// whose ring, with its head at `k(now)`, still holds bucket `ceil(start / r)`.
    pub fn calendar_tier(&self, start: Timestamp, now: Timestamp) -> usize {
        (0..3)
            .find(|&i| {
                let r = COUNT_RES[i].millis() as i64;
                let first = first_bucket_at_or_after(start, r);
                first > now.0.div_euclid(r) - self.lens[i] as i64
            })
            .unwrap_or(2)
    }
}

/// The first bucket of width `r` that starts at or after `t`: `ceil(t / r)`.
pub fn first_bucket_at_or_after(t: Timestamp, r: i64) -> i64 {
    let k = t.0.div_euclid(r);
    if k * r == t.0 { k } else { k + 1 }
}

/// The calendar period `[start, end)` containing `now` in `tz`: months start on the 1st at 00:00
/// local time, ISO weeks on Monday 00:00, quarters on 1 Jan/Apr/Jul/Oct 00:00 (when midnight does
/// not exist because of a DST gap, the first instant after the gap).
///
/// `now` must be within `[0, MAX_TIMESTAMP]` (the engine refuses other instants at the door).
pub fn calendar_period(
    unit: CalendarUnit,
    tz: &jiff::tz::TimeZone,
    now: Timestamp,
) -> (Timestamp, Timestamp) {
    let now = Timestamp(now.0.clamp(0, MAX_TIMESTAMP.0));
    let z = jiff::Timestamp::from_millisecond(now.0)
        .expect("instants in [0, year 9000] are inside jiff's range")
        .to_zoned(tz.clone());
    let d = z.date();
    let (start, end) = match unit {
        CalendarUnit::Month => {
            let s = d.first_of_month();
            (s, s.checked_add(jiff::Span::new().months(1)))
        }
        CalendarUnit::Week => {
            let back = d.weekday().to_monday_zero_offset() as i64;
            let s = d
                .checked_sub(jiff::Span::new().days(back))
                .expect("a week start before year 9000 is inside jiff's range");
            (s, s.checked_add(jiff::Span::new().days(7)))
        }
        CalendarUnit::Quarter => {
            let m = (d.month() - 1) / 3 * 3 + 1;
            let s = jiff::civil::Date::new(d.year(), m, 1)
                .expect("the first day of a quarter month is a valid date");
            (s, s.checked_add(jiff::Span::new().months(3)))
        }
    };
    let end = end.expect("a period end before year 9001 is inside jiff's range");
    let at = |date: jiff::civil::Date| -> Timestamp {
        Timestamp(
            date.to_zoned(tz.clone())
                .expect("midnight of a date before year 9001 is inside jiff's range")
                .timestamp()
                .as_millisecond(),
        )
    };
    (at(start), at(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str, tz: &str) -> Timestamp {
        let z: jiff::Zoned = format!("{s}[{tz}]").parse().unwrap();
        Timestamp(z.timestamp().as_millisecond())
    }

    #[test]
    fn month_week_quarter_periods() {
        let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let (s, e) = calendar_period(
            CalendarUnit::Month,
            &tz,
            at("2024-02-29T23:59", "Europe/Berlin"),
        );
        assert_eq!(s, at("2024-02-01T00:00", "Europe/Berlin"));
        assert_eq!(e, at("2024-03-01T00:00", "Europe/Berlin"));
        assert_eq!(e.since(s), Dur::from_days(29));
        // October 2024 has the fall-back: 31 days + 1 hour.
        let (s, e) = calendar_period(
            CalendarUnit::Month,
            &tz,
            at("2024-10-15T12:00", "Europe/Berlin"),
        );
        assert_eq!(e.since(s), Dur::from_hours(31 * 24 + 1));
        // The week of 2024-03-31 (spring forward on Sunday) is 167 h.
        let (s, e) = calendar_period(
            CalendarUnit::Week,
            &tz,
            at("2024-03-31T12:00", "Europe/Berlin"),
        );
        assert_eq!(s, at("2024-03-25T00:00", "Europe/Berlin"));
        assert_eq!(e.since(s), Dur::from_hours(167));
        let (s, e) = calendar_period(
            CalendarUnit::Quarter,
            &tz,
            at("2024-12-31T23:00", "Europe/Berlin"),
        );
        assert_eq!(s, at("2024-10-01T00:00", "Europe/Berlin"));
        assert_eq!(e, at("2025-01-01T00:00", "Europe/Berlin"));
        assert_eq!(e.since(s), Dur::from_hours(92 * 24 + 1));
        assert!(e.since(s) <= max_period_len(CalendarUnit::Quarter));
    }

    #[test]
    fn tier_choice() {
        let l = TierLayout {
            lens: [361, 433, 721],
        };
        assert_eq!(l.rolling_tier(Dur::from_mins(5)), 0);
        // 6 h reads 361 minute buckets: the minute tier still holds it.
        assert_eq!(l.rolling_tier(Dur::from_hours(6)), 0);
        assert_eq!(l.rolling_buckets(0, Dur::from_hours(6)), 361);
        assert_eq!(l.rolling_tier(Dur::from_mins(361)), 1);
        assert_eq!(l.rolling_tier(Dur::from_hours(7)), 1);
        assert_eq!(l.rolling_tier(Dur::from_days(3)), 1);
        assert_eq!(l.rolling_tier(Dur::from_days(30)), 2);
        assert_eq!(l.rolling_buckets(2, Dur::from_days(30)), 721);
        assert!(l.holds(Dur::from_days(30)));
        assert!(!l.holds(Dur::from_hours(30 * 24 + 1)));
        assert_eq!(l.rolling_buckets(1, Dur::from_mins(61)), 8);
        assert_eq!(l.rolling_buckets(0, Dur::MINUTE), 2);
        // 1m at 5:00.5 reads minutes 4 and 5; exactly at 5:00, minutes 4 and 5 too ([4:00, 5:00]).
        let m = |mins: i64, ms: i64| Timestamp(mins * 60_000 + ms);
        assert_eq!(l.rolling_range(0, Dur::MINUTE, m(5, 500)), (3, 5));
        assert_eq!(l.rolling_range(0, Dur::MINUTE, m(5, 0)), (3, 5));
        // 61m on 10-minute buckets: 7 or 8 buckets, by where now falls in its bucket.
        assert_eq!(l.rolling_range(1, Dur::from_mins(61), m(125, 0)), (5, 12));
        assert_eq!(l.rolling_range(1, Dur::from_mins(61), m(129, 0)), (5, 12));
        assert_eq!(l.rolling_range(1, Dur::from_mins(61), m(120, 0)), (4, 12));
        let start = Timestamp(Dur::from_days(100).millis() as i64);
        assert_eq!(l.calendar_tier(start, start.add(Dur::from_hours(5))), 0);
        // k(now) - 361 < k(start) fails once 361 minutes have passed.
        assert_eq!(l.calendar_tier(start, start.add(Dur::from_mins(360))), 0);
        assert_eq!(l.calendar_tier(start, start.add(Dur::from_mins(361))), 1);
        assert_eq!(l.calendar_tier(start, start.add(Dur::from_days(4))), 2);
    }
}
