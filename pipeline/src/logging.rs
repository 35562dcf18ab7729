//! Structured logs through `tracing`, written to stderr without tearing the progress bars, as
//! human-readable lines or JSON (`--log-format json`) for log collectors; and the one-line form
//! of a fatal error.

use std::io::Write;

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

struct BarSafeWriter(MultiProgress);

impl Write for BarSafeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Install the global subscriber; `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat, progress: &MultiProgress) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let progress = progress.clone();
    let writer = move || BarSafeWriter(progress.clone());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A fatal error and its causes on one line, each part said once: object_store nests each
/// layer's text inside the next (a failed S3 call repeats its request line at every layer), so
/// the plain chain says the same thing four times before the root cause.
pub fn error_line(error: &anyhow::Error) -> String {
    let full = format!("{error:#}");
    let mut kept: Vec<&str> = Vec::new();
    for part in full.split(": ") {
        if !kept.contains(&part) {
            kept.push(part);
        }
    }
    kept.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_storage_error_says_each_part_once() {
        let request = "Error performing GET http://h/b in 1s, after 5 retries - HTTP error";
        let root = anyhow::anyhow!("tcp connect error: Connection refused (os error 111)");
        let error = root.context(format!("{request}: tcp connect error")).context(format!("Generic S3 error: {request}")).context("storage error at s3://b/out");
        assert_eq!(error_line(&error), format!("storage error at s3://b/out: Generic S3 error: {request}: tcp connect error: Connection refused (os error 111)"));
    }
}
