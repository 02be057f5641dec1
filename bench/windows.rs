//! Time windows for the bench API's cursor style (bench/scale.sh, issue 17): the records are
//! split into `count` equal windows of `secs` seconds from `start`, each a whole number of
//! pages. A first request carrying the window's start in the query parameter `param` (RFC 3339,
//! a date, epoch seconds or epoch milliseconds: whatever `gatelake pull --window-format` sends)
//! gets that window's first page, and the cursor chain ends on the window's last page, so a
//! window partition pulls exactly its own records and nothing else.

use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// How the records are split into windows.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Query parameter carrying a window's start.
    pub param: String,
    /// Epoch seconds of the first window's start.
    pub start: i64,
    /// Length of a window, in seconds.
    pub secs: i64,
    /// Number of windows.
    pub count: u64,
    /// Pages in each window.
    pub pages_per_window: u64,
}

impl Windows {
    /// `count` windows over `records` records in pages of `page_size`; each window must hold
    /// a whole number of pages.
    pub fn new(
        param: &str,
        start: &str,
        secs: i64,
        count: u64,
        records: u64,
        page_size: u64,
    ) -> Result<Self, String> {
        if count == 0 || secs <= 0 {
            return Err("--windows and --window-secs must be positive".into());
        }
        let per_window = records / count;
        if !records.is_multiple_of(count)
            || !per_window.is_multiple_of(page_size)
            || per_window == 0
        {
            return Err(format!(
                "--records {records} must split into {count} windows of whole pages of {page_size}"
            ));
        }
        Ok(Self {
            param: param.to_string(),
            start: parse_instant(start)?,
            secs,
            count,
            pages_per_window: per_window / page_size,
        })
    }

    /// The first page of the window the query names, or `None` when it names none.
    pub fn first_page(&self, query: &HashMap<String, String>) -> Option<Result<u64, String>> {
        let value = query.get(&self.param)?;
        Some(parse_instant(value).and_then(|t| {
            let offset = t - self.start;
            if offset < 0 || offset % self.secs != 0 || (offset / self.secs) as u64 >= self.count {
                return Err(format!(
                    "{}={value} is not the start of one of the {} windows",
                    self.param, self.count
                ));
            }
            Ok((offset / self.secs) as u64 * self.pages_per_window)
        }))
    }

    /// Whether `page` is the last page of its window.
    pub fn is_last_page(&self, page: u64) -> bool {
        (page + 1).is_multiple_of(self.pages_per_window)
    }
}

/// RFC 3339, a date (midnight UTC), epoch seconds, or epoch milliseconds (13 digits or more).
pub fn parse_instant(value: &str) -> Result<i64, String> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        return Ok(if v.trim_start_matches('-').len() >= 13 {
            n / 1000
        } else {
            n
        });
    }
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    if let Ok(d) = Date::parse(v, format_description!("[year]-[month]-[day]")) {
        return Ok(PrimitiveDateTime::new(d, Time::MIDNIGHT)
            .assume_utc()
            .unix_timestamp());
    }
    Err(format!(
        "{value:?} is not RFC 3339, a date or an epoch time"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_in_every_format_agree() {
        let t = 1_767_225_600; // 2026-01-01T00:00:00Z
        for v in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00+01:00",
            "2026-01-01",
            "1767225600",
            "1767225600000",
        ] {
            assert_eq!(parse_instant(v), Ok(t), "{v}");
        }
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn a_window_start_names_its_first_page() {
        let w = Windows::new("from", "2026-01-01", 3600, 4, 400, 50).unwrap();
        assert_eq!(w.pages_per_window, 2);
        let q = |v: &str| HashMap::from([("from".to_string(), v.to_string())]);
        assert_eq!(w.first_page(&q("2026-01-01T02:00:00Z")), Some(Ok(4)));
        assert!(w.first_page(&q("2026-01-01T00:30:00Z")).unwrap().is_err());
        assert!(w.first_page(&q("2026-01-01T04:00:00Z")).unwrap().is_err());
        assert_eq!(w.first_page(&HashMap::new()), None);
        assert!(w.is_last_page(1) && w.is_last_page(7) && !w.is_last_page(2));
        assert!(Windows::new("from", "2026-01-01", 3600, 3, 400, 50).is_err());
    }
}
