//! The sample's columns: the schema a pull would infer (types, with `--flatten` applied), plus
//! what the schema alone does not say — how often each column was null or absent, and how
//! wide its values were (characters of a string, JSON text length of anything else), which
//! is what sizes `NVARCHAR(n)` in Synapse.

use crate::encode::schema::{FieldKind, Schema};
use serde::Serialize;
use serde_json::Value;

/// One column of the sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: FieldKind,
    /// Records in which it was `null` or absent.
    pub nulls: u64,
    /// The widest value: characters of a string, JSON text length of other values.
    pub max_width: u64,
}

/// Profile `records` (raw JSON objects) with nested objects expanded `flatten_depth` levels.
/// `None` when there are no records to infer columns from.
pub fn profile(records: &[&str], flatten_depth: usize) -> Option<Vec<ColumnProfile>> {
    let schema = Schema::infer_flattened(records.iter().copied(), flatten_depth).ok()?;
    let mut out: Vec<ColumnProfile> = schema
        .fields
        .iter()
        .map(|f| ColumnProfile {
            name: f.name.clone(),
            kind: f.kind,
            nulls: 0,
            max_width: 0,
        })
        .collect();
    for text in records {
        // Each record was validated when the page was read; one that is not an object has
        // none of the columns.
        let record: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        for column in &mut out {
            match lookup(&record, &column.name, flatten_depth) {
                None | Some(Value::Null) => column.nulls += 1,
                Some(v) => column.max_width = column.max_width.max(width(v)),
            }
        }
    }
    Some(out)
}

/// The value of a (possibly flattened, dot-joined) column in `record`: the whole name as a
/// key first, then as a path of at most `depth` + 1 keys.
fn lookup<'a>(record: &'a Value, name: &str, depth: usize) -> Option<&'a Value> {
    if let Some(v) = record.get(name) {
        return Some(v);
    }
    if depth == 0 {
        return None;
    }
    let (head, rest) = name.split_once('.')?;
    lookup(record.get(head)?, rest, depth - 1)
}

fn width(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        other => other.to_string().len() as u64,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_nulls_and_absences_and_measures_widths() {
        let records = [
            r#"{"id":1,"name":"Zoë","c":{"id":7}}"#,
            r#"{"id":22,"name":null,"c":{"id":8}}"#,
            r#"{"id":3,"c":{}}"#,
        ];
        let cols = profile(&records, 0).unwrap();
        let by = |n: &str| cols.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(by("id").kind, FieldKind::Int64);
        assert_eq!((by("id").nulls, by("id").max_width), (0, 2));
        assert_eq!(by("name").kind, FieldKind::Utf8);
        assert_eq!((by("name").nulls, by("name").max_width), (2, 3));
        assert_eq!(by("c").kind, FieldKind::Json);

        let flat = profile(&records, 1).unwrap();
        let cid = flat.iter().find(|c| c.name == "c.id").unwrap();
        assert_eq!(
            (cid.kind, cid.nulls, cid.max_width),
            (FieldKind::Int64, 1, 1)
        );
    }

    #[test]
    fn no_records_no_columns() {
        assert!(profile(&[], 0).is_none());
    }
}
