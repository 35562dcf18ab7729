//! What can go wrong between a query and its answer, each case saying what exists instead.

/// An error of `clipline sql` and the report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// No output was given.
    #[error("no output to query: pass --data OUTPUT (a path, file://, s3://bucket/prefix), several times for several runs")]
    NoOutput,
    /// A local output directory that does not exist.
    #[error("{output}: no such directory; pass the output root of a `clipline run` (the directory holding manifests/)")]
    NoSuchOutput {
        /// The output as given.
        output: String,
    },
    /// An output with no committed manifests.
    #[error("{output} holds no committed clipline manifests (nothing under manifests/ that a commit marker names, and no runs/); is it the output root of a `clipline run`?")]
    EmptyOutput {
        /// The output, normalised.
        output: String,
    },
    /// A part that is not the table its directory says.
    #[error("{file} is in manifests/{table}/ but is tagged as {found}; it was not written by clipline for this table")]
    Foreign {
        /// The file.
        file: String,
        /// The table its directory names.
        table: String,
        /// Its `clipline.table` tag.
        found: String,
    },
    /// A part of another schema version.
    #[error("{file} has manifest schema version {found}; this clipline reads version {supported} (use the clipline that wrote it, or re-run into a new output)")]
    SchemaVersion {
        /// The file.
        file: String,
        /// Its `clipline.schema_version` tag.
        found: String,
        /// The version this build reads.
        supported: &'static str,
    },
    /// A query names a table no output has.
    #[error("unknown table {table:?}; the tables here are: {available}")]
    UnknownTable {
        /// The name used.
        table: String,
        /// The tables that exist.
        available: String,
    },
    /// A query names a column that does not exist.
    #[error("{message}\ncolumns of the tables here:\n{columns}")]
    UnknownColumn {
        /// The engine's message.
        message: String,
        /// `table: col, col, ...` lines.
        columns: String,
    },
    /// A query file could not be read.
    #[error("cannot read query file {path}: {source}")]
    QueryFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The SQL is malformed or unsupported.
    #[error("{what}: {message}")]
    Query {
        /// The query (a file name or `query`).
        what: String,
        /// The engine's message.
        message: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] clipline_core::Error),
    /// polars failed while planning, reading or writing.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done.
        context: String,
        /// polars' error.
        source: polars::error::PolarsError,
    },
    /// The result could not be written.
    #[error("cannot write the result to {to}: {source}")]
    Write {
        /// Where.
        to: String,
        /// Why.
        source: std::io::Error,
    },
}

impl SqlError {
    /// A polars error, with what was being done.
    pub fn polars(context: impl Into<String>, source: polars::error::PolarsError) -> Self {
        SqlError::Polars { context: context.into(), source }
    }
}
