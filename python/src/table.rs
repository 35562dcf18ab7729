//! A manifest table's committed parts, for `clipline.read_table`.
//!
//! The commit markers say which Parquet parts belong to committed chunks; a killed run's
//! leftovers are in no marker, so readers that go through this never see them (the rule
//! `clipline sql` follows). The `runs` table is not committed by chunk: each run writes its
//! own row when it ends, so all of its parts are read. Python reads the bytes with pyarrow.

use std::collections::HashMap;

use clipline_core::manifest::commits::committed_parts;
use clipline_core::manifest::{RunRow, Table, TABLES};
use clipline_shard::ShardError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::dataset::open_store;
use crate::errors::to_py;
use crate::runtime;

/// The bytes of each committed Parquet part of `table` in the output at `uri`, by part key.
#[pyfunction]
#[pyo3(signature = (uri, table, storage_options=None))]
pub fn committed_table_parts<'py>(py: Python<'py>, uri: &str, table: &str, storage_options: Option<HashMap<String, String>>) -> PyResult<Vec<(String, Bound<'py, PyBytes>)>> {
    if !TABLES.contains(&table) {
        return Err(PyValueError::new_err(format!("no table {table:?}; the tables are {}", TABLES.join(", "))));
    }
    let store = open_store(uri, storage_options)?;
    let parts = py
        .detach(|| {
            runtime().block_on(async {
                let keys = if table == RunRow::NAME {
                    store.list(&format!("manifests/{table}")).await?.into_iter().map(|e| e.key).filter(|k| k.ends_with(".parquet")).collect()
                } else {
                    committed_parts(&store, table).await?
                };
                let mut parts = Vec::with_capacity(keys.len());
                for key in keys {
                    let bytes = store.get(&key).await?;
                    parts.push((store.uri_of(&key), bytes));
                }
                Ok::<_, clipline_core::Error>(parts)
            })
        })
        .map_err(|e| to_py(ShardError::Store(e)))?;
    Ok(parts.into_iter().map(|(key, bytes)| (key, PyBytes::new(py, &bytes))).collect())
}
