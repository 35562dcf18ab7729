//! Query results as a terminal table, CSV, JSON or Parquet.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use polars::prelude::*;

use crate::SqlError;

/// How a result is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal; long results are cut after `max_rows` rows.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// A zstd-compressed Parquet file.
    Parquet,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!("unknown output format {other:?}; use table, csv, json or parquet")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
        })
    }
}

/// Longest cell shown by the table format, in characters.
const MAX_CELL: usize = 60;

/// Write `df` in `format` to `out`; `to` names the destination in errors, `max_rows` limits
/// the table format.
///
/// # Errors
/// When the destination cannot be written or polars cannot encode a column.
pub fn write(df: &mut DataFrame, format: Format, out: &mut dyn Write, to: &str, max_rows: usize) -> Result<(), SqlError> {
    let written = match format {
        Format::Table => return write_table(df, out, max_rows).map_err(|source| SqlError::Write { to: to.to_string(), source }),
        Format::Csv => CsvWriter::new(&mut *out).include_header(true).finish(df),
        Format::Json => JsonWriter::new(&mut *out).with_json_format(JsonFormat::Json).finish(df),
        Format::Parquet => ParquetWriter::new(&mut *out).with_compression(ParquetCompression::Zstd(None)).finish(df).map(|_| ()),
    };
    written.map_err(|e| SqlError::polars(format!("writing {format} to {to}"), e))?;
    out.flush().map_err(|source| SqlError::Write { to: to.to_string(), source })
}

/// Aligned columns with a header rule, numbers right-aligned.
fn write_table(df: &DataFrame, out: &mut dyn Write, max_rows: usize) -> std::io::Result<()> {
    let shown = df.height().min(max_rows);
    let columns = df.columns();
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(columns.len());
    for column in columns {
        let mut col = vec![column.name().to_string()];
        for i in 0..shown {
            col.push(cut(display_value(&column.get(i).unwrap_or(AnyValue::Null))));
        }
        cells.push(col);
    }
    let widths: Vec<usize> = cells.iter().map(|c| c.iter().map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let numeric: Vec<bool> = columns.iter().map(|c| c.dtype().is_primitive_numeric()).collect();
    for row in 0..=shown {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((c, &w), &num)| if num && row > 0 { format!("{:>w$}", c[row]) } else { format!("{:<w$}", c[row]) })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
        if row == 0 {
            writeln!(out, "{}", widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>().join("  "))?;
        }
    }
    let rows = df.height();
    let summary = match rows {
        _ if rows > shown => format!("({rows} rows, first {shown} shown; --output csv prints all)"),
        1 => "(1 row)".to_string(),
        _ => format!("({rows} rows)"),
    };
    writeln!(out, "{summary}")
}

/// One value as a person reads it (the table format, the report): no quotes around text,
/// floats to 4 decimals.
pub fn display_value(value: &AnyValue) -> String {
    match value {
        AnyValue::Null => String::new(),
        AnyValue::Float64(v) => float(*v),
        AnyValue::Float32(v) => float(f64::from(*v)),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Text cut to [`MAX_CELL`] characters.
fn cut(text: String) -> String {
    if text.chars().count() > MAX_CELL {
        format!("{}…", text.chars().take(MAX_CELL - 1).collect::<String>())
    } else {
        text
    }
}

fn float(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.1}")
    } else if v.abs() >= 1e-3 {
        format!("{v:.4}").trim_end_matches('0').to_string()
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!("source" => ["a.mp4", "b.mp4"], "clips" => [3i64, 12], "hours" => [0.25f64, 1.0]).unwrap()
    }

    fn render(format: Format, max_rows: usize) -> String {
        let mut out = Vec::new();
        write(&mut frame(), format, &mut out, "test", max_rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_has_a_header_and_every_row() {
        assert_eq!(render(Format::Csv, 1), "source,clips,hours\na.mp4,3,0.25\nb.mp4,12,1.0\n");
    }

    #[test]
    fn json_is_an_array_of_row_objects() {
        let rows: serde_json::Value = serde_json::from_str(&render(Format::Json, 1)).unwrap();
        assert_eq!(rows[1]["clips"], 12);
        assert_eq!(rows[0]["source"], "a.mp4");
    }

    #[test]
    fn the_table_aligns_numbers_and_says_when_rows_are_cut() {
        let text = render(Format::Table, 1);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "source  clips  hours");
        assert_eq!(lines[2], "a.mp4       3   0.25");
        assert_eq!(lines[3], "(2 rows, first 1 shown; --output csv prints all)");
    }

    #[test]
    fn parquet_round_trips() {
        let mut out = Vec::new();
        write(&mut frame(), Format::Parquet, &mut out, "test", 0).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(out)).finish().unwrap();
        assert!(back.equals(&frame()));
    }

    #[test]
    fn an_unknown_format_is_refused_with_the_choices() {
        assert!("xml".parse::<Format>().unwrap_err().contains("table, csv, json or parquet"));
    }
}
