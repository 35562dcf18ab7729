//! The output verifier behind `clipline shards verify OUTPUT`: read every committed shard and
//! check every byte against the checksums, and every committed sample against where the
//! manifest says it is.

use std::collections::HashMap;
use std::fmt;

use clipline_core::manifest::commits::{markers, read_committed};
use clipline_core::manifest::{SampleRow, SampleStatus};
use clipline_core::storage::Store;
use crate::dataset::location;
use crate::{verify_shard, SHARDS_DIR};

/// What verification found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Output root.
    pub output: String,
    /// Shards read.
    pub shards: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Committed `ok` samples checked.
    pub samples: usize,
    /// Everything wrong, each naming the shard and sample.
    pub problems: Vec<String>,
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "BAD {problem}")?;
        }
        let verdict = if self.problems.is_empty() { "all good".to_string() } else { format!("{} problems", self.problems.len()) };
        write!(f, "shards verify {}: {} shards ({:.1} MiB), {} samples: {verdict}", self.output, self.shards, self.bytes as f64 / (1 << 20) as f64, self.samples)
    }
}

/// Verify the committed shards and samples of `store`; `progress(done, total)` is told after
/// each shard.
///
/// # Errors
/// When the manifests cannot be read (a shard that cannot be read is a problem, not an error).
pub async fn verify_output(store: &Store, mut progress: impl FnMut(usize, usize)) -> clipline_core::Result<Verification> {
    let mut v = Verification { output: store.uri().to_string(), ..Default::default() };
    let mut shard_keys: Vec<String> = markers(store).await?.into_iter().flat_map(|m| m.shards).collect();
    shard_keys.sort();
    let mut by_shard: HashMap<String, Vec<SampleRow>> = HashMap::new();
    for row in read_committed::<SampleRow>(store).await?.into_iter().filter(|r| r.status == SampleStatus::Ok) {
        match &row.shard {
            Some(shard) => by_shard.entry(shard.clone()).or_default().push(row),
            None => v.problems.push(format!("sample {}: an ok sample with no shard", row.sample_id)),
        }
    }
    let total = shard_keys.len();
    for (done, key) in shard_keys.into_iter().enumerate() {
        let name = key.rsplit('/').next().unwrap_or(&key).to_string();
        let rows = by_shard.remove(&name).unwrap_or_default();
        v.samples += rows.len();
        match store.get(&key).await {
            Ok(bytes) => {
                v.shards += 1;
                v.bytes += bytes.len() as u64;
                let problems = tokio::task::spawn_blocking(move || check_shard(&name, &bytes, &rows)).await.expect("verification does not panic");
                v.problems.extend(problems);
            }
            Err(e) => v.problems.push(format!("shard {name}: cannot be read ({e}); its {} samples are lost", rows.len())),
        }
        progress(done + 1, total);
    }
    let mut orphans: Vec<(String, usize)> = by_shard.into_iter().map(|(shard, rows)| (shard, rows.len())).collect();
    orphans.sort();
    for (shard, n) in orphans {
        v.problems.push(format!("shard {shard}: {n} committed samples point at it, but no commit names it under {SHARDS_DIR}/"));
    }
    Ok(v)
}

/// Problems of one shard: its own (structure, checksums) and its manifest rows' (a sample not
/// where the manifest says).
fn check_shard(name: &str, bytes: &[u8], rows: &[SampleRow]) -> Vec<String> {
    let report = verify_shard(name, bytes);
    let mut problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let found: HashMap<&str, _> = report.samples.iter().map(|p| (p.sample_id.as_str(), p)).collect();
    for row in rows {
        let problem = match (location(row), found.get(row.sample_id.as_str())) {
            (Err(e), _) => Some(e),
            (Ok(_), None) => Some("not found intact in the shard".to_string()),
            (Ok(loc), Some(p)) if (loc.offset, loc.length, loc.checksum, loc.raw_length) != (p.offset, u64::from(p.length), p.checksum, p.raw_length as usize) => {
                Some(format!("the manifest places it at {}+{}, the shard at {}+{}", loc.offset, loc.length, p.offset, p.length))
            }
            _ => None,
        };
        if let Some(problem) = problem {
            problems.push(format!("sample {} in shard {name}: {problem}", row.sample_id));
        }
    }
    problems
}
