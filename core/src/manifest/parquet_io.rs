//! Rows to Parquet bytes and back, zstd-compressed, with the schema version in the file metadata.

use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::Table;
use crate::{Error, Result};

/// Version of the manifest schemas, written into every file's key-value metadata as
/// `clipline.schema_version`; bumped when a column changes meaning or type.
pub const SCHEMA_VERSION: &str = "1";

/// Rows per row group: small enough that a large part is read by several threads and that a
/// filter skips row groups by their statistics, large enough that the footer stays small.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Encode rows of a table as one Parquet file.
///
/// # Errors
/// When Arrow or Parquet refuse the data.
pub fn encode<T: Table>(rows: &[T]) -> Result<Bytes> {
    let batch = T::to_batch(rows)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(|e| Error::parquet(T::NAME, e))?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("clipline.table".into(), T::NAME.to_string()),
            KeyValue::new("clipline.schema_version".into(), SCHEMA_VERSION.to_string()),
        ]))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, T::schema(), Some(props)).map_err(|e| Error::parquet(T::NAME, e))?;
    writer.write(&batch).map_err(|e| Error::parquet(T::NAME, e))?;
    writer.close().map_err(|e| Error::parquet(T::NAME, e))?;
    Ok(Bytes::from(buf))
}

/// Decode a Parquet file of a table into rows; `what` names the file in errors.
///
/// # Errors
/// When the bytes are not Parquet or the columns do not match the table.
pub fn decode<T: Table>(bytes: Bytes, what: &str) -> Result<Vec<T>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| Error::parquet(what, e))?
        .build()
        .map_err(|e| Error::parquet(what, e))?;
    let mut rows = Vec::new();
    for batch in reader {
        rows.extend(T::from_batch(&batch.map_err(|e| Error::parquet(what, e))?)?);
    }
    Ok(rows)
}
