//! Time windows: `[start, start + step)`, `[start + step, start + 2·step)`, … up to the end,
//! the last one cut short there. Each window's bounds go to the API as two query parameters
//! in the chosen format; the `to` bound is exclusive, so consecutive windows share a bound
//! and an API that filters `from <= t < to` sees every record exactly once.
//!
//! A window is identified by its start (`w-20260101T000000Z`), so ids sort in time order and
//! are the same on every worker. Bounds are whole seconds (whole days for `date`): a window
//! that a format cannot write exactly is refused, since rounding would overlap or gap.

use super::MAX_PARTITIONS;
use super::{
    Covers, Partition, PartitionError, PartitionRequest, WindowEnd, WindowFormat, WindowSpec,
};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const DAY: u64 = 86_400;

/// The windows of `spec`, with `now` standing for an end of `now`.
pub(super) fn plan(
    spec: &WindowSpec,
    now: OffsetDateTime,
) -> Result<Vec<Partition>, PartitionError> {
    let start = spec.start.to_offset(UtcOffset::UTC);
    let step = spec.step;
    if step.as_secs() == 0 || step.subsec_nanos() != 0 {
        return Err(invalid(format!(
            "--window {}: a window must be a whole number of seconds, at least 1s (e.g. 1d, 6h, 15m)",
            show_step(step)
        )));
    }
    if start.nanosecond() != 0 {
        return Err(invalid(format!(
            "--window-start {}: give a whole second",
            rfc3339(start)
        )));
    }
    let end = match spec.end {
        WindowEnd::At(t) => t.to_offset(UtcOffset::UTC),
        WindowEnd::Now => {
            let now = now.to_offset(UtcOffset::UTC);
            let now = now.replace_nanosecond(0).unwrap_or(now);
            if spec.format == WindowFormat::Date {
                // Whole days only: today's partial day is left to a later run.
                now.replace_time(time::Time::MIDNIGHT)
            } else {
                now
            }
        }
    };
    if end <= start {
        let what = match spec.end {
            WindowEnd::Now => "now".to_string(),
            WindowEnd::At(_) => rfc3339(end),
        };
        return Err(invalid(format!(
            "--window-end ({what}) is not after --window-start ({}): give an end later than the start",
            rfc3339(start)
        )));
    }
    if spec.format == WindowFormat::Date {
        let midnight = |t: OffsetDateTime| t.time() == time::Time::MIDNIGHT;
        if !midnight(start) || !midnight(end) || !step.as_secs().is_multiple_of(DAY) {
            return Err(invalid(format!(
                "--window-format date writes whole days: --window-start and --window-end must be dates (midnight UTC) and --window whole days (1d, 7d), not {} from {} to {}",
                show_step(step),
                rfc3339(start),
                rfc3339(end)
            )));
        }
    }
    let span = (end - start).whole_seconds() as u64;
    let count = span.div_ceil(step.as_secs());
    if count > MAX_PARTITIONS as u64 {
        return Err(invalid(format!(
            "--window {} from {} to {} makes {count} partitions, more than {MAX_PARTITIONS}: use longer windows",
            show_step(step),
            rfc3339(start),
            rfc3339(end)
        )));
    }
    let step = time::Duration::seconds(step.as_secs() as i64);
    let mut list = Vec::with_capacity(count as usize);
    let mut from = start;
    while from < end {
        let to = (from + step).min(end);
        list.push(Partition {
            id: format!("w-{}", compact(from)),
            covers: Covers::Window {
                from: rfc3339(from),
                to: rfc3339(to),
            },
            request: PartitionRequest {
                query: vec![
                    (spec.from_param.clone(), format_bound(from, spec.format)),
                    (spec.to_param.clone(), format_bound(to, spec.format)),
                ],
                ..PartitionRequest::default()
            },
        });
        from = to;
    }
    Ok(list)
}

/// A window bound as the API is sent it.
pub fn format_bound(t: OffsetDateTime, format: WindowFormat) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    match format {
        WindowFormat::Rfc3339 => rfc3339(t),
        WindowFormat::Date => t
            .format(format_description!("[year]-[month]-[day]"))
            .unwrap_or_default(),
        WindowFormat::Epoch => t.unix_timestamp().to_string(),
        WindowFormat::EpochMs => (t.unix_timestamp_nanos() / 1_000_000).to_string(),
    }
}

/// `--window-start` / `--window-end`: an RFC 3339 time (`2026-01-01T00:00:00Z`, any offset)
/// or a date (`2026-01-01`, midnight UTC).
pub fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    let t = s.trim();
    if let Ok(at) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(at.to_offset(UtcOffset::UTC));
    }
    if let Ok(date) = time::Date::parse(t, format_description!("[year]-[month]-[day]")) {
        return Ok(date.midnight().assume_utc());
    }
    Err(format!(
        "'{t}' is not a time: use RFC 3339 with an offset (2026-01-01T00:00:00Z) or a date (2026-01-01, midnight UTC)"
    ))
}

/// `--window`: a length with a unit, `1d`, `6h`, `15m`, `30s`.
pub fn parse_step(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!(
            "'{t}' is not a window length: use a whole number and a unit, e.g. 1d, 6h, 15m or 30s"
        )
    })?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => DAY,
        other => {
            return Err(format!(
                "'{t}': '{other}' is not a window unit: use s, m, h or d (e.g. 1d)"
            ))
        }
    };
    if n == 0 {
        return Err(format!(
            "'{t}': a window must be longer than 0, e.g. 1d or 6h"
        ));
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{t}' is too long a window"))
}

pub(super) fn canonical(w: &WindowSpec) -> String {
    let end = match w.end {
        WindowEnd::At(t) => rfc3339(t.to_offset(UtcOffset::UTC)),
        WindowEnd::Now => "now".to_string(),
    };
    format!(
        "windows\nstart={}\nend={end}\nstep={}\nparams={},{}\nformat={}\n",
        rfc3339(w.start.to_offset(UtcOffset::UTC)),
        w.step.as_secs(),
        w.from_param,
        w.to_param,
        w.format.name()
    )
}

pub(super) fn describe(w: &WindowSpec) -> String {
    let end = match w.end {
        WindowEnd::At(t) => rfc3339(t.to_offset(UtcOffset::UTC)),
        WindowEnd::Now => "now".to_string(),
    };
    format!(
        "windows of {} from {} to {end}, sent as ?{}=…&{}=… ({})",
        show_step(w.step),
        rfc3339(w.start.to_offset(UtcOffset::UTC)),
        w.from_param,
        w.to_param,
        w.format.name()
    )
}

/// A step as the user would write it (`1d`, `6h`, `90m`, `45s`).
fn show_step(step: Duration) -> String {
    let s = step.as_secs();
    if step.subsec_nanos() != 0 {
        return format!("{}s", step.as_secs_f64());
    }
    for (unit, len) in [("d", DAY), ("h", 3_600), ("m", 60)] {
        if s > 0 && s.is_multiple_of(len) {
            return format!("{}{unit}", s / len);
        }
    }
    format!("{s}s")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// `20260101T000000Z`: the id's form of a window's start.
fn compact(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn invalid(msg: String) -> PartitionError {
    PartitionError::Invalid(msg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn spec(start: &str, end: Option<&str>, step: &str, format: WindowFormat) -> WindowSpec {
        WindowSpec {
            start: parse_time(start).unwrap(),
            end: end.map_or(WindowEnd::Now, |e| WindowEnd::At(parse_time(e).unwrap())),
            step: parse_step(step).unwrap(),
            from_param: "from".into(),
            to_param: "to".into(),
            format,
        }
    }

    fn ids_and_bounds(list: &[Partition]) -> Vec<(String, String, String)> {
        list.iter()
            .map(|p| {
                (
                    p.id.clone(),
                    p.request.query[0].1.clone(),
                    p.request.query[1].1.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn windows_tile_the_span_and_the_last_is_cut_short() {
        let now = datetime!(2030-01-01 00:00 UTC);
        let s = spec(
            "2026-01-01",
            Some("2026-01-01T15:00:00Z"),
            "6h",
            WindowFormat::Rfc3339,
        );
        let list = plan(&s, now).unwrap();
        assert_eq!(
            ids_and_bounds(&list),
            [
                (
                    "w-20260101T000000Z",
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T06:00:00Z"
                ),
                (
                    "w-20260101T060000Z",
                    "2026-01-01T06:00:00Z",
                    "2026-01-01T12:00:00Z"
                ),
                (
                    "w-20260101T120000Z",
                    "2026-01-01T12:00:00Z",
                    "2026-01-01T15:00:00Z"
                ),
            ]
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        );
        // The same spec plans the same list, whenever and wherever it is planned.
        assert_eq!(plan(&s, datetime!(2031-06-01 12:00 UTC)).unwrap(), list);
    }

    #[test]
    fn bounds_in_each_format() {
        let t = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            format_bound(t, WindowFormat::Rfc3339),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(format_bound(t, WindowFormat::Date), "2026-01-01");
        assert_eq!(format_bound(t, WindowFormat::Epoch), "1767225600");
        assert_eq!(format_bound(t, WindowFormat::EpochMs), "1767225600000");
        // Another offset is the same instant, written in UTC.
        let there = parse_time("2026-01-01T02:00:00+02:00").unwrap();
        assert_eq!(
            format_bound(there, WindowFormat::Rfc3339),
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn date_windows_are_whole_days_and_now_stops_at_today() {
        let now = datetime!(2026-01-04 13:45:10 UTC);
        let list = plan(&spec("2026-01-01", None, "1d", WindowFormat::Date), now).unwrap();
        assert_eq!(
            ids_and_bounds(&list)
                .iter()
                .map(|(_, f, t)| format!("{f}..{t}"))
                .collect::<Vec<_>>(),
            [
                "2026-01-01..2026-01-02",
                "2026-01-02..2026-01-03",
                "2026-01-03..2026-01-04"
            ]
        );
        for (start, step) in [("2026-01-01T06:00:00Z", "1d"), ("2026-01-01", "12h")] {
            let err = plan(
                &spec(start, Some("2026-02-01"), step, WindowFormat::Date),
                now,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("whole days"), "{err}");
        }
        // Any other format ends at now itself (whole seconds).
        let list = plan(
            &spec("2026-01-04T12:00:00Z", None, "1h", WindowFormat::Epoch),
            now,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[1].request.query[1].1,
            format_bound(datetime!(2026-01-04 13:45:10 UTC), WindowFormat::Epoch)
        );
    }

    #[test]
    fn an_end_not_after_the_start_is_refused_naming_both() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let err = plan(
            &spec(
                "2026-02-01",
                Some("2026-01-01"),
                "1d",
                WindowFormat::Rfc3339,
            ),
            now,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--window-end (2026-01-01T00:00:00Z) is not after --window-start (2026-02-01T00:00:00Z)"), "{err}");
        let err = plan(&spec("2026-02-01", None, "1d", WindowFormat::Rfc3339), now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--window-end (now)"), "{err}");
    }

    #[test]
    fn lengths_and_times_parse_or_say_what_to_write() {
        for (text, secs) in [
            ("1d", 86_400),
            ("6h", 21_600),
            ("15m", 900),
            ("30s", 30),
            (" 7d ", 604_800),
        ] {
            assert_eq!(parse_step(text).unwrap().as_secs(), secs, "{text}");
        }
        for bad in ["", "d", "1", "1w", "0h", "1.5h", "-1d"] {
            let err = parse_step(bad).unwrap_err();
            assert!(err.contains("1d"), "{bad}: {err}");
        }
        assert_eq!(
            parse_time("2026-03-04").unwrap(),
            datetime!(2026-03-04 00:00 UTC)
        );
        assert_eq!(
            parse_time("2026-03-04T05:06:07Z").unwrap(),
            datetime!(2026-03-04 05:06:07 UTC)
        );
        for bad in ["2026-03-04T05:06:07", "yesterday", "04/03/2026"] {
            let err = parse_time(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }
}
