//! The one token cache every credential uses: Entra tokens of every source (per scope) and
//! the STS role credentials. A cached value is renewed ahead of its *actual* expiry — the one
//! its issuer returned, not the one asked for — by a margin that fits its lifetime:
//! `min(5 minutes, lifetime / 5)`, the lifetime counted from when it was obtained. An hour-long
//! token is renewed five minutes early, a five-minute STS session one minute early, a
//! four-minute Entra token 48 seconds early; a still-valid value is never fetched again on
//! every request, however short-lived (a fixed five-minute margin made gatelake fetch a new
//! four-minute token for each request).
//!
//! The clock is injected ([`Clock`], from [`crate::clock`]): callers pass `now`, so refresh is tested with a fake
//! clock. Concurrent callers for a stale key share one fetch. When a renewal fails while the
//! cached value is still valid, the cached value is used (and the failure returned once it
//! has expired).

pub use crate::clock::{Clock, SystemClock};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime};

/// The largest refresh margin.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How long before its expiry a value that lives `lifetime` is renewed.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(MAX_REFRESH_MARGIN)
}

/// How usable a cached value is at some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness<T> {
    /// Outside the refresh margin: use it.
    Fresh(T),
    /// Inside the margin with more than half of it left: use it, and renew it (in the
    /// background where the caller can).
    Renew(T),
    /// Inside the last half of the margin, expired, or absent: renew before use.
    Stale,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    value: T,
    obtained: SystemTime,
    expires: Option<SystemTime>,
}

impl<T: Clone> Entry<T> {
    fn freshness(&self, now: SystemTime) -> Freshness<T> {
        let Some(expires) = self.expires else {
            return Freshness::Fresh(self.value.clone());
        };
        let lifetime = expires
            .duration_since(self.obtained)
            .unwrap_or(Duration::ZERO);
        let margin = refresh_margin(lifetime);
        let left = expires.duration_since(now).unwrap_or(Duration::ZERO);
        if left > margin {
            Freshness::Fresh(self.value.clone())
        } else if left > margin / 2 {
            Freshness::Renew(self.value.clone())
        } else {
            Freshness::Stale
        }
    }

    fn valid_at(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// Values per key, renewed ahead of their expiry (see the module docs).
#[derive(Debug)]
pub struct TokenCache<K, T> {
    entries: std::sync::Mutex<HashMap<K, Entry<T>>>,
    /// Held while a fetch runs, so concurrent callers share it.
    fetching: tokio::sync::Mutex<()>,
}

impl<K, T> Default for TokenCache<K, T> {
    fn default() -> Self {
        Self {
            entries: std::sync::Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }
}

impl<K: Eq + Hash + Clone, T: Clone> TokenCache<K, T> {
    fn with_entries<R>(&self, f: impl FnOnce(&mut HashMap<K, Entry<T>>) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-insert; the map is still
        // a valid cache.
        let mut guard = match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// How usable the value for `key` is at `now`.
    pub fn lookup(&self, key: &K, now: SystemTime) -> Freshness<T> {
        self.with_entries(|m| {
            m.get(key)
                .map(|e| e.freshness(now))
                .unwrap_or(Freshness::Stale)
        })
    }

    /// Keep `value`, obtained at `now`, which expires at `expires` (`None`: never).
    pub fn store(&self, key: K, value: T, now: SystemTime, expires: Option<SystemTime>) {
        self.with_entries(|m| {
            m.insert(
                key,
                Entry {
                    value,
                    obtained: now,
                    expires,
                },
            )
        });
    }

    /// Drop the value for `key`: its issuer's audience refused it (an API's 401
    /// `invalid_token`), so the next caller fetches a new one — and a failed fetch does not
    /// fall back to it.
    pub fn forget(&self, key: &K) {
        self.with_entries(|m| m.remove(key));
    }

    /// The value for `key`: the cached one unless it is due for renewal, else one fetch
    /// shared by every concurrent caller. `fetch` returns the value and its expiry.
    pub async fn get_or_fetch<F, Fut, E>(&self, key: &K, now: SystemTime, fetch: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(T, Option<SystemTime>), E>>,
    {
        if let Freshness::Fresh(v) = self.lookup(key, now) {
            return Ok(v);
        }
        let _one_fetch = self.fetching.lock().await;
        // Someone else may have renewed it while this caller waited.
        if let Freshness::Fresh(v) = self.lookup(key, now) {
            return Ok(v);
        }
        match fetch().await {
            Ok((value, expires)) => {
                self.store(key.clone(), value.clone(), now, expires);
                Ok(value)
            }
            Err(e) => {
                let cached = self.with_entries(|m| {
                    m.get(key)
                        .filter(|entry| entry.valid_at(now))
                        .map(|entry| entry.value.clone())
                });
                match cached {
                    Some(v) => {
                        tracing::warn!(
                            "renewing a credential failed; using the cached one until it expires"
                        );
                        Ok(v)
                    }
                    None => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn margins_fit_the_lifetime() {
        for (lifetime, margin) in [(3600, 300), (900, 180), (300, 60), (240, 48), (10, 2)] {
            assert_eq!(
                refresh_margin(Duration::from_secs(lifetime)),
                Duration::from_secs(margin),
                "lifetime {lifetime}s"
            );
        }
    }

    #[tokio::test]
    async fn short_lived_values_are_renewed_a_handful_of_times_not_per_request() {
        // A four-minute token asked for every half second over half an hour.
        let cache: TokenCache<&str, u32> = TokenCache::default();
        let fetches = AtomicU32::new(0);
        let mut now = t0();
        for _ in 0..3600 {
            let got: Result<u32, ()> = cache
                .get_or_fetch(&"scope", now, || async {
                    let n = fetches.fetch_add(1, Ordering::SeqCst);
                    Ok((n, Some(now + Duration::from_secs(240))))
                })
                .await;
            got.unwrap();
            now += Duration::from_millis(500);
        }
        // 30 minutes / (240 s - 48 s margin) = 9.4 → 10 fetches.
        assert_eq!(fetches.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_the_valid_value_until_it_expires() {
        let cache: TokenCache<(), &str> = TokenCache::default();
        cache.store((), "old", t0(), Some(t0() + Duration::from_secs(100)));
        let in_margin = t0() + Duration::from_secs(95);
        let got = cache
            .get_or_fetch(&(), in_margin, || async { Err::<(&str, _), _>("down") })
            .await;
        assert_eq!(got, Ok("old"));
        let expired = t0() + Duration::from_secs(101);
        let got = cache
            .get_or_fetch(&(), expired, || async { Err::<(&str, _), _>("down") })
            .await;
        assert_eq!(got, Err("down"));
    }

    #[test]
    fn freshness_steps() {
        let cache: TokenCache<(), u8> = TokenCache::default();
        cache.store((), 1, t0(), Some(t0() + Duration::from_secs(3600)));
        let at = |s| t0() + Duration::from_secs(s);
        assert_eq!(cache.lookup(&(), at(3000)), Freshness::Fresh(1));
        assert_eq!(cache.lookup(&(), at(3400)), Freshness::Renew(1));
        assert_eq!(cache.lookup(&(), at(3500)), Freshness::Stale);
        cache.store((), 2, t0(), None);
        assert_eq!(cache.lookup(&(), at(1_000_000)), Freshness::Fresh(2));
    }
}
