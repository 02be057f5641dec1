//! Schema drift: what happens when records stop matching the columns a run (or the previous
//! run) fixed. Three policies, chosen by `--on-schema-drift`:
//!
//! - `fail` (the default): stop before writing the page that does not fit, with a readable
//!   diff. Nothing of that page is staged, so the run resumes from its last chunk.
//! - `evolve`: widen the schema (new fields become new trailing columns; int64 → float64 →
//!   utf8, timestamp → utf8), close the current chunk before the page that needed it, and
//!   record every change in the manifest. Earlier chunks keep their columns: a file holds the
//!   first `columns` columns of the final schema, possibly with narrower types, which is what
//!   the generated `COPY INTO` column lists rely on.
//! - `warn`: keep the schema; a field it does not know, or a value that does not fit its
//!   column, goes into the reserved [`EXTRA_COLUMN`] as JSON (`{"field": value}`), and the
//!   manifest counts how often that happened per field.
//!
//! A field that is missing (absent or null) is never drift within a run: every inferred
//! column is nullable. Across runs, a column of the previous run that this run never filled
//! is recorded as `missing` under every policy, and the column is kept.

pub use super::schema::EXTRA_COLUMN;
use super::schema::{Field, FieldKind, Schema};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What to do when records do not match the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSchemaDrift {
    #[default]
    Fail,
    Evolve,
    Warn,
}

impl fmt::Display for OnSchemaDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnSchemaDrift::Fail => "fail",
            OnSchemaDrift::Evolve => "evolve",
            OnSchemaDrift::Warn => "warn",
        })
    }
}

impl FromStr for OnSchemaDrift {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fail" => Ok(OnSchemaDrift::Fail),
            "evolve" => Ok(OnSchemaDrift::Evolve),
            "warn" => Ok(OnSchemaDrift::Warn),
            other => Err(format!(
                "unknown schema drift policy '{other}': use fail, evolve or warn"
            )),
        }
    }
}

/// How columns are found and held for a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaOptions {
    pub on_drift: OnSchemaDrift,
    /// Expand nested objects into `parent.child` columns down to this many levels; 0 keeps
    /// every nested value as one JSON text column.
    pub flatten_depth: usize,
    /// A schema pinned by `--schema FILE`: never inferred or widened, and a record that does
    /// not fit is an error naming its position.
    pub pinned: Option<Schema>,
}

/// What kind of change a [`SchemaChange`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A field not in the schema (a new column under `evolve`).
    Added,
    /// A column whose type was widened (`evolve`).
    Widened,
    /// A value of a type its column does not take (`fail`/`warn`).
    TypeMismatch,
    /// A column of the previous run that this run never filled.
    Missing,
    /// Values sent to the `_extra` column (`warn`).
    ToExtra,
}

/// One schema difference, as recorded in the manifest and shown in a drift error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChange {
    pub field: String,
    pub change: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<FieldKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<FieldKind>,
    /// The chunk from which the change applies (evolve), or where it was first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u64>,
    /// How many values it concerned (`warn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<u64>,
    /// What the user should know, e.g. that a widening can lose precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl SchemaChange {
    pub(crate) fn new(field: &str, change: ChangeKind) -> Self {
        Self {
            field: field.to_owned(),
            change,
            from: None,
            to: None,
            chunk: None,
            values: None,
            note: None,
        }
    }
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |k: Option<FieldKind>| k.map(FieldKind::name).unwrap_or("?");
        match self.change {
            ChangeKind::Added => write!(f, "+ {} ({})", self.field, kind(self.to))?,
            ChangeKind::Missing => write!(f, "- {} ({})", self.field, kind(self.from))?,
            ChangeKind::Widened | ChangeKind::TypeMismatch => write!(
                f,
                "~ {}: {} -> {}",
                self.field,
                kind(self.from),
                kind(self.to)
            )?,
            ChangeKind::ToExtra => write!(
                f,
                "> {}: {} value(s) kept in {EXTRA_COLUMN}",
                self.field,
                self.values.unwrap_or(0)
            )?,
        }
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// A drift diff as text, one change a line: `+` new field, `~` changed type, `-` missing.
pub fn render_diff(changes: &[SchemaChange]) -> String {
    changes
        .iter()
        .map(|c| format!("  {c}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The note for a widening that can lose information.
pub(crate) fn widening_note(from: FieldKind, to: FieldKind) -> Option<String> {
    match (from, to) {
        (FieldKind::Int64, FieldKind::Float64) => Some(
            "integers beyond ±2^53 lose precision as float64; pin the column as utf8 with --schema to keep them exact"
                .to_owned(),
        ),
        (_, FieldKind::Utf8) if from != FieldKind::Utf8 => {
            Some("values are kept as their text".to_owned())
        }
        _ => None,
    }
}

// Evolving a schema is the drift policy's business; the method sits here, with the
// vocabulary of changes it records, so that `schema` never needs to know about drift.
impl Schema {
    /// This schema widened to hold what `seen` showed: unknown fields become new trailing
    /// columns, and a column whose values no longer fit takes the narrowest kind that holds
    /// both. Returns the changes (empty when the schema already fits).
    pub(crate) fn widened(
        &self,
        seen: &[(String, Option<FieldKind>)],
    ) -> (Schema, Vec<SchemaChange>) {
        let mut out = self.clone();
        let mut changes = Vec::new();
        for (name, kind) in seen {
            match out.fields.iter_mut().find(|f| &f.name == name) {
                Some(f) => {
                    if let Some(k) = kind {
                        if !f.kind.takes(*k) {
                            let to = f.kind.widen(*k);
                            let mut c = SchemaChange::new(name, ChangeKind::Widened);
                            c.from = Some(f.kind);
                            c.to = Some(to);
                            c.note = widening_note(f.kind, to);
                            changes.push(c);
                            f.kind = to;
                        }
                    }
                }
                None => {
                    let kind = kind.unwrap_or(FieldKind::Utf8);
                    let mut c = SchemaChange::new(name, ChangeKind::Added);
                    c.to = Some(kind);
                    changes.push(c);
                    out.fields.push(Field::new(name.clone(), kind));
                }
            }
        }
        (out, changes)
    }
}

/// The differences between the schema a run started with (`old`) and what the data showed
/// (`seen`: kinds per field, `None` for a field only ever null).
pub(crate) fn diff(old: &Schema, seen: &[(String, Option<FieldKind>)]) -> Vec<SchemaChange> {
    let mut out = Vec::new();
    for (name, kind) in seen {
        match old.fields.iter().find(|f| &f.name == name) {
            None => {
                let mut c = SchemaChange::new(name, ChangeKind::Added);
                c.to = Some(kind.unwrap_or(FieldKind::Utf8));
                out.push(c);
            }
            Some(f) => {
                if let Some(k) = kind {
                    if !f.kind.takes(*k) {
                        let mut c = SchemaChange::new(name, ChangeKind::TypeMismatch);
                        c.from = Some(f.kind);
                        c.to = Some(*k);
                        out.push(c);
                    }
                }
            }
        }
    }
    out
}
