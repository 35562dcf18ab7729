//! The manifest tables and their Parquet encoding.
//!
//! Manifests are plain, zstd-compressed Parquet so that polars, DuckDB, Spark or pandas read them
//! without clipline. Each table is a Rust row struct declared once with `table!`: the macro
//! derives the Arrow schema, the row-to-batch encoder and the batch-to-row decoder from the same
//! field list, so the three cannot drift apart. The column meanings are documented in
//! `docs/MANIFESTS.md`.

pub mod commits;
mod columns;
mod parquet_io;
pub mod plan;
mod status;
mod tables;
pub mod tags;

pub use columns::{Column, Timestamp};
pub use parquet_io::{decode, encode, SCHEMA_VERSION};
pub use status::{CaptionStatus, ClipStatus, FailureKind, RunStatus, SampleStatus, VideoStatus};
pub use tables::{CaptionRow, ClipRow, RunRow, SampleRow, ShardRow, ShotRow, VideoRow};

/// Every manifest table, in the order they are listed to users.
pub const TABLES: [&str; 7] = [VideoRow::NAME, ShotRow::NAME, ClipRow::NAME, CaptionRow::NAME, SampleRow::NAME, ShardRow::NAME, RunRow::NAME];

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

/// A manifest table: a name, a schema and the conversions between rows and Arrow batches.
pub trait Table: Sized {
    /// The table's name, which is also its directory under `manifests/`.
    const NAME: &'static str;
    /// The Arrow schema.
    fn schema() -> SchemaRef;
    /// Encode rows as one batch.
    ///
    /// # Errors
    /// Never for well-formed rows; the signature leaves room for checks.
    fn to_batch(rows: &[Self]) -> crate::Result<RecordBatch>;
    /// Decode a batch back into rows.
    ///
    /// # Errors
    /// When a column is missing or has another type.
    fn from_batch(batch: &RecordBatch) -> crate::Result<Vec<Self>>;
}

/// Declare a manifest table: a row struct plus its [`Table`] implementation.
#[macro_export]
macro_rules! table {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $table:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $crate::manifest::Table for $name {
            const NAME: &'static str = $table;

            fn schema() -> arrow_schema::SchemaRef {
                std::sync::Arc::new(arrow_schema::Schema::new(vec![
                    $( arrow_schema::Field::new(
                        stringify!($field),
                        <$ty as $crate::manifest::Column>::data_type(),
                        <$ty as $crate::manifest::Column>::NULLABLE,
                    ) ),*
                ]))
            }

            fn to_batch(rows: &[Self]) -> $crate::Result<arrow_array::RecordBatch> {
                let columns: Vec<arrow_array::ArrayRef> = vec![
                    $( <$ty as $crate::manifest::Column>::to_array(rows.iter().map(|r| r.$field.clone()).collect()) ),*
                ];
                arrow_array::RecordBatch::try_new(Self::schema(), columns)
                    .map_err(|e| $crate::Error::Schema { table: $table.into(), message: e.to_string() })
            }

            fn from_batch(batch: &arrow_array::RecordBatch) -> $crate::Result<Vec<Self>> {
                $(
                    let $field = batch.column_by_name(stringify!($field)).ok_or_else(|| $crate::Error::Schema {
                        table: $table.into(),
                        message: format!("missing column {}", stringify!($field)),
                    })?;
                    let mut $field = <$ty as $crate::manifest::Column>::from_array($field).map_err(|message| {
                        $crate::Error::Schema { table: $table.into(), message: format!("column {}: {message}", stringify!($field)) }
                    })?.into_iter();
                )*
                let mut rows = Vec::with_capacity(batch.num_rows());
                for _ in 0..batch.num_rows() {
                    rows.push(Self { $( $field: $field.next().expect("column length equals batch length") ),* });
                }
                Ok(rows)
            }
        }
    };
}
