//! What a manifest file says it is: its table and schema version, read from the Parquet footer
//! alone, so that checking a large remote part costs one or two small range reads instead of
//! a download.

use parquet::file::metadata::ParquetMetaDataReader;

use crate::storage::Store;
use crate::{Error, Result};

/// Bytes fetched from the end of a file on the first read; our footers are a few KiB.
const TAIL_GUESS: u64 = 64 * 1024;

/// The `clipline.*` key-value metadata of a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    /// `clipline.table`, when present.
    pub table: Option<String>,
    /// `clipline.schema_version`, when present.
    pub schema_version: Option<String>,
}

/// Read the tags of the Parquet object `key` of `size` bytes.
///
/// # Errors
/// On storage failures, or when the object is not a Parquet file (naming it).
pub async fn read_tags(store: &Store, key: &str, size: u64) -> Result<Tags> {
    let what = store.uri_of(key);
    if size < 12 {
        return Err(Error::parquet(&what, format!("{size} bytes is too small for a Parquet file")));
    }
    let start = size.saturating_sub(TAIL_GUESS);
    let mut tail = store.get_range(key, start..size).await?;
    let footer = &tail[tail.len() - 8..];
    if &footer[4..] != b"PAR1" {
        return Err(Error::parquet(&what, "not a Parquet file (no PAR1 magic at its end)"));
    }
    let metadata_len = u64::from(u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]));
    if metadata_len + 8 > size {
        return Err(Error::parquet(&what, format!("footer claims {metadata_len} bytes of metadata in a {size}-byte file")));
    }
    if metadata_len + 8 > tail.len() as u64 {
        tail = store.get_range(key, size - metadata_len - 8..size).await?;
    }
    let end = tail.len() - 8;
    let metadata = ParquetMetaDataReader::decode_metadata(&tail[end - metadata_len as usize..end]).map_err(|e| Error::parquet(&what, e))?;
    let value = |name: &str| {
        metadata.file_metadata().key_value_metadata()?.iter().find(|kv| kv.key == name).and_then(|kv| kv.value.clone())
    };
    Ok(Tags { table: value("clipline.table"), schema_version: value("clipline.schema_version") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{encode, ShardRow, Timestamp, SCHEMA_VERSION};

    #[tokio::test]
    async fn reads_the_table_and_version_from_the_footer() {
        let store = Store::open("memory://tags").unwrap();
        let row = ShardRow { shard: "a.shard".into(), samples: 1, bytes: 2, raw_bytes: 3, index_bytes: 4, zstd_level: 3, created_at: Timestamp(0) };
        let bytes = encode(&[row]).unwrap();
        let size = bytes.len() as u64;
        store.put("manifests/shards/part-a.parquet", bytes).await.unwrap();
        let tags = read_tags(&store, "manifests/shards/part-a.parquet", size).await.unwrap();
        assert_eq!(tags, Tags { table: Some("shards".into()), schema_version: Some(SCHEMA_VERSION.into()) });
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_parquet_naming_it() {
        let store = Store::open("memory://tags-bad").unwrap();
        store.put("manifests/clips/part-x.parquet", bytes::Bytes::from_static(b"this is not parquet at all")).await.unwrap();
        let err = read_tags(&store, "manifests/clips/part-x.parquet", 26).await.unwrap_err().to_string();
        assert!(err.contains("part-x.parquet") && err.contains("not a Parquet file"), "{err}");
    }
}
