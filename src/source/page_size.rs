//! The page size under API Gateway's integration timeout. A 504 "Endpoint request timed out"
//! means the backend took longer than API Gateway's 29 s for that page: asking for the same
//! records in smaller pages is the one retry that can help. But a timeout is often a passing
//! slowness, and under an ordinary fault mix some 504s are random, so a size that only ever
//! halves collapses (a pull once ended up asking for `limit=1`, 17,000 requests for 100
//! pages). So:
//!
//! - halve only for that 504 (not for other 5xx, nor for a 504 with another message);
//! - never below a floor, 1/16 of the configured size: there a 504 is retried like any
//!   other transient failure, and the run fails with the usual retry message if it persists;
//! - grow back, doubling up to the configured size, after [`GROW_AFTER`] pages in a row
//!   arrived at the current size;
//! - the configured size is always the baseline: a resumed run starts at it again, whatever
//!   size its checkpoint's next request was asked with ([`PageSizing::apply`]).
//!
//! The size lives in the request URL (the paginator reads and rewrites it), so the checkpoint
//! and predictions stay plain URLs. Shared by the requests in flight (`--concurrency`).

use super::paginate::Paginator;
use std::sync::{Arc, Mutex, PoisonError};
use url::Url;

/// Pages in a row at the current size before it doubles again.
pub const GROW_AFTER: u32 = 4;

/// The floor is the configured size divided by this.
pub const FLOOR_DIVISOR: u64 = 16;

/// The page size a run asks for, as 504s and successes move it.
#[derive(Debug)]
pub struct PageSizing {
    paginator: Arc<dyn Paginator>,
    configured: u64,
    floor: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    current: u64,
    streak: u32,
    shrinks: u64,
}

/// Whether a retry reason is API Gateway's integration timeout (`classify`'s reason for a
/// 504 carries the body's message).
pub fn is_integration_timeout(reason: &str) -> bool {
    reason.starts_with("504") && reason.to_ascii_lowercase().contains("timed out")
}

impl PageSizing {
    /// Sizing for `paginator`, when its style has a page size to move.
    pub fn new(paginator: Arc<dyn Paginator>) -> Option<Self> {
        let configured = paginator.configured_page_size()?;
        Some(Self {
            paginator,
            configured,
            floor: (configured / FLOOR_DIVISOR).max(1),
            state: Mutex::new(State {
                current: configured,
                streak: 0,
                shrinks: 0,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is three counters, consistent after every update: a panic elsewhere
        // cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The size requests are asked with now.
    pub fn current(&self) -> u64 {
        self.state().current
    }

    /// The smallest size a 504 shrinks to.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Times a 504 halved the size.
    pub fn shrinks(&self) -> u64 {
        self.state().shrinks
    }

    /// `url` asked with the current size, when the style can re-express its position at that
    /// size (an offset always can; a page number only on a boundary both sizes share).
    pub fn apply(&self, url: &Url) -> Url {
        let current = self.current();
        match self.paginator.page_size(url) {
            Some(asked) if asked != current => self
                .paginator
                .resize(url, current)
                .unwrap_or_else(|| url.clone()),
            _ => url.clone(),
        }
    }

    /// After an integration timeout for `url`: the same records asked in smaller pages, or
    /// `None` at the floor (retry as for any transient failure).
    pub fn after_timeout(&self, url: &Url) -> Option<Url> {
        let asked = self.paginator.page_size(url)?;
        if asked <= self.floor {
            return None;
        }
        let smaller = (asked / 2).max(self.floor);
        let next = self.paginator.resize(url, smaller)?;
        let mut s = self.state();
        s.current = s.current.min(smaller);
        s.streak = 0;
        s.shrinks += 1;
        Some(next)
    }

    /// A page of `url` arrived: after [`GROW_AFTER`] in a row at the current size, double it
    /// (up to the configured size).
    pub fn after_success(&self, url: &Url) {
        let asked = self.paginator.page_size(url);
        let mut s = self.state();
        if asked.is_some_and(|a| a < s.current) {
            // A page asked before the size grew: it says nothing about the current size.
            return;
        }
        s.streak += 1;
        if s.streak >= GROW_AFTER && s.current < self.configured {
            s.current = s.current.saturating_mul(2).min(self.configured);
            s.streak = 0;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::source::paginate::{OffsetPaginator, PageNumberPaginator};

    fn offset(limit: u64) -> PageSizing {
        PageSizing::new(Arc::new(OffsetPaginator::new(
            "offset".into(),
            "limit".into(),
            limit,
            0,
        )))
        .unwrap()
    }

    fn limit_of(u: &Url) -> u64 {
        crate::source::paginate::query_param(u, "limit")
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn halves_to_a_floor_and_grows_back() {
        let sizing = offset(500);
        let mut url = Url::parse("https://h/p?offset=1000&limit=500").unwrap();
        let mut sizes = vec![];
        while let Some(smaller) = sizing.after_timeout(&url) {
            url = smaller;
            sizes.push(limit_of(&url));
        }
        // 500 → 250 → 125 → 62 → 31 (500/16), then no further.
        assert_eq!(sizes, [250, 125, 62, 31]);
        assert_eq!(sizing.floor(), 31);
        assert_eq!(sizing.shrinks(), 4);
        assert_eq!(
            crate::source::paginate::query_param(&url, "offset").as_deref(),
            Some("1000")
        );
        // Four pages in a row at a size double it, up to the configured size.
        let mut grown = vec![];
        for _ in 0..40 {
            let next = sizing.apply(&url);
            sizing.after_success(&next);
            url = next;
            grown.push(sizing.current());
        }
        assert_eq!(&grown[..4], [31, 31, 31, 62]);
        assert_eq!(grown.last(), Some(&500));
        assert_eq!(limit_of(&sizing.apply(&url)), 500);
        // A page asked at an older, smaller size does not count towards growing.
        let sizing = offset(100);
        let small = sizing
            .after_timeout(&Url::parse("https://h/p?offset=0&limit=100").unwrap())
            .unwrap();
        for _ in 0..3 {
            sizing.after_success(&small);
        }
        sizing.after_success(&Url::parse("https://h/p?offset=0&limit=25").unwrap());
        assert_eq!(sizing.current(), 50);
    }

    #[test]
    fn a_resumed_url_is_asked_at_the_configured_size() {
        let sizing = offset(400);
        let saved = Url::parse("https://h/p?offset=800&limit=100").unwrap();
        assert_eq!(
            sizing.apply(&saved).as_str(),
            "https://h/p?offset=800&limit=400"
        );
        // Page numbers: page 9 of 50 (records 400..450) is not on a 400 boundary: kept.
        let pages = PageSizing::new(Arc::new(PageNumberPaginator::new(
            "page".into(),
            1,
            Some(("per_page".into(), 100)),
        )))
        .unwrap();
        let odd = Url::parse("https://h/p?page=10&per_page=50").unwrap();
        assert_eq!(pages.apply(&odd), odd);
        let even = Url::parse("https://h/p?page=9&per_page=50").unwrap();
        assert_eq!(
            pages.apply(&even).as_str(),
            "https://h/p?per_page=100&page=5"
        );
    }

    #[test]
    fn only_the_integration_timeout_shrinks() {
        assert!(is_integration_timeout("504 Endpoint request timed out"));
        assert!(!is_integration_timeout("504 Gateway Timeout"));
        assert!(!is_integration_timeout("503 Service Unavailable"));
        assert!(!is_integration_timeout("timed out: operation timed out"));
    }
}
