//! `clipline sql`: one query over the manifests of one or more outputs, printed or saved.
//!
//! The query is SQL text, a `.sql` file or the name of a ready query (`--list` shows them). It
//! runs inside [`clipline_sql::detached`], off the main async runtime.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::atomic_file::write_atomically;

use anyhow::Context;
use clap::Args;
use clipline_core::storage::StoreOptions;
use clipline_sql::{ready_queries, ready_query, Catalog, Format, Session, SqlError};

/// Arguments of `clipline sql`.
#[derive(Args, Debug)]
pub struct SqlArgs {
    /// SQL text, a .sql file, or a ready query's name (see --list).
    pub query: Option<String>,
    /// An output root to read (path, file://, s3://bucket/prefix); repeat it to read several runs
    /// or partitions as one set of tables.
    #[arg(long, short = 'd')]
    pub data: Vec<String>,
    /// Result format: table, csv, json or parquet.
    #[arg(long, default_value = "table")]
    pub output: Format,
    /// Write the result to this file (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the optimised plan (with the filters and columns pushed into each scan) instead of
    /// running the query.
    #[arg(long)]
    pub explain: bool,
    /// List the ready queries and the questions they answer.
    #[arg(long)]
    pub list: bool,
    /// Print every table and its columns.
    #[arg(long)]
    pub schema: bool,
    /// Rows shown by the table format.
    #[arg(long, default_value_t = 50)]
    pub max_rows: usize,
}

/// Run `clipline sql`.
///
/// # Errors
/// When the query cannot be found, planned or run, or the result cannot be written.
pub fn sql(args: &SqlArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if args.list {
        for q in ready_queries() {
            writeln!(stdout, "{:<22} {}", q.name, q.question)?;
        }
        return Ok(());
    }
    let catalog = runtime.block_on(Catalog::open(&args.data, &StoreOptions::default()))?;
    let mut session = Session::new(catalog)?;
    if args.schema {
        for (table, columns) in session.catalog().columns()? {
            writeln!(stdout, "{table}: {}", columns.join(", "))?;
        }
        return Ok(());
    }
    let query = args.query.as_deref().context("no query: give SQL text, a .sql file or a ready query's name (clipline sql --list)")?;
    let (sql, what) = resolve(query)?;
    if args.explain {
        writeln!(stdout, "{}", session.explain(&sql, &what)?)?;
        return Ok(());
    }
    let mut df = session.run(&sql, &what)?;
    match &args.out {
        Some(path) => write_atomically(path, |file| {
            Ok(clipline_sql::output::write(&mut df, args.output, file, &path.display().to_string(), args.max_rows)?)
        }),
        None if args.output == Format::Parquet && stdout.is_terminal() => {
            anyhow::bail!("Parquet is binary: pass --out FILE, or redirect standard output to a file")
        }
        None => Ok(clipline_sql::output::write(&mut df, args.output, &mut stdout, "standard output", args.max_rows)?),
    }
}

/// The SQL text and a name for errors: from a file, a ready query or the argument itself.
fn resolve(query: &str) -> Result<(String, String), SqlError> {
    let path = Path::new(query);
    if query.ends_with(".sql") || (!query.contains(char::is_whitespace) && path.is_file()) {
        let sql = std::fs::read_to_string(path).map_err(|source| SqlError::QueryFile { path: query.to_string(), source })?;
        return Ok((sql, query.to_string()));
    }
    if let Some(ready) = ready_query(query) {
        return Ok((ready.sql.to_string(), format!("ready query {}", ready.name)));
    }
    Ok((query.to_string(), "query".to_string()))
}
