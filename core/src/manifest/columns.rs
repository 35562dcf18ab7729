//! How a Rust field type maps to an Arrow column, both ways.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use arrow_buffer::OffsetBuffer;

/// A field type that can be stored as one Arrow column.
pub trait Column: Sized + Clone {
    /// Whether the column admits nulls (`Option` fields).
    const NULLABLE: bool;
    /// The Arrow type of the column.
    fn data_type() -> DataType;
    /// Build the column from values.
    fn to_array(values: Vec<Self>) -> ArrayRef;
    /// Read the column back.
    ///
    /// # Errors
    /// When the array has another type, or a null in a non-nullable column.
    fn from_array(array: &ArrayRef) -> Result<Vec<Self>, String>;
}

/// A point in time, as microseconds since the Unix epoch (UTC), stored as a Parquet timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(since.as_micros() as i64)
    }
}

fn downcast<'a, A: 'static>(array: &'a ArrayRef, want: &str) -> Result<&'a A, String> {
    array
        .as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| format!("expected {want}, found {}", array.data_type()))
}

/// Implement [`Column`] for `$rust` and `Option<$rust>`, given how to read one value and how
/// to build the array from plain and from optional values.
macro_rules! column {
    ($rust:ty, $array:ty, $dt:expr, $want:literal, $get:expr, $build:expr, $build_opt:expr) => {
        impl Column for $rust {
            const NULLABLE: bool = false;
            fn data_type() -> DataType {
                $dt
            }
            fn to_array(values: Vec<Self>) -> ArrayRef {
                Arc::new($build(values))
            }
            fn from_array(array: &ArrayRef) -> Result<Vec<Self>, String> {
                let a = downcast::<$array>(array, $want)?;
                if a.null_count() > 0 {
                    return Err("unexpected null".into());
                }
                Ok((0..a.len()).map(|i| $get(a, i)).collect())
            }
        }

        impl Column for Option<$rust> {
            const NULLABLE: bool = true;
            fn data_type() -> DataType {
                $dt
            }
            fn to_array(values: Vec<Self>) -> ArrayRef {
                Arc::new($build_opt(values))
            }
            fn from_array(array: &ArrayRef) -> Result<Vec<Self>, String> {
                let a = downcast::<$array>(array, $want)?;
                Ok((0..a.len()).map(|i| (!a.is_null(i)).then(|| $get(a, i))).collect())
            }
        }
    };
}

column!(i64, Int64Array, DataType::Int64, "Int64", |a: &Int64Array, i| a.value(i), Int64Array::from, Int64Array::from);
column!(f64, Float64Array, DataType::Float64, "Float64", |a: &Float64Array, i| a.value(i), Float64Array::from, Float64Array::from);
column!(bool, BooleanArray, DataType::Boolean, "Boolean", |a: &BooleanArray, i| a.value(i), BooleanArray::from, BooleanArray::from);
column!(
    String,
    StringArray,
    DataType::Utf8,
    "Utf8",
    |a: &StringArray, i| a.value(i).to_string(),
    StringArray::from,
    StringArray::from
);
column!(
    Timestamp,
    TimestampMicrosecondArray,
    DataType::Timestamp(TimeUnit::Microsecond, None),
    "Timestamp(µs)",
    |a: &TimestampMicrosecondArray, i| Timestamp(a.value(i)),
    |v: Vec<Timestamp>| TimestampMicrosecondArray::from_iter_values(v.into_iter().map(|t| t.0)),
    |v: Vec<Option<Timestamp>>| v.into_iter().map(|t| t.map(|t| t.0)).collect::<TimestampMicrosecondArray>()
);

/// Lists stored as Arrow `List` columns so SQL can index them and test membership: labels (a
/// caption's flags) as `List<Utf8>`, shapes (a tensor's dimensions) as `List<Int64>`.
macro_rules! list_column {
    ($item:ty, $array:ty, $arrow:expr, $name:literal, $get:expr) => {
        impl Column for Vec<$item> {
            const NULLABLE: bool = false;
            fn data_type() -> DataType {
                DataType::List(Arc::new(arrow_schema::Field::new("item", $arrow, false)))
            }
            fn to_array(values: Vec<Self>) -> ArrayRef {
                let item = Arc::new(arrow_schema::Field::new("item", $arrow, false));
                let offsets = OffsetBuffer::from_lengths(values.iter().map(Vec::len));
                let items: $array = values.into_iter().flatten().map(Some).collect();
                Arc::new(ListArray::new(item, offsets, Arc::new(items), None))
            }
            fn from_array(array: &ArrayRef) -> Result<Vec<Self>, String> {
                let list = downcast::<ListArray>(array, $name)?;
                let items = downcast::<$array>(list.values(), $name)?;
                let offsets = list.value_offsets();
                Ok(offsets.windows(2).map(|w| (w[0] as usize..w[1] as usize).map(|i| $get(items, i)).collect()).collect())
            }
        }
    };
}

list_column!(String, StringArray, DataType::Utf8, "List<Utf8>", |a: &StringArray, i| a.value(i).to_string());
list_column!(i64, Int64Array, DataType::Int64, "List<Int64>", |a: &Int64Array, i| a.value(i));
