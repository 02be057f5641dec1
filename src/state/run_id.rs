//! A run's id and the times its checkpoint and manifest carry (RFC 3339, UTC). Here, with the
//! state that names them, so the run, its stages and its manifest stamp times the same way.

/// A new run id: UTC time to the second plus 16 random bits, so ids sort by start time and
/// two runs started in the same second do not collide.
pub fn new_run_id(now: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = now
        .to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("{stamp}-{:04x}", rand::random::<u16>())
}

/// `t` as RFC 3339 (seconds since the epoch if it cannot be formatted).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Now, as RFC 3339.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id(time::macros::datetime!(2026-11-24 23:05:09 UTC));
        let b = new_run_id(time::macros::datetime!(2026-11-24 23:05:10 UTC));
        assert!(a.starts_with("20261124T230509Z-"), "{a}");
        assert_eq!(a.len(), "20261124T230509Z-0000".len());
        assert!(a < b);
    }
}
