//! The column layout of csv and parquet chunks: flat, ordered, typed fields inferred from
//! the first page of records and then held fixed for the run (it is saved in the checkpoint
//! and the manifest, so a resumed run writes the same columns).
//!
//! Only top-level fields become columns. Nested objects and arrays are kept as compact JSON
//! text in a [`FieldKind::Json`] column: API payloads nest unpredictably, and Synapse reads
//! JSON text with `OPENJSON`/`JSON_VALUE` far more reliably than deep parquet structs.
//!
//! Inference widens instead of failing: integer and float make a float column, and a field
//! seen with any two different kinds (other than int/float) becomes a string column holding
//! each value's text. Why not arrow-json's `infer_json_schema_from_iterator`? It was the
//! first choice, but it fails outright on shapes APIs really send (a field that is an object
//! in one record and a string in another, an array mixing objects and scalars), folds a scalar and a list into a list, marks every field nullable, and needs an
//! owned `serde_json::Value` tree per record. Since every nested value becomes JSON text
//! here anyway, what it would add is exactly the part that breaks. This walk uses the same
//! borrowed reader as the encoders, so inference and encoding cannot disagree about a value.
//!
//! Encoding is strict where inference is lenient: once the schema is fixed, a field it does
//! not know, a value that does not fit its column, or a null in a column inferred as never
//! null is an error naming the record and field. Policies for such drift come later; failing
//! is the safe default, since a chunk with silently dropped or cast values cannot be undone.

use super::record::{for_each_field, JsonType};
use super::EncodeError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The type of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Boolean,
    Int64,
    Float64,
    Utf8,
    /// A nested object or array, stored as compact JSON text.
    Json,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    /// Whether the column may hold nulls (a record had `null` or left the field out).
    pub nullable: bool,
}

/// The ordered columns of a csv or parquet chunk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    pub fields: Vec<Field>,
}

impl FieldKind {
    /// The kind a single JSON value suggests; `None` for `null`, which suggests nothing.
    fn of(t: JsonType) -> Option<FieldKind> {
        match t {
            JsonType::Null => None,
            JsonType::Bool => Some(FieldKind::Boolean),
            JsonType::Int => Some(FieldKind::Int64),
            JsonType::Float => Some(FieldKind::Float64),
            JsonType::String => Some(FieldKind::Utf8),
            JsonType::Object | JsonType::Array => Some(FieldKind::Json),
        }
    }

    /// The narrowest kind holding values of both kinds.
    fn widen(self, other: FieldKind) -> FieldKind {
        use FieldKind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Int64, Float64) | (Float64, Int64) => Float64,
            _ => Utf8,
        }
    }

    /// Whether a non-null value of JSON type `t` can be written to a column of this kind
    /// without loss: its own kind, an integer into a float column, or anything into a
    /// string column (as its JSON text, which is how a widened column holds it).
    pub(crate) fn accepts(self, t: JsonType) -> bool {
        match (self, t) {
            (FieldKind::Utf8, _) => true,
            (FieldKind::Float64, JsonType::Int) => true,
            (kind, t) => FieldKind::of(t) == Some(kind),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldKind::Boolean => "boolean",
            FieldKind::Int64 => "int64",
            FieldKind::Float64 => "float64",
            FieldKind::Utf8 => "utf8",
            FieldKind::Json => "json",
        }
    }
}

/// A field while inference runs: `kind` stays `None` while only nulls were seen.
struct Candidate {
    name: String,
    kind: Option<FieldKind>,
}

impl Schema {
    /// Infer a schema from records (each the raw text of one JSON object). Fields appear in
    /// the order first seen; a field only ever `null` is `Utf8`. Every inferred column is
    /// nullable: the first page cannot prove that a field is never null or absent, and an API
    /// that omits a field on page 400 must not fail the night's run (a pinned schema can still
    /// declare a column non-null). No records is an error: there is nothing to base the
    /// columns on.
    pub fn infer<'a>(records: impl IntoIterator<Item = &'a str>) -> Result<Schema, EncodeError> {
        let mut fields: Vec<Candidate> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut count: u64 = 0;
        for record in records {
            let record_no = count;
            count += 1;
            for_each_field(record_no, record, |name, raw| {
                let kind = FieldKind::of(JsonType::of(raw.get()));
                let at = match index.get(name) {
                    Some(&at) => at,
                    None => {
                        index.insert(name.to_owned(), fields.len());
                        fields.push(Candidate {
                            name: name.to_owned(),
                            kind: None,
                        });
                        fields.len() - 1
                    }
                };
                let field = &mut fields[at];
                match (field.kind, kind) {
                    (_, None) => {}
                    (None, Some(k)) => field.kind = Some(k),
                    (Some(have), Some(k)) => field.kind = Some(have.widen(k)),
                }
                Ok(())
            })?;
        }
        if count == 0 {
            return Err(EncodeError::Schema(
                "no records to infer the columns from".to_owned(),
            ));
        }
        Ok(Schema {
            fields: fields
                .into_iter()
                .map(|c| Field {
                    name: c.name,
                    kind: c.kind.unwrap_or(FieldKind::Utf8),
                    // See the doc comment: observed non-null-ness is not a guarantee.
                    nullable: true,
                })
                .collect(),
        })
    }

    /// The Arrow schema for parquet: `Json` columns are `Utf8` holding JSON text.
    pub fn to_arrow(&self) -> arrow_schema::Schema {
        use arrow_schema::DataType;
        arrow_schema::Schema::new(
            self.fields
                .iter()
                .map(|f| {
                    let dt = match f.kind {
                        FieldKind::Boolean => DataType::Boolean,
                        FieldKind::Int64 => DataType::Int64,
                        FieldKind::Float64 => DataType::Float64,
                        FieldKind::Utf8 | FieldKind::Json => DataType::Utf8,
                    };
                    Arc::new(arrow_schema::Field::new(&f.name, dt, f.nullable))
                })
                .collect::<Vec<_>>(),
        )
    }

    /// Column names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }
}

/// Finds each field of a record in a fixed schema and checks that its value fits: the
/// shared front half of the csv and parquet encoders. Keeps, per column, the byte range of
/// the raw value in the current record, so reading a record allocates nothing.
pub(crate) struct RowReader {
    fields: Vec<Field>,
    index: HashMap<String, usize>,
    slots: Vec<Option<(usize, usize)>>,
}

impl RowReader {
    pub(crate) fn new(schema: &Schema) -> Self {
        Self {
            fields: schema.fields.clone(),
            index: schema
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.clone(), i))
                .collect(),
            slots: vec![None; schema.fields.len()],
        }
    }

    /// Read `record` (number `record_no` in the chunk) and return each column's raw value
    /// text, `None` for missing or `null`. Errors: a field not in the schema, a value that
    /// does not fit its column, or a null in a non-nullable column.
    pub(crate) fn read<'r>(
        &'r mut self,
        record_no: u64,
        record: &'r str,
    ) -> Result<impl Iterator<Item = (&'r Field, Option<&'r str>)> + 'r, EncodeError> {
        self.slots.iter_mut().for_each(|s| *s = None);
        let base = record.as_ptr() as usize;
        let (fields, index, slots) = (&self.fields, &self.index, &mut self.slots);
        // Records of one API usually list fields in one order: try the next column first.
        let mut next = 0usize;
        for_each_field(record_no, record, |name, raw| {
            let at = match fields.get(next) {
                Some(f) if f.name == name => next,
                _ => *index.get(name).ok_or_else(|| EncodeError::SchemaMismatch {
                    record: record_no,
                    message: format!(
                        "field '{name}' is not in the schema (columns were fixed from the first page)"
                    ),
                })?,
            };
            next = at + 1;
            let text = raw.get();
            let t = JsonType::of(text);
            let field = &fields[at];
            if t != JsonType::Null && !field.kind.accepts(t) {
                return Err(EncodeError::SchemaMismatch {
                    record: record_no,
                    message: format!(
                        "field '{name}' is {} but its column is {}",
                        t.name(),
                        field.kind.name()
                    ),
                });
            }
            // A RawValue borrowed from `record` points into it.
            let start = text.as_ptr() as usize - base;
            slots[at] = (t != JsonType::Null).then_some((start, start + text.len()));
            Ok(())
        })?;
        if let Some(missing) = fields
            .iter()
            .zip(slots.iter())
            .find(|(f, s)| !f.nullable && s.is_none())
        {
            return Err(EncodeError::SchemaMismatch {
                record: record_no,
                message: format!(
                    "field '{}' is null or missing but its column was inferred as never null",
                    missing.0.name
                ),
            });
        }
        Ok(self
            .fields
            .iter()
            .zip(self.slots.iter())
            .map(move |(f, s)| (f, s.map(|(a, b)| &record[a..b]))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use FieldKind::*;

    fn f(name: &str, kind: FieldKind, nullable: bool) -> Field {
        Field {
            name: name.into(),
            kind,
            nullable,
        }
    }

    #[test]
    fn infers_kinds_order_and_nullability() {
        let cases: Vec<(&str, Vec<&str>, Vec<Field>)> = vec![
            (
                "scalars",
                vec![r#"{"b":true,"i":1,"f":1.5,"s":"x"}"#],
                vec![
                    f("b", Boolean, true),
                    f("i", Int64, true),
                    f("f", Float64, true),
                    f("s", Utf8, true),
                ],
            ),
            (
                "int and float widen to float",
                vec![r#"{"n":1}"#, r#"{"n":2.5}"#, r#"{"n":-3}"#],
                vec![f("n", Float64, true)],
            ),
            (
                "integer beyond i64 is a float",
                vec![r#"{"n":18446744073709551615}"#],
                vec![f("n", Float64, true)],
            ),
            (
                "string with anything is utf8",
                vec![
                    r#"{"a":1,"b":{"x":1},"c":true}"#,
                    r#"{"a":"1","b":"no","c":"yes"}"#,
                ],
                vec![f("a", Utf8, true), f("b", Utf8, true), f("c", Utf8, true)],
            ),
            (
                "other mixes are utf8 too",
                vec![r#"{"a":1,"b":[1]}"#, r#"{"a":false,"b":2}"#],
                vec![f("a", Utf8, true), f("b", Utf8, true)],
            ),
            (
                "nested objects and arrays, even mixed, are json",
                vec![
                    r#"{"o":{"x":1},"a":[1,"two",{"three":3}]}"#,
                    r#"{"o":[],"a":[[1],2]}"#,
                ],
                vec![f("o", Json, true), f("a", Json, true)],
            ),
            (
                "null, missing and null-only",
                vec![
                    r#"{"a":1,"n":null}"#,
                    r#"{"b":"late","n":null}"#,
                    r#"{"a":null,"b":"x","n":null}"#,
                ],
                vec![f("a", Int64, true), f("n", Utf8, true), f("b", Utf8, true)],
            ),
            (
                "first-seen order across records",
                vec![r#"{"z":1}"#, r#"{"y":1,"z":2}"#, r#"{"x":1,"y":2,"z":3}"#],
                vec![
                    f("z", Int64, true),
                    f("y", Int64, true),
                    f("x", Int64, true),
                ],
            ),
            ("empty object", vec!["{}"], vec![]),
        ];
        for (name, records, want) in cases {
            let got = Schema::infer(records).unwrap();
            assert_eq!(got.fields, want, "{name}");
        }
    }

    /// Why inference does not delegate to arrow-json (see the module docs): it rejects a
    /// field that is an object in one record and a string in the next, which this module
    /// widens to `Utf8`. If a later arrow-json accepts it, the reasoning needs revisiting.
    #[test]
    fn arrow_json_rejects_shapes_we_accept() {
        let records = [r#"{"err":{"code":1}}"#, r#"{"err":"timeout"}"#];
        let values = records.iter().map(|r| {
            Ok::<_, arrow_schema::ArrowError>(serde_json::from_str::<serde_json::Value>(r).unwrap())
        });
        assert!(arrow_json::reader::infer_json_schema_from_iterator(values).is_err());
        assert_eq!(
            Schema::infer(records).unwrap().fields,
            vec![f("err", Utf8, true)]
        );
    }

    #[test]
    fn inference_errors() {
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec![], "no records"),
            (vec![r#"{"a":1}"#, "[1]"], "record 1 is not a JSON object"),
            (
                vec![r#"{"a":1}"#, r#"{"a":}"#],
                "record 1 is not valid JSON",
            ),
        ];
        for (records, want) in cases {
            let err = Schema::infer(records).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn round_trips_through_serde_and_maps_to_arrow() {
        let schema = Schema {
            fields: vec![
                f("id", Int64, false),
                f("doc", Json, true),
                f("ok", Boolean, true),
            ],
        };
        let text = serde_json::to_string(&schema).unwrap();
        assert!(text.contains(r#""kind":"json""#), "{text}");
        assert_eq!(serde_json::from_str::<Schema>(&text).unwrap(), schema);
        let arrow = schema.to_arrow();
        let got: Vec<_> = arrow
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
            .collect();
        use arrow_schema::DataType as D;
        assert_eq!(
            got,
            [
                ("id", D::Int64, false),
                ("doc", D::Utf8, true),
                ("ok", D::Boolean, true)
            ]
        );
    }

    #[test]
    fn row_reader_places_values_and_rejects_misfits() {
        let schema = Schema {
            fields: vec![
                f("i", Int64, false),
                f("f", Float64, true),
                f("s", Utf8, true),
                f("j", Json, true),
            ],
        };
        let mut reader = RowReader::new(&schema);
        let got: Vec<_> = reader
            .read(0, r#"{"j": [1, 2], "s": 5, "f": 2, "i": -7}"#)
            .unwrap()
            .map(|(f, v)| (f.name.clone(), v.map(str::to_owned)))
            .collect();
        let want = [
            ("i", Some("-7")),
            ("f", Some("2")),
            ("s", Some("5")),
            ("j", Some("[1, 2]")),
        ];
        assert_eq!(got.len(), 4);
        for ((n, v), (wn, wv)) in got.iter().zip(want) {
            assert_eq!((n.as_str(), v.as_deref()), (wn, wv));
        }
        let nulls: Vec<_> = reader
            .read(1, r#"{"i": 1, "s": null}"#)
            .unwrap()
            .map(|(_, v)| v.is_none())
            .collect();
        assert_eq!(nulls, [false, true, true, true]);

        let cases = [
            (
                r#"{"i": 1, "extra": 2}"#,
                "field 'extra' is not in the schema",
            ),
            (
                r#"{"i": 1.5}"#,
                "field 'i' is a non-integer number but its column is int64",
            ),
            (r#"{"i": 9223372036854775808}"#, "its column is int64"),
            (
                r#"{"i": 1, "f": "2"}"#,
                "field 'f' is a string but its column is float64",
            ),
            (
                r#"{"i": 1, "j": 3}"#,
                "field 'j' is an integer but its column is json",
            ),
            (r#"{"i": null}"#, "field 'i' is null or missing"),
            (r#"{"f": 1}"#, "field 'i' is null or missing"),
        ];
        for (record, want) in cases {
            let err = reader.read(4, record).err().unwrap();
            assert!(
                matches!(err, EncodeError::SchemaMismatch { record: 4, .. }),
                "{err}"
            );
            assert!(err.to_string().contains(want), "{record}: {err}");
        }
    }
}
