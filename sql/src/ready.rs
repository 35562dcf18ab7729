//! The ready queries of `sql/queries/`, built into the binary so that `clipline sql NAME` and
//! the report work without the repository.
//!
//! Each file starts with a header the report and `clipline sql --list` read:
//! `-- Question:` (what it answers), `-- Tables:` (what it needs, so that a query over a table an
//! output lacks is skipped rather than failed) and optionally
//! `-- Chart: bar label=COL value=COL [series=COL]` (how the report draws it).

/// How the report draws a query's result: one bar per `label`, of height `value`, stacked by
/// `series` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// Column of the bar labels.
    pub label: String,
    /// Column of the bar heights.
    pub value: String,
    /// Column whose values stack within a bar.
    pub series: Option<String>,
}

/// One ready query.
#[derive(Debug, Clone)]
pub struct ReadyQuery {
    /// File stem, e.g. `clips_per_source`.
    pub name: &'static str,
    /// The SQL text, header included.
    pub sql: &'static str,
    /// The question it answers.
    pub question: String,
    /// Tables it reads.
    pub tables: Vec<String>,
    /// How to draw it, if it is drawn.
    pub chart: Option<Chart>,
}

macro_rules! queries {
    ($($name:literal),* $(,)?) => {
        /// (name, SQL) of every file in `sql/queries/`, in the report's order.
        const FILES: &[(&str, &str)] = &[$(($name, include_str!(concat!("../queries/", $name, ".sql")))),*];
    };
}

queries![
    "overview",
    "clips_per_source",
    "duration_histogram",
    "resolution_histogram",
    "fps_histogram",
    "aspect_histogram",
    "motion_histogram",
    "brightness_histogram",
    "sharpness_histogram",
    "filter_reasons",
    "text_area_histogram",
    "caption_lengths",
    "caption_flags",
    "bucket_coverage",
    "shard_sizes",
    "failed_inputs",
    "runs",
];

/// Every ready query, in the report's order.
pub fn ready_queries() -> Vec<ReadyQuery> {
    FILES.iter().map(|&(name, sql)| parse(name, sql)).collect()
}

/// The ready query called `name`, if there is one.
pub fn ready_query(name: &str) -> Option<ReadyQuery> {
    ready_queries().into_iter().find(|q| q.name == name)
}

fn parse(name: &'static str, sql: &'static str) -> ReadyQuery {
    let header = |key: &str| sql.lines().take_while(|l| l.starts_with("--")).find_map(|l| l.strip_prefix(key)).map(str::trim);
    let question = header("-- Question:").unwrap_or_default().to_string();
    let tables = header("-- Tables:").unwrap_or_default().split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    let chart = header("-- Chart: bar").map(|spec| {
        let field = |key: &str| spec.split_whitespace().find_map(|kv| kv.strip_prefix(key)).map(str::to_string);
        Chart { label: field("label=").unwrap_or_default(), value: field("value=").unwrap_or_default(), series: field("series=") }
    });
    ReadyQuery { name, sql, question, tables, chart }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TABLES;

    #[test]
    fn every_file_in_the_directory_is_built_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".sql").map(str::to_string))
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        built_in.sort();
        assert_eq!(on_disk, built_in, "list every file of sql/queries/ in ready.rs");
    }

    #[test]
    fn every_query_says_its_question_and_known_tables() {
        for q in ready_queries() {
            assert!(q.question.contains('?'), "{}: header `-- Question:` missing or not a question", q.name);
            assert!(!q.tables.is_empty(), "{}: header `-- Tables:` missing", q.name);
            for t in &q.tables {
                assert!(TABLES.contains(&t.as_str()), "{}: unknown table {t}", q.name);
            }
            if let Some(chart) = &q.chart {
                assert!(q.sql.contains(&chart.label) && q.sql.contains(&chart.value), "{}: chart columns not in the query", q.name);
            }
        }
    }

    #[test]
    fn chart_headers_are_parsed() {
        let q = ready_query("motion_histogram").unwrap();
        assert_eq!(q.chart, Some(Chart { label: "motion".into(), value: "clips".into(), series: Some("status".into()) }));
        assert_eq!(q.tables, ["clips"]);
    }
}
