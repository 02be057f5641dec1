//! Which columns of a parquet file are written with a dictionary.
//!
//! Parquet writers dictionary-encode every column by default: each value is looked up in a
//! table of the values seen so far and the page holds small indices into it. That pays where
//! values repeat (a status, a country, a warehouse code) and only costs where they do not
//! (ids, references, amounts, timestamps): the writer hashes every value, fills a dictionary
//! page with values that occur once, holds it in memory until the row group closes, and falls
//! back to plain encoding once that page reaches its size limit (1 MiB) anyway. On the bench's
//! orders records, 6 of 14 columns are of that kind; their dictionaries were a quarter of the
//! writer's memory at its peak and made the files 6% larger than plain encoding.
//!
//! So each file's first record batch decides: a column whose non-null values in it are at
//! least [`DISTINCT_PERCENT`]% distinct is written without a dictionary; every other column
//! keeps one (parquet's own fallback still applies if its values stop repeating later). The
//! decision reads the file's own records only, so the same records give the same file
//! whichever run writes them.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use std::collections::HashSet;
use std::hash::Hash;

/// A column whose sampled values are at least this share distinct gets no dictionary. Where
/// nine values in ten are new, the dictionary holds nearly every value once and each row still
/// needs an index beside it: larger than the values written plainly, for int64 from about 75%
/// distinct and for strings of a few dozen bytes from about 93%.
pub const DISTINCT_PERCENT: usize = 90;

/// `builder` with the dictionary turned off for the columns of `first` (the file's first
/// record batch) whose values are mostly distinct.
pub fn decide(builder: WriterPropertiesBuilder, first: &RecordBatch) -> WriterProperties {
    let schema = first.schema();
    schema
        .fields()
        .iter()
        .zip(first.columns())
        .filter(|(_, values)| mostly_distinct(values.as_ref()))
        .fold(builder, |b, (field, _)| {
            b.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false)
        })
        .build()
}

/// Whether at least [`DISTINCT_PERCENT`]% of `values`' non-null entries are distinct. Types
/// parquet never gives a dictionary (booleans) and columns without values answer no.
fn mostly_distinct(values: &dyn Array) -> bool {
    let present = values.len() - values.null_count();
    match values.data_type() {
        DataType::Utf8 => values
            .as_string_opt::<i32>()
            .is_some_and(|a| distinct_within(a.iter().flatten(), present)),
        DataType::Int64 => values
            .as_primitive_opt::<Int64Type>()
            .is_some_and(|a| distinct_within(a.iter().flatten(), present)),
        DataType::Float64 => values
            .as_primitive_opt::<Float64Type>()
            .is_some_and(|a| distinct_within(a.iter().flatten().map(f64::to_bits), present)),
        DataType::Timestamp(..) => values
            .as_primitive_opt::<TimestampMicrosecondType>()
            .is_some_and(|a| distinct_within(a.iter().flatten(), present)),
        _ => false,
    }
}

/// Whether no more of the `present` items repeat than [`DISTINCT_PERCENT`] allows; false as
/// soon as more have (a column that repeats is decided after a few of its values, so only the
/// mostly distinct ones are read to the end).
fn distinct_within<T: Hash + Eq>(items: impl Iterator<Item = T>, present: usize) -> bool {
    if present == 0 {
        return false;
    }
    let allowed_repeats = present * (100 - DISTINCT_PERCENT) / 100;
    // Every value of a mostly distinct column is hashed: with foldhash (a per-process seed
    // all the same) rather than std's SipHash, which made this decision 6.6% of a
    // 20,000-record parquet pull's instructions (bench/README, round eleven).
    let mut seen = HashSet::with_capacity_and_hasher(present, foldhash::fast::RandomState::default());
    let mut repeats = 0;
    for item in items {
        if !seen.insert(item) {
            repeats += 1;
            if repeats > allowed_repeats {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    fn ints(distinct: i64, of: i64) -> ArrayRef {
        Arc::new(Int64Array::from_iter_values((0..of).map(|i| i % distinct)))
    }

    #[test]
    fn the_threshold_is_ninety_percent_of_the_values_present() {
        assert!(mostly_distinct(ints(90, 100).as_ref()));
        assert!(!mostly_distinct(ints(89, 100).as_ref()));
        assert!(mostly_distinct(ints(1000, 1000).as_ref()));
        assert!(!mostly_distinct(ints(1, 1000).as_ref()));
        // Nulls are not values: 9 distinct of 10 present, among 90 nulls.
        let sparse: Int64Array = (0..100)
            .map(|i| (i % 10 == 0).then_some(i.min(80)))
            .collect();
        assert_eq!(sparse.len() - sparse.null_count(), 10);
        assert!(mostly_distinct(&sparse));
        let none = Int64Array::from(vec![None::<i64>; 5]);
        assert!(!mostly_distinct(&none));
    }

    #[test]
    fn every_dictionary_type_is_counted_and_booleans_never() {
        let texts = StringArray::from_iter_values((0..100).map(|i| format!("ORD-{i:06}")));
        assert!(mostly_distinct(&texts));
        let statuses = StringArray::from_iter_values((0..100).map(|i| ["new", "paid"][i % 2]));
        assert!(!mostly_distinct(&statuses));
        let amounts = Float64Array::from_iter_values((0..100).map(|i| f64::from(i) / 100.0));
        assert!(mostly_distinct(&amounts));
        let zeros = Float64Array::from_iter_values((0..100).map(|_| 0.0));
        assert!(!mostly_distinct(&zeros));
        let times = TimestampMicrosecondArray::from_iter_values((0..100).map(|i| i * 1_000_000))
            .with_timezone("UTC");
        assert!(mostly_distinct(&times));
        let flags = BooleanArray::from(vec![true, false]);
        assert!(!mostly_distinct(&flags));
    }

    #[test]
    fn only_the_mostly_distinct_columns_lose_their_dictionary() {
        let batch = RecordBatch::try_from_iter([
            ("id", ints(1000, 1000)),
            ("status", ints(3, 1000)),
        ])
        .unwrap();
        let props = decide(WriterProperties::builder(), &batch);
        assert!(!props.dictionary_enabled(&ColumnPath::from("id")));
        assert!(props.dictionary_enabled(&ColumnPath::from("status")));
        // A column the batch does not name keeps parquet's default.
        assert!(props.dictionary_enabled(&ColumnPath::from("other")));
    }
}
