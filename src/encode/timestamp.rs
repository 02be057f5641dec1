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
///
/// The usual form (`YYYY-MM-DDThh:mm:ss[.f{1,6}](Z|±hh:mm)`) is read by hand: a parquet
/// pull reads every timestamp value twice (the row reader's check, then the column's value)
/// and the `time` crate's general parser was 1.5-3% of its CPU. Anything else (lower-case
/// `t`/`z`, 7-9 fraction digits, a leap second, an invalid date) is left to that parser,
/// which decides.
pub(crate) fn parse_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    // YYYY-MM-DDThh:mm:ssZ is the shortest form.
    if b.len() < 20 || b.len() > 40 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') || !b[0].is_ascii_digit() {
        return None;
    }
    match usual_micros(b) {
        Some(decided) => decided,
        None => general_micros(text),
    }
}

/// [`parse_micros`] through the `time` crate's RFC 3339 parser.
fn general_micros(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    // Checked: a date-time near the ends of the calendar moved to UTC can leave the range
    // `time` holds (`9999-12-31T23:00:00-05:00`), where `to_offset` panics.
    let utc = t.checked_to_offset(time::UtcOffset::UTC)?;
    if !(1..=9999).contains(&utc.year()) || t.nanosecond() % 1000 != 0 {
        return None;
    }
    i64::try_from(utc.unix_timestamp_nanos() / 1000).ok()
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds.
const FIRST_MICROS: i64 = -62_135_596_800_000_000;
const LAST_MICROS: i64 = 253_402_300_799_999_999;

/// The usual form of [`parse_micros`]: `Some(answer)` when this form decides, `None` when
/// the general parser must.
fn usual_micros(b: &[u8]) -> Option<Option<i64>> {
    fn number(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    }
    if b[10] != b'T' || b[16] != b':' {
        return None;
    }
    let year = number(&b[0..4])?;
    let month = number(&b[5..7])?;
    let day = number(&b[8..10])?;
    let hour = number(&b[11..13])?;
    let minute = number(&b[14..16])?;
    let second = number(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut fraction = 0;
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=6).contains(&digits) {
            return None;
        }
        fraction = number(&b[i + 1..i + 1 + digits])? * 10i64.pow(6 - digits as u32);
        i += 1 + digits;
    }
    let offset = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (number(&[*h1, *h2])?, number(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let micros = seconds * 1_000_000 + fraction;
    Some(
        (FIRST_MICROS..=LAST_MICROS)
            .contains(&micros)
            .then_some(micros),
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar: years counted from
/// March, so that the leap day ends a year, in 400-year cycles of 146,097 days.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let cycle = y.div_euclid(400);
    let year_of_cycle = y - cycle * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    cycle * 146_097 + day_of_cycle - 719_468
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
            // Past the year 9999 in UTC: these panicked the encoder before.
            "9999-12-31T23:00:00-05:00",
            "9999-12-31t23:00:00-05:00",
            "9999-12-31T23:59:59.5-23:59",
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

    /// The hand-read form agrees with the `time` crate on every string it decides: dates
    /// around leap days and month ends, the first and last years, offsets pushing a value
    /// out of range, every fraction length, and malformed variants of each.
    #[test]
    fn the_usual_form_agrees_with_the_general_parser() {
        let dates = [
            "2024-02-29",
            "2023-02-29",
            "1900-02-29",
            "2000-02-29",
            "2026-04-31",
            "2026-04-30",
            "2026-12-31",
            "0001-01-01",
            "9999-12-31",
            "0000-12-31",
            "2026-00-10",
            "2026-13-01",
            "2026-01-00",
            "1970-01-01",
            "1969-12-31",
            "2026-07-15",
            "0400-03-01",
            "0004-02-29",
        ];
        let times = [
            "00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "07:08:09", "1a:00:00",
        ];
        let fractions = [
            "",
            ".5",
            ".12",
            ".123456",
            ".1234567",
            ".123456000",
            ".",
            ".12x",
        ];
        let offsets = [
            "Z", "z", "+00:00", "-00:00", "+02:00", "-23:59", "+23:59", "+24:00", "+05:60",
            "+0200", "", "Z ", "+02:00Z",
        ];
        let mut decided = 0;
        for d in dates {
            for t in times {
                for f in fractions {
                    for o in offsets {
                        for sep in ["T", "t"] {
                            let text = format!("{d}{sep}{t}{f}{o}");
                            assert_eq!(
                                parse_micros(&text),
                                if text.len() < 20 {
                                    None
                                } else {
                                    general_micros(&text)
                                },
                                "{text}"
                            );
                            decided += usize::from(
                                text.len() >= 20 && usual_micros(text.as_bytes()).is_some(),
                            );
                        }
                    }
                }
            }
        }
        assert!(decided > 500, "the usual form decided only {decided}");
        assert_eq!(
            (
                parse_micros("0001-01-01T00:00:00Z"),
                parse_micros("9999-12-31T23:59:59.999999Z")
            ),
            (Some(FIRST_MICROS), Some(LAST_MICROS))
        );
    }
}
