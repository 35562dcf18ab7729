//! `clipline report`: a self-contained HTML report of an output, so that a person can look at
//! the data instead of reading numbers.
//!
//! Every ready query whose tables the output has becomes a section (its question, a bar chart
//! drawn as SVG when the query has a chart header, and its result table); a contact sheet shows
//! sample clips' middle frames with their captions. The directory holds `index.html`,
//! `charts/*.svg` and `frames/*.jpg` and nothing else, so it can be copied or served as is.

mod chart;
mod contact_sheet;
mod page;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use clipline_core::storage::StoreOptions;
use clipline_sql::output::display_value;
use clipline_sql::polars::prelude::{AnyValue, DataFrame};
use clipline_sql::{ready_queries, Catalog, Chart, ReadyQuery, Session};

pub use chart::{bar_chart_svg, Bars};

use crate::atomic_file::write_atomically;

/// Arguments of `clipline report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The output root(s) to report on (path, file://, s3://bucket/prefix); several read as one.
    #[arg(required = true)]
    pub data: Vec<String>,
    /// Directory for index.html and its charts and frames.
    #[arg(long, default_value = "clipline-report")]
    pub out: PathBuf,
    /// Clips on the contact sheet.
    #[arg(long, default_value_t = 24)]
    pub samples: usize,
}

/// One section of the report: a ready query and what became of it.
pub struct Section {
    /// The query.
    pub query: ReadyQuery,
    /// Its result, or why there is none.
    pub outcome: Outcome,
}

/// What a section shows.
pub enum Outcome {
    /// The result, and the chart file (relative to the report) when drawn.
    Result {
        /// The rows.
        frame: DataFrame,
        /// `charts/<name>.svg`.
        chart: Option<String>,
    },
    /// The output lacks a table the query needs.
    Skipped(String),
    /// The query failed (the report still gets written).
    Failed(String),
}

/// Write the report of `args.data` into `args.out`.
///
/// # Errors
/// When the outputs cannot be read or the report directory cannot be written.
pub fn report(args: &ReportArgs, runtime: &tokio::runtime::Runtime, progress: &indicatif::MultiProgress) -> anyhow::Result<()> {
    let options = StoreOptions::default();
    let catalog = runtime.block_on(Catalog::open(&args.data, &options))?;
    let charts = args.out.join("charts");
    std::fs::create_dir_all(&charts).with_context(|| format!("cannot create {}", charts.display()))?;
    let queries = ready_queries();
    let bar = clipline_pipeline::runtime::stage_bar(progress, "report", "queries");
    bar.set_length(queries.len() as u64);
    let mut session = Session::new(catalog)?;
    let mut sections = Vec::new();
    for query in queries {
        let outcome = section(&mut session, &query, &charts);
        if let Outcome::Failed(why) = &outcome {
            tracing::warn!(query = query.name, "{why}");
        }
        sections.push(Section { query, outcome });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let sheet = contact_sheet::build(&mut session, args.samples, &args.out.join("frames"), runtime)?;
    let html = page::render(session.catalog().outputs(), &sections, &sheet);
    write_atomically(&args.out.join("index.html"), |f| Ok(f.write_all(html.as_bytes())?))?;
    println!("report: {} ({} sections, {} clips on the contact sheet)", args.out.join("index.html").display(), sections.len(), sheet.len());
    Ok(())
}

/// Run one query and draw its chart.
fn section(session: &mut Session, query: &ReadyQuery, charts: &Path) -> Outcome {
    if let Some(missing) = query.tables.iter().find(|t| !session.catalog().has(t)) {
        return Outcome::Skipped(format!("this output has no {missing} table"));
    }
    let frame = match session.run(query.sql, &format!("ready query {}", query.name)) {
        Ok(frame) => frame,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let chart = match &query.chart {
        Some(spec) if frame.height() > 0 => match draw(&frame, spec, query, charts) {
            Ok(file) => Some(file),
            Err(e) => return Outcome::Failed(format!("chart: {e}")),
        },
        _ => None,
    };
    Outcome::Result { frame, chart }
}

/// Draw a query's chart into `charts/<name>.svg`; returns its path relative to the report.
fn draw(frame: &DataFrame, spec: &Chart, query: &ReadyQuery, charts: &Path) -> anyhow::Result<String> {
    let labels = strings(frame, &spec.label)?;
    let series = match &spec.series {
        Some(column) => strings(frame, column)?,
        None => vec![spec.value.clone(); frame.height()],
    };
    let value_column = frame.column(&spec.value)?;
    let values: Vec<f64> = (0..frame.height()).map(|i| value_column.get(i).ok().and_then(|v| v.extract::<f64>()).unwrap_or(0.0)).collect();
    let bars = Bars::from_rows(labels.into_iter().zip(series).zip(values).map(|((l, s), v)| (l, s, v)));
    let svg = bar_chart_svg(&bars, query.name, &spec.label, &spec.value).map_err(|e| anyhow::anyhow!(e))?;
    let file = format!("{}.svg", query.name);
    write_atomically(&charts.join(&file), |f| Ok(f.write_all(svg.as_bytes())?))?;
    Ok(format!("charts/{file}"))
}

/// A column's values as text.
pub(crate) fn strings(frame: &DataFrame, column: &str) -> anyhow::Result<Vec<String>> {
    let column = frame.column(column)?;
    Ok((0..frame.height()).map(|i| display_value(&column.get(i).unwrap_or(AnyValue::Null))).collect())
}
