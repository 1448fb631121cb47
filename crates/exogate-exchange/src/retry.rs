//! Backoff and `Retry-After` handling shared by the token and Exchange paths.

use std::time::Duration;

use crate::config::Limits;

/// Parses `Retry-After` as (possibly fractional) seconds, or an HTTP date (then 1 s is used,
/// since the client's clock may be driven by a test).
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    parse_retry_after_value(v)
}

/// See [`parse_retry_after`].
pub fn parse_retry_after_value(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
        return None;
    }
    if v.contains("GMT") {
        return Some(Duration::from_secs(1));
    }
    None
}

/// Delay before retry number `attempt` (1-based count of attempts made so far): the server's
/// `Retry-After` when given, else exponential backoff from `limits.backoff_base` with a little
/// jitter; capped at `limits.backoff_max`.
pub fn backoff_delay(limits: &Limits, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(ra) = retry_after {
        return ra.min(limits.backoff_max);
    }
    let exp = limits
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let jitter = 1.0 + rand::random::<f64>() * 0.2;
    exp.mul_f64(jitter).min(limits.backoff_max)
}

/// A reqwest error in words, without the URL's query (which may carry a skiptoken).
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body could not be read"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    };
    let mut msg = kind.to_owned();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_fractional() {
        assert_eq!(
            parse_retry_after_value("1.5"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after_value("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after_value("-1"), None);
        assert_eq!(parse_retry_after_value("NaN"), None);
        assert_eq!(parse_retry_after_value("soon"), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let l = Limits::default();
        assert!(backoff_delay(&l, 1, None) >= l.backoff_base);
        assert!(backoff_delay(&l, 3, None) >= l.backoff_base * 4);
        assert_eq!(backoff_delay(&l, 30, None), l.backoff_max);
        assert_eq!(
            backoff_delay(&l, 1, Some(Duration::from_millis(250))),
            Duration::from_millis(250)
        );
    }
}
