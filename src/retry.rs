//! Retrying a call to another service, for every client of the tool alike (the API client,
//! STS, the Entra token endpoint, managed identity, and the OAuth and S3 clients to come):
//! the bounds are data ([`RetryPolicy`]), the pacing is one function ([`backoff`], exponential
//! with *equal jitter*), and the choice between waiting, giving up and stopping is one more
//! ([`RetryPolicy::next_step`]). What is worth retrying is each client's call, made from the
//! generic rules here ([`is_transient_status`], [`retry_after`]) plus what it knows of its
//! service (API Gateway's usage-plan quota, STS's error codes, a shrinking page size).
//!
//! Why equal jitter (half the exponential wait fixed, half random) rather than full jitter
//! (anywhere from zero to the wait): parallel fetchers retrying the same throttled API still
//! spread out, and no wait collapses to nothing, so a retry never hits the API again at once.
//!
//! A server's `Retry-After` is honoured in full up to [`RetryPolicy::max_retry_after`], never
//! cut to our own backoff cap; past that maximum the caller stops instead of sleeping for an
//! hour (the API client turns it into a resumable stop that says when to run again).
//!
//! [`Retrier`] runs the loop for clients with nothing more to decide between attempts; the
//! clock and the sleeper are injected, so attempt counting and deadlines are tested without
//! waiting. This module names nothing above it: it knows HTTP status codes and headers, not
//! which service answered.

use crate::clock::{Clock, Sleeper, SystemClock, TokioSleeper};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Bounds on retrying one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles each attempt, with equal jitter (see [`backoff`]).
    pub base: Duration,
    /// Longest single wait of our own backoff.
    pub cap: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub deadline: Duration,
    /// The longest `Retry-After` waited out; a server asking for more stops the run
    /// (resumable) with the time to run it again.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Whether a response status is worth another attempt: throttling (429) and the transient
/// server errors (500, 502, 503, 504). Every other status is final for the generic rules;
/// a client may know better about its own service (API Gateway's 429 "Limit Exceeded").
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How long to wait before attempt `attempt + 1` (attempt counts from 1) when the server
/// said nothing: exponential, capped at `policy.cap`, with equal jitter (see the module docs),
/// so the wait lies in `[exp / 2, exp]`.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    backoff_at(policy, attempt, rand::random::<f64>())
}

/// [`backoff`] with the random draw given: `unit` in `[0, 1)` picks the point in the upper
/// half of the exponential wait (0 = its half, 1 = all of it).
pub fn backoff_at(policy: &RetryPolicy, attempt: u32, unit: f64) -> Duration {
    let exp = policy
        .base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(policy.cap);
    let half = exp / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// The wait before the next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Sleep this long, then try again.
    Sleep(Duration),
    /// The server asked for a wait longer than `RetryPolicy::max_retry_after`: stop.
    TooLong(Duration),
}

/// The wait before attempt `attempt + 1`: the server's `Retry-After` when it gave one (in
/// full, never less than our own backoff would wait, and at most `policy.max_retry_after`),
/// else [`backoff`].
pub fn wait_before_retry(policy: &RetryPolicy, attempt: u32, server: Option<Duration>) -> Wait {
    let computed = backoff(policy, attempt);
    match server {
        Some(s) if s > policy.max_retry_after => Wait::TooLong(s),
        Some(s) => Wait::Sleep(s.max(computed.min(s))),
        None => Wait::Sleep(computed),
    }
}

/// What to do after a transient failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait this long, then make the next attempt.
    Sleep(Duration),
    /// The server asked for a wait past `max_retry_after`: stop, without waiting.
    TooLong(Duration),
    /// The attempts or the deadline are used up.
    Exhausted,
}

impl RetryPolicy {
    /// After attempt `attempt` (counting from 1) failed transiently, `elapsed` after the
    /// first one began, with the server's `Retry-After` if it gave one: wait, stop because
    /// the server asks too much, or give up. A `Retry-After` past the maximum is said even on
    /// the last attempt: it tells the user when to run again.
    pub fn next_step(&self, attempt: u32, elapsed: Duration, server: Option<Duration>) -> Step {
        let delay = match wait_before_retry(self, attempt, server) {
            Wait::Sleep(d) => d,
            Wait::TooLong(d) => return Step::TooLong(d),
        };
        if attempt >= self.max_attempts || elapsed >= self.deadline {
            Step::Exhausted
        } else {
            Step::Sleep(delay)
        }
    }
}

/// What one attempt came to, as its caller classified it.
#[derive(Debug)]
pub enum Attempt<T, E> {
    Done(T),
    /// Worth another attempt; `after` is the server's `Retry-After`, when it gave one.
    Transient {
        error: E,
        after: Option<Duration>,
    },
    /// Final: retrying cannot help.
    Fatal(E),
}

/// Why [`Retrier::run`] gave up, with the last attempt's error.
#[derive(Debug)]
pub struct GaveUp<E> {
    pub error: E,
    /// Attempts made, the first included.
    pub attempts: u32,
    pub elapsed: Duration,
    pub why: GiveUpReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The attempt's failure was final.
    Fatal,
    /// The attempts or the deadline are used up.
    Exhausted,
    /// The server asked for a wait past `max_retry_after`.
    RetryAfterTooLong(Duration),
}

/// A [`RetryPolicy`] with the clock that measures its deadline and the sleeper that waits
/// between attempts (the system's, unless tests inject fakes).
#[derive(Debug, Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
}

impl Retrier {
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// The same policy on another clock and sleeper (tests).
    pub fn with_time(mut self, clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>) -> Self {
        self.clock = clock;
        self.sleeper = sleeper;
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Call `attempt` (given the attempt's number, from 1) until it is done, fails for good,
    /// or the policy is used up. `what` names the call in the debug log of each retry.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, GaveUp<E>>
    where
        E: Display,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let started = self.clock.now();
        let mut n: u32 = 0;
        loop {
            n += 1;
            let (error, after) = match attempt(n).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Transient { error, after } => (error, after),
                Attempt::Fatal(error) => {
                    return Err(self.gave_up(error, n, started, GiveUpReason::Fatal))
                }
            };
            let elapsed = self.clock.since(started);
            match self.policy.next_step(n, elapsed, after) {
                Step::Sleep(delay) => {
                    tracing::debug!("{what} (attempt {n}): {error}; retrying in {delay:?}");
                    self.sleeper.sleep(delay).await;
                }
                Step::TooLong(d) => {
                    return Err(self.gave_up(error, n, started, GiveUpReason::RetryAfterTooLong(d)))
                }
                Step::Exhausted => {
                    return Err(self.gave_up(error, n, started, GiveUpReason::Exhausted))
                }
            }
        }
    }

    fn gave_up<E>(
        &self,
        error: E,
        attempts: u32,
        started: SystemTime,
        why: GiveUpReason,
    ) -> GaveUp<E> {
        GaveUp {
            error,
            attempts,
            elapsed: self.clock.since(started),
            why,
        }
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

/// Why one HTTP attempt of [`send`] did not give a usable answer.
#[derive(Debug)]
enum HttpFailure {
    Status(Answer),
    Transport(reqwest::Error),
}

impl Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFailure::Status(a) => write!(f, "answered {}", a.status),
            HttpFailure::Transport(e) => write!(f, "{}", crate::report::error_chain(e)),
        }
    }
}

/// Whether a transport failure is worth another attempt: the connection dropped or the body
/// broke mid-exchange. A connection that could not be made (nothing listens, DNS, TLS) or a
/// request that timed out is not: the next attempt would meet the same, and the caller's
/// message names the fix.
pub fn is_transient_transport(e: &reqwest::Error) -> bool {
    !(e.is_connect() || e.is_timeout() || e.is_builder() || e.is_redirect())
}

/// Send the request that `build` makes (a fresh one per attempt) and read its answer whole,
/// retrying what [`is_transient_status`] and [`is_transient_transport`] call transient under
/// `retrier`'s policy (a `Retry-After` honoured up to its maximum). Any status comes back as
/// an [`Answer`] — after the last attempt, the last one — for the caller to word as it would
/// a first failure; only a transport failure is an error. For the token endpoints (Entra,
/// managed identity, CI OIDC) and every client without more to decide between attempts.
pub async fn send<F>(retrier: &Retrier, what: &str, build: F) -> Result<Answer, reqwest::Error>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let result = retrier
        .run(what, |_| {
            let request = build();
            async move {
                let failed = |e: reqwest::Error| {
                    if is_transient_transport(&e) {
                        Attempt::Transient {
                            error: HttpFailure::Transport(e),
                            after: None,
                        }
                    } else {
                        Attempt::Fatal(HttpFailure::Transport(e))
                    }
                };
                let response = match request.send().await {
                    Ok(r) => r,
                    Err(e) => return failed(e),
                };
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = match response.bytes().await {
                    Ok(b) => b,
                    Err(e) => return failed(e),
                };
                let answer = Answer {
                    status,
                    headers,
                    body,
                };
                if is_transient_status(status) {
                    let after = retry_after(&answer.headers, SystemTime::now());
                    Attempt::Transient {
                        error: HttpFailure::Status(answer),
                        after,
                    }
                } else {
                    Attempt::Done(answer)
                }
            }
        })
        .await;
    match result {
        Ok(answer) => Ok(answer),
        Err(GaveUp {
            error: HttpFailure::Status(answer),
            ..
        }) => Ok(answer),
        Err(GaveUp {
            error: HttpFailure::Transport(e),
            ..
        }) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use reqwest::header::HeaderName;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        };
        for attempt in 1..=10 {
            let d = backoff(&p, attempt);
            let exp = (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(p.cap);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
    }

    #[test]
    fn equal_jitter_spans_the_upper_half_of_the_exponential_wait() {
        let p = policy(10);
        // (attempt, draw, wait): half fixed, half drawn; the cap bounds the whole wait.
        let cases = [
            (1, 0.0, 50),
            (1, 0.5, 75),
            (1, 1.0, 100),
            (3, 0.0, 200),
            (3, 1.0, 400),
            (5, 0.0, 800),
            (6, 0.0, 1000),
            (6, 1.0, 2000),
            (30, 0.25, 1250),
            (u32::MAX, 1.0, 2000),
        ];
        for (attempt, unit, ms) in cases {
            assert_eq!(
                backoff_at(&p, attempt, unit),
                Duration::from_millis(ms),
                "attempt {attempt}, draw {unit}"
            );
        }
        // Never zero, however unlucky the draw: that is what equal jitter buys over full.
        for _ in 0..1000 {
            assert!(backoff(&p, 1) >= Duration::from_millis(50));
        }
    }

    #[test]
    fn retry_after_is_honoured_in_full_up_to_the_maximum() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        };
        let cases = [
            // Shorter than our backoff: never less than the server asked for.
            (Some(1), Wait::Sleep(Duration::from_secs(1))),
            // Longer than the backoff cap (the old behaviour cut this to 30 s).
            (Some(120), Wait::Sleep(Duration::from_secs(120))),
            (Some(300), Wait::Sleep(Duration::from_secs(300))),
            (Some(301), Wait::TooLong(Duration::from_secs(301))),
            (Some(3600), Wait::TooLong(Duration::from_secs(3600))),
        ];
        for (server, want) in cases {
            let got = wait_before_retry(&p, 1, server.map(Duration::from_secs));
            assert_eq!(got, want, "Retry-After {server:?}");
        }
        match wait_before_retry(&p, 1, None) {
            Wait::Sleep(d) => assert!(d <= Duration::from_millis(100), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = t0();
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static("retry-after"), v.parse().unwrap());
            h
        };
        let date = |secs| httpdate::fmt_http_date(now + Duration::from_secs(secs));
        let cases = [
            (header("3"), Some(3)),
            (header(" 120 "), Some(120)),
            (header(&date(7)), Some(7)),
            (
                header(&httpdate::fmt_http_date(now - Duration::from_secs(5))),
                Some(0),
            ),
            (header("soon"), None),
            (HeaderMap::new(), None),
        ];
        for (h, want) in cases {
            assert_eq!(retry_after(&h, now), want.map(Duration::from_secs), "{h:?}");
        }
    }

    #[test]
    fn transient_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [200, 301, 400, 401, 403, 404, 408, 409, 501, 505] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn next_step_counts_attempts_and_watches_the_deadline() {
        let p = policy(3);
        let s = Duration::from_secs;
        assert!(matches!(p.next_step(1, s(0), None), Step::Sleep(_)));
        assert!(matches!(p.next_step(2, s(10), None), Step::Sleep(_)));
        assert_eq!(p.next_step(3, s(10), None), Step::Exhausted);
        assert_eq!(p.next_step(1, s(60), None), Step::Exhausted);
        assert_eq!(p.next_step(1, s(0), Some(s(7))), Step::Sleep(s(7)));
        // Too long a Retry-After is said even when the attempts are used up.
        assert_eq!(p.next_step(3, s(0), Some(s(301))), Step::TooLong(s(301)));
    }

    /// A call that fails transiently `failures` times, then succeeds.
    async fn flaky(
        retrier: &Retrier,
        failures: u32,
        after: Option<Duration>,
    ) -> Result<u32, GaveUp<String>> {
        retrier
            .run("test call", |n| async move {
                if n > failures {
                    Attempt::Done(n)
                } else {
                    Attempt::Transient {
                        error: format!("failure {n}"),
                        after,
                    }
                }
            })
            .await
    }

    #[tokio::test]
    async fn the_retrier_counts_attempts_on_an_injected_clock() {
        let clock = Arc::new(FakeClock::at(t0()));
        let retrier = Retrier::new(policy(4)).with_time(clock.clone(), clock.clone());
        // Three failures, then success on the fourth and last attempt.
        assert_eq!(flaky(&retrier, 3, None).await.unwrap(), 4);
        let slept = clock.slept();
        assert_eq!(slept.len(), 3);
        for (i, d) in slept.iter().enumerate() {
            let exp = Duration::from_millis(100) * 2u32.pow(i as u32);
            assert!(*d >= exp / 2 && *d <= exp, "wait {i}: {d:?}");
        }
        // One more failure than attempts: gives up after the fourth, without a fifth wait.
        let clock = Arc::new(FakeClock::at(t0()));
        let retrier = Retrier::new(policy(4)).with_time(clock.clone(), clock.clone());
        let gave_up = flaky(&retrier, 4, None).await.unwrap_err();
        assert_eq!(gave_up.attempts, 4);
        assert_eq!(gave_up.why, GiveUpReason::Exhausted);
        assert_eq!(gave_up.error, "failure 4");
        assert_eq!(clock.slept().len(), 3);
        assert_eq!(gave_up.elapsed, clock.slept().iter().sum::<Duration>());
    }

    #[tokio::test]
    async fn the_retrier_stops_at_the_deadline_and_on_a_final_failure() {
        // Retry-After of 25 s against a 60 s deadline: attempts at 0, 25, 50 and 75 s; the
        // one at 75 s is past the deadline, so there is no fifth.
        let clock = Arc::new(FakeClock::at(t0()));
        let retrier = Retrier::new(policy(100)).with_time(clock.clone(), clock.clone());
        let gave_up = flaky(&retrier, 100, Some(Duration::from_secs(25)))
            .await
            .unwrap_err();
        assert_eq!(gave_up.attempts, 4);
        assert_eq!(gave_up.why, GiveUpReason::Exhausted);
        assert_eq!(gave_up.elapsed, Duration::from_secs(75));

        let gave_up = flaky(&retrier, 100, Some(Duration::from_secs(3600)))
            .await
            .unwrap_err();
        assert_eq!(gave_up.attempts, 1);
        assert_eq!(
            gave_up.why,
            GiveUpReason::RetryAfterTooLong(Duration::from_secs(3600))
        );

        let calls = std::sync::atomic::AtomicU32::new(0);
        let gave_up = retrier
            .run("test call", |_| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Attempt::<(), _>::Fatal("refused") }
            })
            .await
            .unwrap_err();
        assert_eq!(gave_up.why, GiveUpReason::Fatal);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// A local server answering each request with the next status of `script` (the last one
    /// repeated), counting requests; `Retry-After: 2` on every 429.
    async fn misbehaving(script: Vec<u16>) -> (String, Arc<std::sync::atomic::AtomicU32>) {
        use axum::response::IntoResponse;
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as usize;
                let status = script[n.min(script.len() - 1)];
                async move {
                    let code = axum::http::StatusCode::from_u16(status).unwrap();
                    let mut response = (code, format!("answer {}", n + 1)).into_response();
                    if status == 429 {
                        response
                            .headers_mut()
                            .insert("retry-after", axum::http::HeaderValue::from_static("2"));
                    }
                    response
                }
            }),
        );
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", tcp.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(tcp, app).await;
        });
        (url, calls)
    }

    #[tokio::test]
    async fn send_retries_transient_statuses_and_hands_back_the_last_answer() {
        let http = reqwest::Client::new();
        // (statuses the server gives in turn, answer expected, requests made, waits of 2 s)
        let cases: Vec<(Vec<u16>, u16, &str, u32, usize)> = vec![
            (vec![200], 200, "answer 1", 1, 0),
            (vec![503, 502, 200], 200, "answer 3", 3, 0),
            (vec![429, 200], 200, "answer 2", 2, 1),
            // Used up: the last answer, for the caller to word.
            (vec![500], 500, "answer 3", 3, 0),
            // Final at once: the caller's mistake, or a refusal.
            (vec![400, 200], 400, "answer 1", 1, 0),
            (vec![401, 200], 401, "answer 1", 1, 0),
        ];
        for (script, status, body, requests, retry_after_waits) in cases {
            let (url, calls) = misbehaving(script.clone()).await;
            let clock = Arc::new(FakeClock::at(t0()));
            let retrier = Retrier::new(policy(3)).with_time(clock.clone(), clock.clone());
            let answer = send(&retrier, "test", || http.post(&url)).await.unwrap();
            assert_eq!(answer.status, status, "{script:?}");
            assert_eq!(&answer.body[..], body.as_bytes(), "{script:?}");
            assert_eq!(
                calls.load(std::sync::atomic::Ordering::SeqCst),
                requests,
                "{script:?}"
            );
            let slept = clock.slept();
            assert_eq!(slept.len() as u32, requests.min(3) - 1, "{script:?}");
            let honoured = slept
                .iter()
                .filter(|d| **d == Duration::from_secs(2))
                .count();
            assert_eq!(honoured, retry_after_waits, "{script:?}: {slept:?}");
        }
    }

    #[tokio::test]
    async fn send_does_not_retry_a_connection_that_cannot_be_made() {
        // Bind and drop: nothing listens on the port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let clock = Arc::new(FakeClock::at(t0()));
        let retrier = Retrier::new(policy(3)).with_time(clock.clone(), clock.clone());
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/token");
        let err = send(&retrier, "test", || http.post(&url))
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err}");
        assert!(clock.slept().is_empty());
    }
}
