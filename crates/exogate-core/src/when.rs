//! How a time is shown to a person, in one place: pages and CLI tables say how long ago (or how
//! soon) it is, "3 min ago" or "in 2 d", and give the absolute time in the reader's zone,
//! ISO-like to the second ("2026-12-03 21:35:08 +01:00"), on hover or beside it. Neither ever
//! shows milliseconds; the exact instant (RFC 3339 with milliseconds, and the `*_ms` fields
//! where a view has them) is for `--json` and the API.
//!
//! Pure: the current time and the zone's offset are inputs (the edge reads its clock and the
//! local zone).

use crate::model::Timestamp;

/// Below this distance from now, either way, a time is "just now": a clock that stepped back
/// a little (another replica's, or NTP's correction) never makes a past event "in 2 s".
pub const JUST_NOW_SECS: i64 = 60;

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const YEAR: i64 = 365 * DAY;

/// How far `at` is from `now`, in words: "just now" within a minute either way, then
/// "N min ago" / "in N min" below an hour, hours below a day, days below a year, then years.
/// Each unit is rounded down, so "59 min ago" turns into "1 h ago" at the hour exactly.
pub fn relative(now: Timestamp, at: Timestamp) -> String {
    // i128: the distance between any two i64 milliseconds fits.
    let delta_ms = i128::from(at.unix_millis()) - i128::from(now.unix_millis());
    let secs = delta_ms.unsigned_abs() / 1000;
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    if secs < JUST_NOW_SECS {
        return "just now".to_owned();
    }
    let amount = match secs {
        s if s < HOUR => format!("{} min", s / MINUTE),
        s if s < DAY => format!("{} h", s / HOUR),
        s if s < YEAR => format!("{} d", s / DAY),
        s => format!("{} y", s / YEAR),
    };
    if delta_ms < 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// `at` as wall-clock time in a zone `offset_secs` east of UTC, to the second, with the
/// offset: "2026-12-03 21:35:08 +01:00". An offset beyond ±25:59:59 is taken as UTC.
pub fn absolute(at: Timestamp, offset_secs: i32) -> String {
    let offset = time::UtcOffset::from_whole_seconds(offset_secs).unwrap_or(time::UtcOffset::UTC);
    let t = at.to_offset_date_time().to_offset(offset);
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

/// What a CLI table shows for a time: "3 min ago (2026-12-03 21:35:08 +01:00)".
pub fn cell(now: Timestamp, at: Timestamp, offset_secs: i32) -> String {
    format!("{} ({})", relative(now, at), absolute(at, offset_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_millis(1_796_300_000_000);

    fn ago(secs: i64) -> String {
        relative(NOW, NOW.plus_secs(-secs))
    }
    fn ahead(secs: i64) -> String {
        relative(NOW, NOW.plus_secs(secs))
    }

    #[test]
    fn past_times_say_how_long_ago() {
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(59), "just now");
        assert_eq!(ago(60), "1 min ago");
        assert_eq!(ago(3 * 60 + 59), "3 min ago");
        assert_eq!(ago(HOUR - 1), "59 min ago");
        assert_eq!(ago(HOUR), "1 h ago");
        assert_eq!(ago(DAY - 1), "23 h ago");
        assert_eq!(ago(DAY), "1 d ago");
        assert_eq!(ago(2 * DAY + 5 * HOUR), "2 d ago");
        assert_eq!(ago(YEAR - 1), "364 d ago");
        assert_eq!(ago(YEAR), "1 y ago");
        assert_eq!(ago(3 * YEAR + 10 * DAY), "3 y ago");
    }

    #[test]
    fn future_times_say_how_soon() {
        assert_eq!(ahead(59), "just now");
        assert_eq!(ahead(60), "in 1 min");
        assert_eq!(ahead(HOUR), "in 1 h");
        assert_eq!(ahead(2 * DAY), "in 2 d");
        assert_eq!(ahead(7 * DAY - 1), "in 6 d");
        assert_eq!(ahead(YEAR), "in 1 y");
    }

    #[test]
    fn milliseconds_never_cross_a_boundary_early() {
        // 59.999 s is still under a minute; 60.000 s is a minute.
        assert_eq!(relative(NOW, NOW.plus_millis(-59_999)), "just now");
        assert_eq!(relative(NOW, NOW.plus_millis(-60_000)), "1 min ago");
        assert_eq!(relative(NOW, NOW.plus_millis(60_000)), "in 1 min");
    }

    #[test]
    fn a_clock_that_went_back_a_little_says_just_now() {
        // An event stamped by a clock 5 s ahead of ours: not "in 5 s", not a negative age.
        assert_eq!(relative(NOW, NOW.plus_secs(5)), "just now");
        // Went back further: the honest reading of the two clocks, never a panic.
        assert_eq!(relative(NOW, NOW.plus_secs(10 * 60)), "in 10 min");
    }

    #[test]
    fn extreme_instants_do_not_overflow() {
        let min = Timestamp::from_unix_millis(i64::MIN);
        let max = Timestamp::from_unix_millis(i64::MAX);
        assert!(relative(max, min).ends_with(" y ago"));
        assert!(relative(min, max).starts_with("in "));
        assert_eq!(relative(max, max), "just now");
    }

    #[test]
    fn absolute_is_local_wall_time_with_its_offset_and_no_milliseconds() {
        let at = Timestamp::from_unix_millis(1_796_329_708_123); // 2026-12-03T20:28:28.123Z
        assert_eq!(at.to_string(), "2026-12-03T20:28:28.123Z");
        assert_eq!(absolute(at, 0), "2026-12-03 20:28:28 +00:00");
        assert_eq!(absolute(at, 3600), "2026-12-03 21:28:28 +01:00");
        assert_eq!(
            absolute(at, -(5 * 3600 + 30 * 60)),
            "2026-12-03 14:58:28 -05:30"
        );
        // Past midnight in a zone east of UTC: the local date moves on.
        assert_eq!(absolute(at, 4 * 3600), "2026-12-04 00:28:28 +04:00");
        // An impossible offset falls back to UTC rather than failing.
        assert_eq!(absolute(at, 200_000), "2026-12-03 20:28:28 +00:00");
    }

    #[test]
    fn a_table_cell_has_both() {
        let at = NOW.plus_secs(-3 * 60);
        assert_eq!(cell(NOW, at, 0), format!("3 min ago ({})", absolute(at, 0)));
    }
}
