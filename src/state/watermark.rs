//! Incremental runs (`--since-field updated_at --since-param updated_since --lag 5m`).
//!
//! The rule, in full:
//! 1. A run records W, the largest `since-field` value among the records it committed, and
//!    the hashes of the exact bytes of its records whose value is within `lag` of W.
//! 2. The next run asks the API for `since-param = W − lag`. APIs filter inclusively, so the
//!    records at the boundary (and, with a lag, in the window before it) come again.
//! 3. It drops a record when its value is at most W and its bytes are among the previous
//!    run's hashes — it was delivered already. Everything else is kept: records after W,
//!    records in the window that changed (new bytes), and late arrivals in the window.
//!
//! So a record exactly on the boundary is delivered once, and `--lag` catches records that
//! appear late with older timestamps without duplicating the ones already delivered.
//! Records without the field (or with null) are kept and do not move the watermark.
//! Values must be RFC 3339 times or numbers; one run may not mix the two.

use super::checkpoint::Watermark;
use crate::source::extract::JsonDoc;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    #[error("--since-field {field}: value {value:?} is neither an RFC 3339 time nor a number")]
    BadValue { field: String, value: String },
    #[error("--since-field {field}: mixes times and numbers ({a:?}, {b:?})")]
    Mixed { field: String, a: String, b: String },
    #[error("record is not valid JSON: {0}")]
    Record(String),
}

/// A since-field value, ordered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SinceValue {
    /// Unix time in nanoseconds.
    Time(i128),
    Number(f64),
}

impl SinceValue {
    fn parse(field: &str, text: &str) -> Result<Self, WatermarkError> {
        if let Ok(t) =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        {
            return Ok(SinceValue::Time(t.unix_timestamp_nanos()));
        }
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(SinceValue::Number(n)),
            _ => Err(WatermarkError::BadValue {
                field: field.into(),
                value: text.into(),
            }),
        }
    }

    fn minus(self, lag: Duration) -> Self {
        match self {
            SinceValue::Time(ns) => SinceValue::Time(ns - lag.as_nanos() as i128),
            SinceValue::Number(n) => SinceValue::Number(n - lag.as_secs_f64()),
        }
    }

    fn cmp(self, other: Self, field: &str) -> Result<Ordering, WatermarkError> {
        match (self, other) {
            (SinceValue::Time(a), SinceValue::Time(b)) => Ok(a.cmp(&b)),
            (SinceValue::Number(a), SinceValue::Number(b)) => Ok(a.total_cmp(&b)),
            (a, b) => Err(WatermarkError::Mixed {
                field: field.into(),
                a: format!("{a:?}"),
                b: format!("{b:?}"),
            }),
        }
    }

    /// Ordering key for the window map (values of one kind only, enforced by `cmp`).
    fn key(self) -> i128 {
        match self {
            SinceValue::Time(ns) => ns,
            // Scaled so that numeric watermarks keep 1e-6 precision in the window's order.
            SinceValue::Number(n) => (n * 1e6) as i128,
        }
    }
}

/// The value to send as `since-param` for a run after `previous`: `max − lag`, written like
/// the API wrote `max` (RFC 3339 in UTC for times).
pub fn since_value(previous: &Watermark, lag: Duration) -> Result<String, WatermarkError> {
    if lag.is_zero() {
        return Ok(previous.max.clone());
    }
    match SinceValue::parse(&previous.field, &previous.max)?.minus(lag) {
        SinceValue::Time(ns) => time::OffsetDateTime::from_unix_timestamp_nanos(ns)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .ok_or_else(|| WatermarkError::BadValue {
                field: previous.field.clone(),
                value: previous.max.clone(),
            }),
        SinceValue::Number(n) => Ok(n.to_string()),
    }
}

fn hash_of(record: &str) -> u64 {
    let d = Sha256::digest(record.as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Follows the since-field through a run: filters what the previous run delivered and keeps
/// this run's watermark and boundary window.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    field: String,
    lag: Duration,
    /// The previous run's W and boundary hashes.
    previous: Option<(SinceValue, HashSet<u64>)>,
    max: Option<(SinceValue, String)>,
    /// Hashes of kept records by value, pruned below `max − lag`.
    window: BTreeMap<i128, Vec<u64>>,
}

impl WatermarkTracker {
    /// A tracker for `field`, filtering against `previous` (the last completed run's
    /// watermark) and continuing from `resume` (this run's committed watermark, when a run is
    /// resumed).
    pub fn new(
        field: &str,
        lag: Duration,
        previous: Option<&Watermark>,
        resume: Option<&Watermark>,
    ) -> Result<Self, WatermarkError> {
        let parse_set = |w: &Watermark| -> HashSet<u64> {
            w.boundary
                .iter()
                .filter_map(|h| u64::from_str_radix(h, 16).ok())
                .collect()
        };
        let previous = match previous {
            Some(w) => Some((SinceValue::parse(field, &w.max)?, parse_set(w))),
            None => None,
        };
        let mut tracker = Self {
            field: field.to_string(),
            lag,
            previous,
            max: None,
            window: BTreeMap::new(),
        };
        if let Some(w) = resume {
            let max = SinceValue::parse(field, &w.max)?;
            tracker.max = Some((max, w.max.clone()));
            // A snapshot keeps hashes, not their values: filed under `max`, they are kept a
            // little longer than needed (until `max − lag` passes the old `max`), which only
            // means the next run also drops those already-delivered records.
            tracker
                .window
                .insert(max.key(), parse_set(w).into_iter().collect());
        }
        Ok(tracker)
    }

    /// Whether to keep `record`; kept records move the watermark.
    pub fn keep(&mut self, record: &str) -> Result<bool, WatermarkError> {
        let doc = JsonDoc::parse(record).map_err(|e| WatermarkError::Record(e.to_string()))?;
        let text = doc
            .get_text(&self.field)
            .map_err(|e| WatermarkError::Record(e.to_string()))?;
        let Some(text) = text else {
            return Ok(true);
        };
        let value = SinceValue::parse(&self.field, &text)?;
        let hash = hash_of(record);
        if let Some((w, seen)) = &self.previous {
            if value.cmp(*w, &self.field)? != Ordering::Greater && seen.contains(&hash) {
                return Ok(false);
            }
        }
        let raise = match &self.max {
            None => true,
            Some((max, _)) => value.cmp(*max, &self.field)? == Ordering::Greater,
        };
        if raise {
            self.max = Some((value, text));
        }
        if let Some((max, _)) = &self.max {
            let floor = max.minus(self.lag);
            if value.cmp(floor, &self.field)? != Ordering::Less {
                self.window.entry(value.key()).or_default().push(hash);
            }
            let floor_key = floor.key();
            self.window = self.window.split_off(&floor_key);
        }
        Ok(true)
    }

    /// The watermark so far: the largest value and the window's hashes.
    pub fn snapshot(&self) -> Option<Watermark> {
        let (_, max_text) = self.max.as_ref()?;
        let mut boundary: Vec<String> = self
            .window
            .values()
            .flatten()
            .map(|h| format!("{h:016x}"))
            .collect();
        boundary.sort();
        boundary.dedup();
        Some(Watermark {
            field: self.field.clone(),
            max: max_text.clone(),
            boundary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, t: &str) -> String {
        format!(r#"{{"id":{id},"updated_at":"{t}"}}"#)
    }

    #[test]
    fn boundary_records_are_delivered_once_and_changes_again() {
        // Run 1 delivers three records; W = 10:00:02.
        let mut first = WatermarkTracker::new("updated_at", Duration::ZERO, None, None).unwrap();
        for r in [
            rec(1, "2026-01-01T10:00:00Z"),
            rec(2, "2026-01-01T10:00:02Z"),
            rec(3, "2026-01-01T10:00:02Z"),
        ] {
            assert!(first.keep(&r).unwrap());
        }
        let w = first.snapshot().unwrap();
        assert_eq!(w.max, "2026-01-01T10:00:02Z");
        assert_eq!(w.boundary.len(), 2, "both records at W are in the boundary");
        assert_eq!(
            since_value(&w, Duration::ZERO).unwrap(),
            "2026-01-01T10:00:02Z"
        );

        // Run 2 gets the boundary again (inclusive filter), a changed record at W, and news.
        let mut second =
            WatermarkTracker::new("updated_at", Duration::ZERO, Some(&w), None).unwrap();
        assert!(
            !second.keep(&rec(2, "2026-01-01T10:00:02Z")).unwrap(),
            "already delivered"
        );
        assert!(
            !second.keep(&rec(3, "2026-01-01T10:00:02Z")).unwrap(),
            "already delivered"
        );
        assert!(
            second
                .keep(r#"{"id":3,"updated_at":"2026-01-01T10:00:02Z","x":1}"#)
                .unwrap(),
            "changed bytes"
        );
        assert!(second.keep(&rec(4, "2026-01-01T10:00:03Z")).unwrap());
        assert_eq!(second.snapshot().unwrap().max, "2026-01-01T10:00:03Z");
    }

    #[test]
    fn lag_asks_earlier_and_drops_only_what_was_delivered() {
        let lag = Duration::from_secs(60);
        let mut first = WatermarkTracker::new("updated_at", lag, None, None).unwrap();
        for r in [
            rec(1, "2026-01-01T09:00:00Z"),
            rec(2, "2026-01-01T09:59:30Z"),
            rec(3, "2026-01-01T10:00:00Z"),
        ] {
            first.keep(&r).unwrap();
        }
        let w = first.snapshot().unwrap();
        assert_eq!(w.boundary.len(), 2, "records within the lag window: {w:?}");
        assert_eq!(since_value(&w, lag).unwrap(), "2026-01-01T09:59:00Z");
        let mut second = WatermarkTracker::new("updated_at", lag, Some(&w), None).unwrap();
        assert!(!second.keep(&rec(2, "2026-01-01T09:59:30Z")).unwrap());
        assert!(!second.keep(&rec(3, "2026-01-01T10:00:00Z")).unwrap());
        assert!(
            second.keep(&rec(9, "2026-01-01T09:59:45Z")).unwrap(),
            "a late arrival in the window"
        );
    }

    #[test]
    fn numbers_missing_fields_and_bad_values() {
        let mut t = WatermarkTracker::new("seq", Duration::ZERO, None, None).unwrap();
        assert!(t.keep(r#"{"seq": 5}"#).unwrap());
        assert!(t.keep(r#"{"seq": 12}"#).unwrap());
        assert!(
            t.keep(r#"{"other": 1}"#).unwrap(),
            "records without the field are kept"
        );
        assert_eq!(t.snapshot().unwrap().max, "12");
        let err = t.keep(r#"{"seq": "yesterday"}"#).unwrap_err().to_string();
        assert!(
            err.contains("neither an RFC 3339 time nor a number"),
            "{err}"
        );
        let err = t
            .keep(r#"{"seq": "2026-01-01T00:00:00Z"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mixes times and numbers"), "{err}");
    }

    #[test]
    fn resumes_from_a_committed_snapshot() {
        let mut t = WatermarkTracker::new("updated_at", Duration::ZERO, None, None).unwrap();
        t.keep(&rec(1, "2026-01-01T10:00:00Z")).unwrap();
        let snap = t.snapshot().unwrap();
        let mut resumed =
            WatermarkTracker::new("updated_at", Duration::ZERO, None, Some(&snap)).unwrap();
        assert_eq!(resumed.snapshot().unwrap(), snap);
        resumed.keep(&rec(2, "2026-01-01T11:00:00Z")).unwrap();
        assert_eq!(
            resumed.snapshot().unwrap().boundary.len(),
            1,
            "old window pruned"
        );
    }
}
