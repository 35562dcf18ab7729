//! SQL over clipline's manifests, for analysts.
//!
//! The manifests are plain Parquet so that any engine reads them; this crate makes the common
//! questions one command away: [`Catalog`] finds each table's committed files in one or more
//! outputs (local or S3) and checks their schema version, [`Session`] registers them by name
//! as lazy polars scans (so filters and column choices reach the Parquet readers) and answers
//! SQL with errors that list what exists, [`output`] writes results as a table, CSV, JSON or
//! Parquet, and [`ready`] holds the library of ready queries in `sql/queries/`.

pub mod catalog;
mod error;
pub mod output;
pub mod ready;
mod session;

pub use catalog::Catalog;
pub use error::SqlError;
pub use output::Format;
pub use ready::{ready_queries, ready_query, Chart, ReadyQuery};
pub use session::Session;

/// Re-exported for callers that read results (the report).
pub use polars;

/// Run `work` on a thread of its own, handing it a small runtime for the catalog's storage
/// calls: polars drives its own async runtime for S3 reads and must not run inside another's.
///
/// # Errors
/// What `work` returns, or when the thread panics or the runtime cannot start.
pub fn detached<T: Send>(work: impl FnOnce(&tokio::runtime::Runtime) -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            work(&runtime)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the query thread panicked"))?
    })
}
