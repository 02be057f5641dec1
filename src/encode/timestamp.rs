//! ISO 8601 timestamps: which strings become timestamp columns, and how they are written.
//!
//! A string column becomes a timestamp column only when every value is an RFC 3339 date-time
//! (the ISO 8601 profile with a mandatory offset, e.g. `2026-01-02T03:04:05.123Z` or
//! `…+02:00`) that converts to UTC microseconds without loss: a year in 1..=9999 (what
//! Synapse's `DATETIME2` holds) and no digits below the microsecond. A date-time without an
//! offset stays a string: which zone it meant is unknown, and guessing UTC would silently
//! shift it. Values are stored as UTC: parquet `TIMESTAMP(MICROS, UTC)`, csv
//! `YYYY-MM-DD hh:mm:ss.ffffff`, the form `DATETIME2` parses without a style.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since the Unix epoch (UTC) of `text`, if it is a lossless RFC 3339 date-time.
/// Cheap for text that is plainly not a timestamp (the shape is checked before parsing).
pub(crate) fn parse_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    // YYYY-MM-DDThh:mm:ssZ is the shortest form.
    if b.len() < 20 || b.len() > 40 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') || !b[0].is_ascii_digit() {
        return None;
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let utc = t.to_offset(time::UtcOffset::UTC);
    if !(1..=9999).contains(&utc.year()) || t.nanosecond() % 1000 != 0 {
        return None;
    }
    i64::try_from(utc.unix_timestamp_nanos() / 1000).ok()
}

/// The csv text of a timestamp: UTC, `YYYY-MM-DD hh:mm:ss.ffffff`.
pub(crate) fn csv_text(micros: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
    let f = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
    );
    t.format(&f).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_lossless_rfc3339() {
        let ok = [
            ("2026-01-02T03:04:05Z", "2026-01-02 03:04:05.000000"),
            ("2026-01-02T03:04:05.123456Z", "2026-01-02 03:04:05.123456"),
            ("2026-01-02T05:04:05+02:00", "2026-01-02 03:04:05.000000"),
            ("2026-01-02t03:04:05.5z", "2026-01-02 03:04:05.500000"),
            ("0001-01-01T00:00:00Z", "0001-01-01 00:00:00.000000"),
        ];
        for (text, want) in ok {
            let micros = parse_micros(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(csv_text(micros).unwrap(), want, "{text}");
        }
        for bad in [
            "2026-01-02",
            "2026-01-02T03:04:05",
            "2026-01-02 03:04:05Z",
            "2026-01-02T03:04:05.123456789Z",
            "2026-13-02T03:04:05Z",
            "not a timestamp at all, no",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_micros(bad), None, "{bad}");
        }
    }
}
