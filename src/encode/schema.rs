//! The column layout of csv and parquet chunks: flat, ordered, typed fields inferred from
//! the first page of records and then held for the run (it is saved in the checkpoint and the
//! manifest, so a resumed run writes the same columns). What happens when later records do
//! not fit is the drift policy's business (see the `drift` module).
//!
//! Only top-level fields become columns, unless `--flatten` asks for nested objects to be
//! expanded into `parent.child` columns. Nested objects and arrays otherwise are kept as
//! compact JSON text in a [`FieldKind::Json`] column: API payloads nest unpredictably, and
//! Synapse reads JSON text with `OPENJSON`/`JSON_VALUE` far more reliably than deep parquet
//! structs.
//!
//! Inference widens instead of failing: integer and float make a float column, a string that
//! is an RFC 3339 date-time in every record makes a timestamp column, and a field seen with
//! any two different kinds (other than int/float) becomes a string column holding each
//! value's text. Why not arrow-json's `infer_json_schema_from_iterator`? It was the first
//! choice, but it fails outright on shapes APIs really send (a field that is an object in one
//! record and a string in another, an array mixing objects and scalars), folds a scalar and a
//! list into a list, marks every field nullable, and needs an owned `serde_json::Value` tree
//! per record. Since every nested value becomes JSON text here anyway, what it would add is
//! exactly the part that breaks. This walk uses the same borrowed reader as the encoders, so
//! inference and encoding cannot disagree about a value.
//!
//! Encoding is strict where inference is lenient: once the schema is fixed, a field it does
//! not know, a value that does not fit its column, or a null in a column declared never null
//! is an error naming the record and field, unless the drift policy routes it to `_extra`.
//! A chunk with silently dropped or cast values cannot be undone.
//!
//! Column names in files are SQL-safe: serverless Synapse binds parquet columns by name and
//! its external tables cannot name a column over 128 characters, so a field name that is too
//! long or holds a control character is shortened the same way everywhere ([`column_name`]):
//! in the parquet file, in the load SQL, and as the field's `column` in the manifest. Csv headers keep
//! the API's names; csv is always bound by position.
//!
//! The reader also keeps two cheap statistics per column while it encodes: the longest
//! string (an upper bound in UTF-16 code units, which is what `NVARCHAR(n)` counts: the
//! value's UTF-8 byte length, never less than its UTF-16 length) and whether any value was
//! non-null. They size `NVARCHAR(n)` in the load SQL and detect columns missing in a run.

use super::record::{for_each_field, for_each_leaf, unescape, JsonType};
use super::scan::{self, RecordMembers};
use super::timestamp;
use super::EncodeError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The column that holds what did not fit, under `--on-schema-drift warn` (see the `drift`
/// module). Reserved here, with the columns, because the row reader routes values to it.
pub const EXTRA_COLUMN: &str = "_extra";

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
    /// An RFC 3339 date-time, stored as UTC microseconds (see the `timestamp` module).
    Timestamp,
}

/// One column. Serialized with a `column` key when the SQL/parquet column name differs from
/// the field name (see [`column_name`]); reading ignores that key, it is derived.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    /// Whether the column may hold nulls (a record had `null` or left the field out).
    pub nullable: bool,
    /// The longest value seen in a `utf8` column, in UTF-16 code units or more (see the
    /// module docs); filled in when a run finishes, used to size `NVARCHAR(n)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let column = column_name(&self.name);
        let renamed = column != self.name;
        let len = 3 + usize::from(self.max_length.is_some()) + usize::from(renamed);
        let mut s = serializer.serialize_struct("Field", len)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("nullable", &self.nullable)?;
        if let Some(max) = self.max_length {
            s.serialize_field("max_length", &max)?;
        }
        if renamed {
            s.serialize_field("column", &column)?;
        }
        s.end()
    }
}

impl Field {
    /// The column's name in parquet files and SQL (see [`column_name`]).
    pub fn column(&self) -> String {
        column_name(&self.name)
    }

    /// A nullable column with no statistics.
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            kind,
            nullable: true,
            max_length: None,
        }
    }
}

/// The ordered columns of a csv or parquet chunk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    pub fields: Vec<Field>,
}

/// Errors in a schema file given with `--schema`.
#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    #[error("not a schema: {0} (expected {{\"fields\": [{{\"name\": …, \"kind\": \"int64\", \"nullable\": true}}]}})")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

impl FieldKind {
    /// The kind a single JSON value suggests; `None` for `null`, which suggests nothing.
    /// `raw` is the value's JSON text (only strings look at it, for timestamps).
    fn of(t: JsonType, raw: &str) -> Option<FieldKind> {
        match t {
            JsonType::Null => None,
            JsonType::Bool => Some(FieldKind::Boolean),
            JsonType::Int => Some(FieldKind::Int64),
            JsonType::Float => Some(FieldKind::Float64),
            JsonType::String => Some(if timestamp_of(raw).is_some() {
                FieldKind::Timestamp
            } else {
                FieldKind::Utf8
            }),
            JsonType::Object | JsonType::Array => Some(FieldKind::Json),
        }
    }

    /// The narrowest kind that holds values of both kinds.
    pub(crate) fn widen(self, other: FieldKind) -> FieldKind {
        use FieldKind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Int64, Float64) | (Float64, Int64) => Float64,
            _ => Utf8,
        }
    }

    /// Whether a column of this kind holds, without loss, values inferred as `other`.
    pub(crate) fn takes(self, other: FieldKind) -> bool {
        self == other
            || self == FieldKind::Utf8
            || (self == FieldKind::Float64 && other == FieldKind::Int64)
    }

    /// Whether a non-null value of JSON type `t` (text `raw`) can be written to a column of
    /// this kind without loss: its own kind, an integer into a float column, a lossless
    /// date-time into a timestamp column, or anything into a string column (as its JSON text,
    /// which is how a widened column holds it).
    pub(crate) fn accepts(self, t: JsonType, raw: &str) -> bool {
        match (self, t) {
            (FieldKind::Utf8, _) => true,
            (FieldKind::Float64, JsonType::Int) => true,
            (FieldKind::Timestamp, JsonType::String) => timestamp_of(raw).is_some(),
            (kind, t) => match t {
                JsonType::String => kind == FieldKind::Utf8,
                _ => FieldKind::of(t, raw) == Some(kind),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Boolean => "boolean",
            FieldKind::Int64 => "int64",
            FieldKind::Float64 => "float64",
            FieldKind::Utf8 => "utf8",
            FieldKind::Json => "json",
            FieldKind::Timestamp => "timestamp",
        }
    }
}

/// The UTC microseconds of a raw JSON string value that is a lossless RFC 3339 date-time.
pub(crate) fn timestamp_of(raw: &str) -> Option<i64> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if scan::has_backslash(inner.as_bytes()) {
        timestamp::parse_micros(&unescape(raw).ok()?)
    } else {
        timestamp::parse_micros(inner)
    }
}

/// What inference saw of each field, in first-seen order: its kind, or `None` while only
/// nulls were seen.
pub(crate) type Seen = Vec<(String, Option<FieldKind>)>;

/// Field kinds in first-seen order as records are walked: the state of [`observe`] and of
/// jsonl's descriptive schema ([`observe_valid`]).
#[derive(Default)]
struct Observer {
    fields: Seen,
    index: HashMap<String, usize>,
    /// The field after the last one seen in this record (see [`Observer::see`]).
    next: usize,
}

impl Observer {
    fn start_record(&mut self) {
        self.next = 0;
    }

    /// Note field `name` with value `text` (raw JSON).
    #[inline]
    fn see(&mut self, name: &str, text: &str) {
        // Records of one API nearly always list their fields in the same order, so the
        // field after the last one found is tried before the hash lookup.
        let at = if self
            .fields
            .get(self.next)
            .is_some_and(|(n, _)| scan::same_name(n, name))
        {
            self.next
        } else {
            match self.index.get(name) {
                Some(&at) => at,
                None => {
                    self.index.insert(name.to_owned(), self.fields.len());
                    self.fields.push((name.to_owned(), None));
                    self.fields.len() - 1
                }
            }
        };
        self.next = at + 1;
        let field = &mut self.fields[at].1;
        // Shortcuts that cannot change the outcome, so that a settled column costs no
        // classification: a string column absorbs every kind (`widen` gives utf8), and a
        // float column absorbs every number.
        match (*field, text.as_bytes().first()) {
            (Some(FieldKind::Utf8), _) => return,
            (Some(FieldKind::Float64), Some(b'-' | b'0'..=b'9')) => return,
            _ => {}
        }
        let kind = FieldKind::of(JsonType::of(text), text);
        match (*field, kind) {
            (_, None) => {}
            (None, Some(k)) => *field = Some(k),
            (Some(have), Some(k)) => *field = Some(have.widen(k)),
        }
    }
}

/// Walk records and note each field's kind (flattened to `depth` levels).
pub(crate) fn observe<'a>(
    records: impl IntoIterator<Item = &'a str>,
    depth: usize,
) -> Result<(Seen, u64), EncodeError> {
    let mut seen = Observer::default();
    let mut count: u64 = 0;
    let mut name = String::new();
    for record in records {
        let record_no = count;
        count += 1;
        seen.start_record();
        for_each_leaf(record_no, record, depth, &mut name, &mut |name, raw| {
            seen.see(name, raw.get());
            Ok(())
        })?;
    }
    let mut fields = seen.fields;
    if depth > 0 {
        // `"c": null` beside `"c": {"id": 1}` is an empty parent, not a column of its own.
        let parents: Vec<String> = fields
            .iter()
            .filter(|(name, kind)| {
                kind.is_none()
                    && fields.iter().any(|(other, _)| {
                        other.len() > name.len()
                            && other.starts_with(name.as_str())
                            && other.as_bytes()[name.len()] == b'.'
                    })
            })
            .map(|(name, _)| name.clone())
            .collect();
        fields.retain(|(name, _)| !parents.contains(name));
    }
    Ok((fields, count))
}

/// [`observe`] at depth 0 for records that are valid JSON (the pull's records, cut from
/// pages the extractor validated): the same result, with each record's members found by
/// [`scan::top_level_members`] instead of a full parse; a record the scanner declines is read
/// with serde as [`observe`] reads it (and fails the same way).
///
/// `known`: the records' members as the page's reader found them, used in place of the scanner
/// for the records it covers (the `n`th record of `records` is its `n`th).
pub(crate) fn observe_valid<'a>(
    records: impl IntoIterator<Item = &'a str>,
    known: Option<&RecordMembers>,
) -> Result<(Seen, u64), EncodeError> {
    let mut seen = Observer::default();
    let mut count: u64 = 0;
    let mut members = Vec::new();
    for (index, record) in records.into_iter().enumerate() {
        let record_no = count;
        count += 1;
        seen.start_record();
        if known.is_some_and(|k| k.of(index, record, &mut members))
            || scan::top_level_members(record, &mut members)
        {
            for m in &members {
                seen.see(m.key(record), m.value(record));
            }
        } else {
            for_each_field(record_no, record, |name, raw| {
                seen.see(name, raw.get());
                Ok(())
            })?;
        }
    }
    Ok((seen.fields, count))
}

impl Schema {
    /// Infer a schema from records (each the raw text of one JSON object). Fields appear in
    /// the order first seen; a field only ever `null` is `Utf8`. Every inferred column is
    /// nullable: the first page cannot prove that a field is never null or absent, and an API
    /// that omits a field on page 400 must not fail the night's run (a pinned schema can still
    /// declare a column non-null). No records is an error: there is nothing to base the
    /// columns on.
    pub fn infer<'a>(records: impl IntoIterator<Item = &'a str>) -> Result<Schema, EncodeError> {
        Self::infer_flattened(records, 0)
    }

    /// [`Schema::infer`], with nested objects expanded to `depth` levels (`--flatten`).
    pub fn infer_flattened<'a>(
        records: impl IntoIterator<Item = &'a str>,
        depth: usize,
    ) -> Result<Schema, EncodeError> {
        let (seen, count) = observe(records, depth)?;
        if count == 0 {
            return Err(EncodeError::Schema(
                "no records to infer the columns from".to_owned(),
            ));
        }
        Ok(Schema::from_seen(&seen))
    }

    pub(crate) fn from_seen(seen: &[(String, Option<FieldKind>)]) -> Schema {
        Schema {
            fields: seen
                .iter()
                // See the doc comment of `infer`: observed non-null-ness is not a guarantee.
                .map(|(name, kind)| Field::new(name.clone(), kind.unwrap_or(FieldKind::Utf8)))
                .collect(),
        }
    }

    /// This schema with the `_extra` column appended (once).
    pub(crate) fn with_extra_column(mut self) -> Schema {
        if !self.fields.iter().any(|f| f.name == EXTRA_COLUMN) {
            self.fields.push(Field::new(EXTRA_COLUMN, FieldKind::Json));
        }
        self
    }

    /// Read a schema pinned with `--schema FILE`: the manifest's `schema` object (or a bare
    /// list of fields). Names must be unique and non-empty.
    pub fn from_json(text: &str) -> Result<Schema, SchemaFileError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let schema: Schema = if value.is_array() {
            Schema {
                fields: serde_json::from_value(value)?,
            }
        } else if let Some(inner) = value.get("schema").filter(|v| v.is_object()) {
            serde_json::from_value(inner.clone())?
        } else {
            serde_json::from_value(value)?
        };
        if schema.fields.is_empty() {
            return Err(SchemaFileError::Invalid("the schema has no fields".into()));
        }
        let mut names = std::collections::HashSet::new();
        for f in &schema.fields {
            if f.name.is_empty() {
                return Err(SchemaFileError::Invalid("a field has an empty name".into()));
            }
            if !names.insert(f.name.as_str()) {
                return Err(SchemaFileError::Invalid(format!(
                    "field '{}' appears twice",
                    f.name
                )));
            }
        }
        Ok(schema)
    }

    /// The Arrow schema for parquet: `Json` columns are `Utf8` holding JSON text, timestamps
    /// are UTC microseconds. Column names are [`column_name`]s: a field name over 128
    /// characters or with a control character is shortened (and kept in the column's
    /// `gatelake.field` metadata), so Synapse can bind every column by name.
    pub fn to_arrow(&self) -> arrow_schema::Schema {
        use arrow_schema::{DataType, TimeUnit};
        arrow_schema::Schema::new(
            self.fields
                .iter()
                .map(|f| {
                    let dt = match f.kind {
                        FieldKind::Boolean => DataType::Boolean,
                        FieldKind::Int64 => DataType::Int64,
                        FieldKind::Float64 => DataType::Float64,
                        FieldKind::Utf8 | FieldKind::Json => DataType::Utf8,
                        FieldKind::Timestamp => {
                            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                        }
                    };
                    // Serverless Synapse binds parquet columns by name, and an external
                    // table's column must be a valid SQL identifier: the file's column is the
                    // SQL column name, and the field's own name is kept in the metadata.
                    let column = column_name(&f.name);
                    let field = arrow_schema::Field::new(&column, dt, f.nullable);
                    let field = if column == f.name {
                        field
                    } else {
                        field.with_metadata(std::collections::HashMap::from([(
                            FIELD_NAME_METADATA.to_owned(),
                            f.name.clone(),
                        )]))
                    };
                    Arc::new(field)
                })
                .collect::<Vec<_>>(),
        )
    }

    /// Column names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }
}

/// The longest identifier SQL Server accepts.
pub const MAX_IDENTIFIER: usize = 128;

/// Arrow field metadata key holding the API's field name of a shortened parquet column.
pub const FIELD_NAME_METADATA: &str = "gatelake.field";

/// A field name as a column name: as is when it fits SQL's 128 characters and has no
/// control characters, otherwise cleaned, cut to 119 characters, plus `~` and 8 hex digits of
/// the full name's SHA-256 (distinct names stay distinct).
pub fn column_name(name: &str) -> String {
    let clean = !name.chars().any(char::is_control);
    if name.chars().count() <= MAX_IDENTIFIER && !name.is_empty() && clean {
        return name.to_owned();
    }
    // Control characters (a line break in a field name) are legal inside brackets but break
    // every tool that shows the script: they become `_`, and the hash keeps names distinct.
    let head: String = name
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .take(MAX_IDENTIFIER - 9)
        .collect();
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    format!("{head}~{hash}")
}

/// Per-column statistics kept while encoding (see the module docs), plus what went to
/// `_extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnStats {
    /// Longest `utf8` value per column (upper bound in UTF-16 code units).
    pub max_len: Vec<u64>,
    /// Whether the column held a non-null value.
    pub filled: Vec<bool>,
    /// Field → (values sent to `_extra`, the column's kind if it had one, the value's kind).
    pub to_extra: BTreeMap<String, (u64, Option<FieldKind>, Option<FieldKind>)>,
}

impl ColumnStats {
    pub(crate) fn new(columns: usize) -> Self {
        Self {
            max_len: vec![0; columns],
            filled: vec![false; columns],
            to_extra: BTreeMap::new(),
        }
    }

    /// Fold `other` (of a schema with at least as many leading columns) into this.
    pub(crate) fn merge(&mut self, other: &ColumnStats) {
        if self.max_len.len() < other.max_len.len() {
            self.max_len.resize(other.max_len.len(), 0);
            self.filled.resize(other.filled.len(), false);
        }
        for (i, (l, f)) in other.max_len.iter().zip(&other.filled).enumerate() {
            self.max_len[i] = self.max_len[i].max(*l);
            self.filled[i] |= *f;
        }
        for (k, (n, from, to)) in &other.to_extra {
            let e = self.to_extra.entry(k.clone()).or_insert((0, *from, *to));
            e.0 += n;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Null,
    Value(usize, usize),
    Extra,
}

/// Finds each field of a record in a fixed schema and checks that its value fits: the
/// shared front half of the csv and parquet encoders. Keeps, per column, the byte range of
/// the raw value in the current record, so reading a record allocates nothing (unless values
/// go to `_extra`).
pub(crate) struct RowReader {
    fields: Vec<Field>,
    index: HashMap<String, usize>,
    slots: Vec<Slot>,
    /// Per column: a timestamp column's value in the record as UTC microseconds, parsed once
    /// when the value was checked (read only where the column's slot holds a value).
    micros: Vec<Option<i64>>,
    depth: usize,
    name: String,
    /// The `_extra` column, when misfits go there instead of failing.
    extra: Option<usize>,
    extra_buf: String,
    stats: ColumnStats,
    /// The scanner's buffer, reused across records.
    members: Vec<scan::Member>,
}

/// How a [`RowReader`] reads: flattening depth, and whether misfits go to `_extra`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    pub flatten_depth: usize,
    pub extra_column: bool,
}

impl RowReader {
    pub(crate) fn new(schema: &Schema, options: ReadOptions) -> Self {
        let index: HashMap<String, usize> = schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        let extra = if options.extra_column {
            index.get(EXTRA_COLUMN).copied()
        } else {
            None
        };
        Self {
            fields: schema.fields.clone(),
            index,
            slots: vec![Slot::Empty; schema.fields.len()],
            micros: vec![None; schema.fields.len()],
            depth: options.flatten_depth,
            name: String::new(),
            extra,
            extra_buf: String::new(),
            stats: ColumnStats::new(schema.fields.len()),
            members: Vec::new(),
        }
    }

    /// The statistics of everything read so far.
    pub(crate) fn stats(&self) -> &ColumnStats {
        &self.stats
    }

    /// Read `record` (number `record_no` in the chunk) and return each column's raw value
    /// text, `None` for missing or `null`, and for a timestamp column's value its UTC
    /// microseconds (parsed once, by the check that it is a timestamp). Errors: a field not in
    /// the schema, a value that does not fit its column (both unless they go to `_extra`), a
    /// field twice in the record, or a null in a non-nullable column.
    ///
    /// `known`: the page's members as its reader found them and this record's place among
    /// them (see [`RecordMembers`]), used instead of scanning the record when they cover it.
    pub(crate) fn read<'r>(
        &'r mut self,
        record_no: u64,
        record: &'r str,
        known: Option<(&RecordMembers, usize)>,
    ) -> Result<impl Iterator<Item = (&'r Field, Option<&'r str>, Option<i64>)> + 'r, EncodeError>
    {
        self.slots.iter_mut().for_each(|s| *s = Slot::Empty);
        self.extra_buf.clear();
        let base = record.as_ptr() as usize;
        let (fields, index, slots, micros, stats, extra, extra_buf) = (
            &self.fields,
            &self.index,
            &mut self.slots,
            &mut self.micros,
            &mut self.stats,
            self.extra,
            &mut self.extra_buf,
        );
        // Records of one API usually list fields in one order: try the next column first.
        let mut next = 0usize;
        let mut on_field = |name: &str, text: &str| {
            let t = JsonType::of(text);
            let found = match fields.get(next) {
                Some(f) if scan::same_name(&f.name, name) => Some(next),
                _ => index.get(name).copied(),
            };
            let misfit = match found {
                // A null for a field the schema does not know loses nothing (and is how a
                // flattened parent object that is null arrives).
                None if t == JsonType::Null => return Ok(()),
                None => Some(None),
                Some(at) => {
                    let kind = fields[at].kind;
                    let fits = match (kind, t) {
                        (_, JsonType::Null) => true,
                        (FieldKind::Timestamp, JsonType::String) => {
                            micros[at] = timestamp_of(text);
                            micros[at].is_some()
                        }
                        _ => kind.accepts(t, text),
                    };
                    (!fits).then_some(Some(kind))
                }
            };
            if let Some(column_kind) = misfit {
                if extra.is_none() {
                    let message = match column_kind {
                        None => format!(
                            "field '{name}' is not in the schema (columns were fixed from the first page)"
                        ),
                        Some(kind) => format!(
                            "field '{name}' is {} but its column is {}",
                            t.name(),
                            kind.name()
                        ),
                    };
                    return Err(EncodeError::SchemaMismatch {
                        record: record_no,
                        message,
                    });
                }
                extra_buf.push(if extra_buf.is_empty() { '{' } else { ',' });
                // A field name is plain text: JSON-escape it as a string.
                extra_buf.push_str(&serde_json::to_string(name).unwrap_or_default());
                extra_buf.push(':');
                extra_buf.push_str(text);
                let entry = stats.to_extra.entry(name.to_owned()).or_insert((
                    0,
                    column_kind,
                    FieldKind::of(t, text),
                ));
                entry.0 += 1;
                return Ok(());
            }
            let Some(at) = found else { return Ok(()) };
            next = at + 1;
            if slots[at] != Slot::Empty {
                return Err(EncodeError::SchemaMismatch {
                    record: record_no,
                    message: format!("field '{name}' appears twice in the record"),
                });
            }
            if t == JsonType::Null {
                slots[at] = Slot::Null;
                return Ok(());
            }
            // The value text is borrowed from `record` (a RawValue or a scanned member).
            let start = text.as_ptr() as usize - base;
            slots[at] = Slot::Value(start, start + text.len());
            stats.filled[at] = true;
            if fields[at].kind == FieldKind::Utf8 {
                let len = if t == JsonType::String {
                    text.len().saturating_sub(2)
                } else {
                    text.len()
                } as u64;
                if len > stats.max_len[at] {
                    stats.max_len[at] = len;
                }
            }
            Ok(())
        };
        // The pull's records are valid JSON: unflattened, their members are found by the
        // scanner (see `scan`), and a record it declines is read by serde as before.
        if self.depth == 0
            && (known.is_some_and(|(k, at)| k.of(at, record, &mut self.members))
                || scan::top_level_members(record, &mut self.members))
        {
            for m in &self.members {
                on_field(m.key(record), m.value(record))?;
            }
        } else {
            for_each_leaf(
                record_no,
                record,
                self.depth,
                &mut self.name,
                &mut |k, v| on_field(k, v.get()),
            )?;
        }
        if !self.extra_buf.is_empty() {
            self.extra_buf.push('}');
            if let Some(at) = self.extra {
                if matches!(self.slots[at], Slot::Value(..)) {
                    return Err(EncodeError::SchemaMismatch {
                        record: record_no,
                        message: format!(
                            "the record has its own '{EXTRA_COLUMN}' field, which --on-schema-drift warn reserves"
                        ),
                    });
                }
                self.slots[at] = Slot::Extra;
                self.stats.filled[at] = true;
            }
        }
        if let Some(missing) = self
            .fields
            .iter()
            .zip(self.slots.iter())
            .find(|(f, s)| !f.nullable && !matches!(s, Slot::Value(..) | Slot::Extra))
        {
            return Err(EncodeError::SchemaMismatch {
                record: record_no,
                message: format!(
                    "field '{}' is null or missing but its column is declared never null",
                    missing.0.name
                ),
            });
        }
        let extra_text = self.extra_buf.as_str();
        Ok(self
            .fields
            .iter()
            .zip(self.slots.iter().zip(&self.micros))
            .map(move |(f, (s, &micros))| match *s {
                Slot::Value(a, b) => (
                    f,
                    Some(&record[a..b]),
                    micros.filter(|_| f.kind == FieldKind::Timestamp),
                ),
                Slot::Extra => (f, Some(extra_text), None),
                Slot::Empty | Slot::Null => (f, None, None),
            }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use FieldKind::*;

    #[test]
    fn observe_valid_agrees_with_observe() {
        // Pages mixing kinds, widening, nulls, escaped keys (declined by the scanner, read by
        // serde), nested values with brackets in strings, timestamps and near-timestamps.
        let pages: &[&[&str]] = &[
            &[
                r#"{"id":1,"s":"a","t":"2026-12-01T10:00:00Z","n":null,"o":{"x":"}"}}"#,
                r#"{"id":2.5,"s":3,"t":"2026-12-01T10:00:00+01:00","n":null,"a":[1,"]"]}"#,
                r#"{"s":"b","id":-7,"t":"not a time","k\"ey":true,"caf\u00e9":"x"}"#,
                r#"{ "id" : 1e3 , "n" : false , "o" : [ ] }"#,
            ],
            &[
                r#"{"f":1.5}"#,
                r#"{"f":2}"#,
                r#"{"f":"x"}"#,
                r#"{"f":null}"#,
            ],
            &[
                r#"{"t":"2026-12-01T10:00:00Z"}"#,
                r#"{"t":"2026-12-01 10:00"}"#,
            ],
            &["{}", r#"{"a":{"b":{"c":[[{}]]}}}"#, "{\n \"p\": [\n1\n]\n}"],
            // Invalid or non-object records fail both, the same way.
            &[r#"{"a":1}"#, r#"{"a":tru}"#],
            &[r#"{"a":1}"#, "[1]"],
            &[r#"{"a":1,}"#],
        ];
        for page in pages {
            let full = observe(page.iter().copied(), 0);
            let fast = observe_valid(page.iter().copied(), None);
            match (full, fast) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{page:?}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{page:?}"),
                (a, b) => panic!("{page:?}: observe {a:?}, observe_valid {b:?}"),
            }
        }
    }

    fn f(name: &str, kind: FieldKind, nullable: bool) -> Field {
        Field {
            name: name.into(),
            kind,
            nullable,
            max_length: None,
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

    #[test]
    fn infers_timestamps_and_flattens_objects() {
        let records = [
            r#"{"t":"2026-01-02T03:04:05Z","u":"2026-01-02T03:04:05Z","c":{"id":1,"a":{"b":true}},"l":[{"x":1}]}"#,
            r#"{"t":"2026-01-02T03:04:05.5+02:00","u":"yesterday","c":null}"#,
        ];
        let got = Schema::infer_flattened(records, 1).unwrap().fields;
        assert_eq!(
            got,
            vec![
                f("t", Timestamp, true),
                f("u", Utf8, true),
                f("c.id", Int64, true),
                f("c.a", Json, true),
                f("l", Json, true),
            ]
        );
        let deep: Vec<String> = Schema::infer_flattened(records, 5)
            .unwrap()
            .names()
            .map(str::to_owned)
            .collect();
        assert_eq!(deep, ["t", "u", "c.id", "c.a.b", "l"]);
    }

    #[test]
    fn pinned_schema_files_are_checked() {
        let ok =
            Schema::from_json(r#"[{"name":"a","kind":"timestamp","nullable":false}]"#).unwrap();
        assert_eq!(ok.fields, vec![f("a", Timestamp, false)]);
        // A manifest works as a schema file.
        let m = r#"{"run_id":"r","schema":{"fields":[{"name":"a","kind":"int64","nullable":true,"max_length":null}]}}"#;
        assert_eq!(
            Schema::from_json(m).unwrap().fields,
            vec![f("a", Int64, true)]
        );
        for (bad, want) in [
            ("{", "not a schema"),
            (r#"{"fields":[]}"#, "no fields"),
            (
                r#"[{"name":"a","kind":"int64","nullable":true},{"name":"a","kind":"utf8","nullable":true}]"#,
                "appears twice",
            ),
            (
                r#"[{"name":"a","kind":"decimal","nullable":true}]"#,
                "unknown variant",
            ),
        ] {
            let err = Schema::from_json(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
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
    fn row_reader_hands_over_each_timestamp_as_parsed_by_its_check() {
        let schema = Schema {
            fields: vec![
                f("t", Timestamp, true),
                f("s", Utf8, true),
                f("u", Timestamp, true),
            ],
        };
        let mut reader = RowReader::new(&schema, ReadOptions::default());
        let mut read = |record: &str| -> Result<Vec<Option<i64>>, String> {
            reader
                .read(0, record, None)
                .map(|values| values.map(|(_, _, micros)| micros).collect())
                .map_err(|e| e.to_string())
        };
        let t = timestamp::parse_micros("2026-12-01T10:00:00.5+01:00");
        assert!(t.is_some());
        assert_eq!(
            read(r#"{"t":"2026-12-01T10:00:00.5+01:00","s":"2026-12-01T10:00:00Z","u":null}"#),
            Ok(vec![t, None, None]),
            "a string column's value is text, even when it reads as a time"
        );
        // The column before held a time; now it is missing, then null: nothing is handed over.
        assert_eq!(read(r#"{"s":"x"}"#), Ok(vec![None, None, None]));
        assert_eq!(
            read(r#"{"t":null,"u":"2026-12-01T09:00:00.5Z"}"#),
            Ok(vec![None, None, t])
        );
        // Escaped, the same time.
        assert_eq!(
            read(r#"{"t":"2026-12-01T10:00:00.5\u002B01:00"}"#),
            Ok(vec![t, None, None])
        );
        let err = read(r#"{"t":"2026-12-01"}"#).unwrap_err();
        assert!(
            err.contains("field 't' is a string but its column is timestamp"),
            "{err}"
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
        let mut reader = RowReader::new(&schema, ReadOptions::default());
        let got: Vec<_> = reader
            .read(0, r#"{"j": [1, 2], "s": 5, "f": 2, "i": -7}"#, None)
            .unwrap()
            .map(|(f, v, _)| (f.name.clone(), v.map(str::to_owned)))
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
            .read(1, r#"{"i": 1, "s": null}"#, None)
            .unwrap()
            .map(|(_, v, _)| v.is_none())
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
            let err = reader.read(4, record, None).err().unwrap();
            assert!(
                matches!(err, EncodeError::SchemaMismatch { record: 4, .. }),
                "{err}"
            );
            assert!(err.to_string().contains(want), "{record}: {err}");
        }
    }
}
