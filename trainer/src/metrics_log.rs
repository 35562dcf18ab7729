//! `metrics.jsonl`: one JSON object per logged step, for plots and the analysts' tools. A
//! resumed run first drops the lines past its checkpoint, so the file holds one curve.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The metrics file of a run directory.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Open `run_dir/metrics.jsonl`, keeping only the lines of steps up to `resumed_at`.
    ///
    /// # Errors
    /// When the file cannot be read or written.
    pub fn open(run_dir: &Path, resumed_at: u64) -> std::io::Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        let kept: Vec<String> = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter(|line| serde_json::from_str::<serde_json::Value>(line).ok().and_then(|v| v.get("step")?.as_u64()).is_some_and(|s| s <= resumed_at))
                .map(str::to_string)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut file = std::fs::File::create(&path)?;
        for line in kept {
            writeln!(file, "{line}")?;
        }
        Ok(Self { path, file })
    }

    /// Append one line.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn write(&mut self, line: &serde_json::Value) -> std::io::Result<()> {
        writeln!(self.file, "{line}")?;
        self.file.flush()
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
