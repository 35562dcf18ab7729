//! Which manifest files make up each table of one or more outputs, and the lazy scans over them.
//!
//! A table is the committed parts of one or more outputs (or partitions of one dataset): the
//! parts the commit markers name, so that a query never sees the leftovers of a killed run, plus
//! every file of `runs/` (one per invocation, written whole). Each output's first part of every
//! table is checked for its `clipline.table` and `clipline.schema_version` tags before anything is
//! scanned, so that a foreign or newer manifest is refused by name instead of misread. Scans are
//! lazy: polars pushes the query's filters and column choice down to the Parquet readers, so
//! a query over a large manifest reads only the row groups and columns it needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clipline_core::manifest::commits::markers;
use clipline_core::manifest::tags::read_tags;
use clipline_core::manifest::{RunRow, Table, SCHEMA_VERSION};
use clipline_core::storage::{Store, StoreOptions};
use polars::polars_utils::pl_path::{CloudScheme, PlRefPath};
use polars::prelude::cloud::CloudOptions;
use polars::prelude::*;

use crate::SqlError;

/// The tables a clipline output can hold, in the order they are listed.
pub use clipline_core::manifest::TABLES;

/// The files of one table in one output.
#[derive(Debug, Clone)]
struct OutputFiles {
    /// Paths as polars reads them: absolute local paths or `s3://bucket/key` URIs.
    paths: Vec<String>,
    /// How polars reaches the store (`None` for local files).
    cloud: Option<CloudOptions>,
}

/// The manifest tables of one or more outputs, ready to be queried.
#[derive(Debug, Clone)]
pub struct Catalog {
    outputs: Vec<String>,
    tables: BTreeMap<&'static str, Vec<OutputFiles>>,
}

impl Catalog {
    /// Find the committed manifest files of every output and check their tags.
    ///
    /// # Errors
    /// When an output does not exist or holds no manifests, when a marker or a part cannot be
    /// read, or when a part belongs to another table or schema version.
    pub async fn open(outputs: &[String], options: &StoreOptions) -> Result<Self, SqlError> {
        if outputs.is_empty() {
            return Err(SqlError::NoOutput);
        }
        let mut tables: BTreeMap<&'static str, Vec<OutputFiles>> = BTreeMap::new();
        let mut uris = Vec::new();
        for output in outputs {
            let store = open_existing(output, options)?;
            let found = committed_files(&store).await?;
            if found.is_empty() {
                return Err(SqlError::EmptyOutput { output: store.uri().to_string() });
            }
            let cloud = cloud_options(&store, options)?;
            for (table, files) in found {
                check_tags(&store, table, &files[0]).await?;
                let paths = files.iter().map(|(key, _)| polars_path(&store, key)).collect();
                tables.entry(table).or_default().push(OutputFiles { paths, cloud: cloud.clone() });
            }
            uris.push(store.uri().to_string());
        }
        Ok(Self { outputs: uris, tables })
    }

    /// The outputs read, normalised.
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// Names of the tables that have rows in at least one output, in [`TABLES`] order.
    pub fn table_names(&self) -> Vec<&'static str> {
        TABLES.iter().copied().filter(|t| self.tables.contains_key(t)).collect()
    }

    /// Whether `table` has files.
    pub fn has(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// A lazy scan of one table over every output (outputs whose schemas differ by added columns
    /// are aligned by name; missing values are null).
    ///
    /// # Errors
    /// When the table does not exist, or polars cannot plan the scan.
    pub fn scan(&self, table: &str) -> Result<LazyFrame, SqlError> {
        let files = self.tables.get(table).ok_or_else(|| SqlError::UnknownTable { table: table.to_string(), available: self.table_names().join(", ") })?;
        // Outputs reached the same way are read by one scan (one plan node, one count); only
        // outputs on different stores need a union.
        let mut groups: Vec<(Option<CloudOptions>, Vec<PlRefPath>)> = Vec::new();
        for f in files {
            let paths = f.paths.iter().map(|p| PlRefPath::new(p.as_str()));
            match groups.iter_mut().find(|(cloud, _)| *cloud == f.cloud) {
                Some((_, group)) => group.extend(paths),
                None => groups.push((f.cloud.clone(), paths.collect())),
            }
        }
        let scans = groups
            .into_iter()
            .map(|(cloud_options, paths)| {
                let args = ScanArgsParquet { cloud_options, glob: false, allow_missing_columns: true, ..Default::default() };
                LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
            })
            .collect::<PolarsResult<Vec<_>>>()
            .map_err(|e| SqlError::polars(format!("scanning {table}"), e))?;
        match scans.len() {
            1 => Ok(scans.into_iter().next().expect("one scan")),
            _ => concat_lf_diagonal(scans, UnionArgs::default()).map_err(|e| SqlError::polars(format!("combining {table} across outputs"), e)),
        }
    }

    /// Each table's column names (read from the files' footers), for error messages and `--schema`.
    ///
    /// # Errors
    /// When a footer cannot be read.
    pub fn columns(&self) -> Result<Vec<(&'static str, Vec<String>)>, SqlError> {
        self.table_names()
            .into_iter()
            .map(|t| {
                let schema = self.scan(t)?.collect_schema().map_err(|e| SqlError::polars(format!("reading the schema of {t}"), e))?;
                Ok((t, schema.iter_names().map(|n| n.to_string()).collect()))
            })
            .collect()
    }
}

/// Open an output that must already exist (a local path is not created by reading it).
fn open_existing(output: &str, options: &StoreOptions) -> Result<Store, SqlError> {
    let local = output.strip_prefix("file://").or_else(|| (!output.contains("://")).then_some(output));
    if let Some(path) = local
        && !Path::new(path).is_dir()
    {
        return Err(SqlError::NoSuchOutput { output: output.to_string() });
    }
    Ok(Store::open_with(output, options.clone())?)
}

/// Committed parts of every table (from the markers) and the run files, with their sizes.
async fn committed_files(store: &Store) -> Result<BTreeMap<&'static str, Vec<(String, u64)>>, SqlError> {
    let mut named: BTreeSet<String> = BTreeSet::new();
    for mut marker in markers(store).await? {
        named.extend(marker.parts.drain().map(|(_, key)| key));
    }
    let mut found: BTreeMap<&'static str, Vec<(String, u64)>> = BTreeMap::new();
    for table in TABLES {
        let committed_only = table != RunRow::NAME;
        let files: Vec<(String, u64)> = store
            .list(&format!("manifests/{table}"))
            .await?
            .into_iter()
            .filter(|e| e.key.ends_with(".parquet") && (!committed_only || named.contains(&e.key)))
            .map(|e| (e.key, e.size))
            .collect();
        if !files.is_empty() {
            found.insert(table, files);
        }
    }
    Ok(found)
}

/// Refuse a part whose tags say it is another table or another schema version.
async fn check_tags(store: &Store, table: &str, (key, size): &(String, u64)) -> Result<(), SqlError> {
    let tags = read_tags(store, key, *size).await?;
    let file = store.uri_of(key);
    if tags.table.as_deref() != Some(table) {
        return Err(SqlError::Foreign { file, table: table.to_string(), found: tags.table.unwrap_or_else(|| "no clipline.table tag".into()) });
    }
    match tags.schema_version {
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        found => Err(SqlError::SchemaVersion { file, found: found.unwrap_or_else(|| "none".into()), supported: SCHEMA_VERSION }),
    }
}

/// The path polars reads for a key of a store.
fn polars_path(store: &Store, key: &str) -> String {
    match store.local_root() {
        Some(root) => root.join(key).display().to_string(),
        None => store.uri_of(key),
    }
}

/// polars' settings for an S3 store: the same endpoint and credentials the store uses (the AWS
/// environment, overridden by the store's explicit settings).
fn cloud_options(store: &Store, options: &StoreOptions) -> Result<Option<CloudOptions>, SqlError> {
    if store.local_root().is_some() {
        return Ok(None);
    }
    let mut config: Vec<(String, String)> = Vec::new();
    if let Some(endpoint) = clipline_core::env::aws_endpoint() {
        config.push(("aws_endpoint".into(), endpoint));
    }
    config.extend(options.s3.iter().cloned());
    if let Some((_, endpoint)) = config.iter().rev().find(|(k, _)| k == "aws_endpoint" || k == "endpoint").cloned() {
        config.push(("aws_allow_http".into(), endpoint.starts_with("http://").to_string()));
        config.push(("aws_virtual_hosted_style_request".into(), "false".into()));
    }
    let scheme = CloudScheme::from_path(store.uri());
    let options = CloudOptions::from_untyped_config(scheme, config).map_err(|e| SqlError::polars(format!("S3 settings for {}", store.uri()), e))?;
    Ok(Some(options))
}
