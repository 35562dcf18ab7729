//! A SQL session over a [`Catalog`]: every table registered by name as a lazy scan, queries
//! planned and run by polars, and its errors turned into ones that say what exists.

use polars::error::PolarsError;
use polars::prelude::*;
use polars::sql::SQLContext;

use crate::{Catalog, SqlError};

/// Registered tables and the SQL engine.
pub struct Session {
    catalog: Catalog,
    context: SQLContext,
}

impl Session {
    /// Register every table of the catalog.
    ///
    /// # Errors
    /// When a scan cannot be planned.
    pub fn new(catalog: Catalog) -> Result<Self, SqlError> {
        let context = SQLContext::new();
        for table in catalog.table_names() {
            context.register(table, catalog.scan(table)?);
        }
        Ok(Self { catalog, context })
    }

    /// The catalog queried.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Plan a query; `what` names it in errors (a file name, or `query`).
    ///
    /// # Errors
    /// When the SQL is malformed, or names a table or column that does not exist.
    pub fn plan(&mut self, sql: &str, what: &str) -> Result<LazyFrame, SqlError> {
        let plan = self.context.execute(sql).map_err(|e| self.explain_error(e, what))?;
        // Name resolution happens when the schema is resolved: do it now, so that an unknown
        // column is reported before anything is read.
        plan.clone().collect_schema().map_err(|e| self.explain_error(e, what))?;
        Ok(plan)
    }

    /// Run a query to its result.
    ///
    /// # Errors
    /// As [`Session::plan`], and when reading the files fails.
    pub fn run(&mut self, sql: &str, what: &str) -> Result<DataFrame, SqlError> {
        let plan = self.plan(sql, what)?;
        plan.collect().map_err(|e| self.explain_error(e, what))
    }

    /// The optimised plan of a query, which shows the filters and columns pushed into each scan.
    ///
    /// # Errors
    /// As [`Session::plan`].
    pub fn explain(&mut self, sql: &str, what: &str) -> Result<String, SqlError> {
        let plan = self.plan(sql, what)?;
        plan.describe_optimized_plan().map_err(|e| self.explain_error(e, what))
    }

    /// Turn polars' error into one that lists what exists.
    fn explain_error(&self, error: PolarsError, what: &str) -> SqlError {
        let root = innermost(&error);
        match root {
            PolarsError::ColumnNotFound(message) | PolarsError::SchemaFieldNotFound(message) => {
                let columns = match self.catalog.columns() {
                    Ok(tables) => tables.iter().map(|(t, cols)| format!("  {t}: {}", cols.join(", "))).collect::<Vec<_>>().join("\n"),
                    Err(e) => format!("  (could not be read: {e})"),
                };
                SqlError::UnknownColumn { message: format!("{what}: unknown column: {message}"), columns }
            }
            PolarsError::SQLInterface(message) if message.contains("relation '") && message.contains("not found") => {
                let table = message.split('\'').nth(1).unwrap_or_default().to_string();
                SqlError::UnknownTable { table, available: self.catalog.table_names().join(", ") }
            }
            PolarsError::SQLInterface(message) | PolarsError::SQLSyntax(message) => SqlError::Query { what: what.to_string(), message: message.to_string() },
            _ => SqlError::polars(what.to_string(), error),
        }
    }
}

/// The error under polars' context wrappers.
fn innermost(error: &PolarsError) -> &PolarsError {
    match error {
        PolarsError::Context { error, .. } | PolarsError::ExprContext { error, .. } => innermost(error),
        other => other,
    }
}
