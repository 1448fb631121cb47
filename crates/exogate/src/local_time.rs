//! The edge's half of showing times (`exogate_core::when` holds the rule): the reader's zone.
//! The CLI shows times in the zone of the machine it runs on (`TZ`, else `/etc/localtime`);
//! pages give the server's zone in the hover title and the exact instant in `datetime`.

use exogate_core::Timestamp;
use exogate_core::when;

/// The local zone's offset east of UTC, in seconds, at `at` (so daylight saving time is
/// right for each instant); UTC when the zone cannot say.
pub fn offset_secs(at: Timestamp) -> i32 {
    use chrono::{Offset as _, TimeZone as _};
    chrono::Local
        .timestamp_millis_opt(at.unix_millis())
        .earliest()
        .map_or(0, |t| t.offset().fix().local_minus_utc())
}

/// The system clock, for a CLI rendering that has no `App` at hand (the CLI's `App` reads the
/// same clock).
pub fn system_now() -> Timestamp {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
}

/// A time in a CLI table: "3 min ago (2026-12-03 21:35:08 +01:00)".
pub fn cell(now: Timestamp, at: Timestamp) -> String {
    when::cell(now, at, offset_secs(at))
}

/// A time on a page: `<time datetime="RFC 3339" title="local time">3 min ago</time>`.
pub fn html(now: Timestamp, at: Timestamp) -> String {
    format!(
        r#"<time datetime="{}" title="{}">{}</time>"#,
        at,
        when::absolute(at, offset_secs(at)),
        when::relative(now, at)
    )
}

/// [`html`] of a time a view carries as Unix milliseconds (`at_ms`); by reference, as
/// templates pass their values.
pub fn html_ms(now: &Timestamp, at_ms: &i64) -> String {
    html(*now, Timestamp::from_unix_millis(*at_ms))
}

/// [`html`] of a time a view carries as RFC 3339 text; text that is not one is shown escaped,
/// as it is.
pub fn html_text(now: &Timestamp, rfc3339: &str) -> String {
    let now = *now;
    match time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339) {
        Ok(t) => html(now, Timestamp::from_offset_date_time(t)),
        Err(_) => escape(rfc3339),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
