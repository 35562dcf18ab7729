//! `clipline commit`: publish the chunks of every partition of a plan at once.
//!
//! Partitions stage their chunk markers in their own directories, out of readers' sight. Commit
//! checks that every chunk the plan expects is staged (or already published), writes one batch
//! marker naming them all (a single put: readers see every partition or none), then removes the
//! staging directories and whatever no marker names. Run again after a crash at any point, it
//! finishes the job: chunks already published are not published twice.

use std::collections::HashSet;
use std::fmt;

use anyhow::Context;
use bytes::Bytes;
use clipline_core::ids::hash_parts;
use clipline_core::manifest::commits::{markers, markers_in, Marker, MarkerBatch, BATCH_FORMAT, COMMITS};
use clipline_core::manifest::VideoStatus;
use clipline_core::storage::Store;
use indicatif::MultiProgress;

use crate::commit::{remove_unreferenced, Counts};
use crate::partition::{newest_lease, Partition, PartitionStatus, WorkerEnd, PARTITIONS_DIR};
use crate::plan_cmd::{chunk_keys, read_plan};
use crate::runtime::stage_bar;

/// One partition's state, as commit found it.
#[derive(Debug)]
pub struct PartitionReport {
    /// Which.
    pub partition: Partition,
    /// Chunks the plan gives it.
    pub chunks: usize,
    /// Of those, staged or already published.
    pub chunks_done: usize,
    /// Its last worker's status record.
    pub status: Option<PartitionStatus>,
    /// The holder and heartbeat age (seconds) of a lease still held.
    pub lease: Option<(String, u64)>,
}

impl PartitionReport {
    fn finished(&self) -> bool {
        self.chunks_done == self.chunks
    }
}

impl fmt::Display for PartitionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.status, &self.lease) {
            (_, Some((holder, age))) => format!("running on {holder} (heartbeat {age} s ago)"),
            (Some(s), None) if s.status == WorkerEnd::Failed => format!("failed on {}: {}", s.host, s.error.as_deref().unwrap_or("no error recorded")),
            (Some(s), None) => format!("{} on {}", s.status, s.host),
            (None, None) if self.chunks_done == 0 => "missing: no worker has run it".to_string(),
            (None, None) => "missing: a worker stopped without a status (killed?)".to_string(),
        };
        write!(f, "partition {}: {state}; {} of {} chunks done", self.partition, self.chunks_done, self.chunks)
    }
}

/// What `clipline commit` did.
#[derive(Debug)]
pub struct CommitReport {
    /// Output root.
    pub output: String,
    /// Every partition.
    pub partitions: Vec<PartitionReport>,
    /// Chunks published by this call.
    pub published: usize,
    /// Chunks already published before.
    pub already: usize,
    /// Sources published by this call, by status.
    pub videos: Counts<VideoStatus>,
    /// Staged markers and records removed after publishing.
    pub staging_removed: usize,
    /// Parts and shards removed that no marker names (left by killed workers).
    pub leftovers_removed: usize,
    /// Inputs processed in full although an input of another partition has the same bytes:
    /// (input, the earlier copy).
    pub unsettled_copies: Vec<(String, String)>,
}

impl CommitReport {
    /// Partitions not finished.
    pub fn unfinished(&self) -> Vec<&PartitionReport> {
        self.partitions.iter().filter(|p| !p.finished()).collect()
    }
}

impl fmt::Display for CommitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unfinished = self.unfinished();
        if !unfinished.is_empty() {
            writeln!(f, "clipline commit refused: {} of {} partitions are not finished; nothing was published", unfinished.len(), self.partitions.len())?;
            for p in unfinished {
                writeln!(f, "  {p}")?;
            }
            return write!(f, "run the partitions named (the same command; each resumes), then clipline commit --output {} again", self.output);
        }
        let videos: Vec<String> = self.videos.iter().map(|(status, n)| format!("{n} {status}")).collect();
        writeln!(f, "clipline commit: {} partitions finished; {} chunks published now, {} earlier", self.partitions.len(), self.published, self.already)?;
        if !videos.is_empty() {
            writeln!(f, "  videos: {}", videos.join(", "))?;
        }
        for (input, first) in &self.unsettled_copies {
            writeln!(f, "  warning: {input} has the same bytes as {first} but ran in another partition (its size was unknown or common at plan time); both were kept")?;
        }
        for p in self.partitions.iter().filter(|p| p.status.as_ref().is_some_and(|s| s.status == WorkerEnd::CompletedWithFailures)) {
            writeln!(f, "  {p} (failed inputs are rows of the videos table)")?;
        }
        write!(f, "  {} staging files and {} leftovers of killed workers removed; manifests: {}/manifests", self.staging_removed, self.leftovers_removed, self.output)
    }
}

/// Publish the partitions of `output`'s plan.
///
/// # Errors
/// When there is no plan, storage fails, or staged markers are of other settings.
pub async fn commit(output: &str, progress: &MultiProgress) -> anyhow::Result<CommitReport> {
    let store = Store::open(output).with_context(|| format!("cannot open output {output}"))?;
    let (info, rows) = read_plan(&store).await?;
    let keys_of = chunk_keys(&info, &rows);
    let published_markers = markers(&store).await?;
    let published: HashSet<String> = published_markers.iter().map(|m| m.chunk.clone()).collect();
    let mut staged: Vec<Marker> = Vec::new();
    let mut partitions = Vec::new();
    let bar = stage_bar(progress, "commit", "partitions");
    bar.set_length(u64::from(info.partitions));
    for (index, keys) in keys_of.into_iter().enumerate() {
        bar.inc(1);
        let partition = Partition { index: index as u32, count: info.partitions };
        let mut own: Vec<Marker> = markers_in(&store, &partition.commits_dir()).await?.into_iter().filter(|m| keys.contains(&m.chunk)).collect();
        if let Some(other) = own.iter().find(|m| m.settings_hash != info.settings_hash) {
            anyhow::bail!("partition {partition} staged chunk {} with settings {}, but the plan's are {}", other.chunk, other.settings_hash, info.settings_hash);
        }
        let done: HashSet<&String> = own.iter().map(|m| &m.chunk).chain(keys.iter().filter(|k| published.contains(*k))).collect();
        let lease = match newest_lease(&store, partition).await? {
            Some((_, Some(record))) => Some((record.holder.clone(), record.age_ms() / 1000)),
            _ => None,
        };
        partitions.push(PartitionReport { partition, chunks: keys.len(), chunks_done: done.len(), status: PartitionStatus::read(&store, partition).await?, lease });
        own.retain(|m| !published.contains(&m.chunk));
        staged.extend(own);
    }
    bar.finish_and_clear();
    let mut report = CommitReport {
        output: store.uri().to_string(),
        partitions,
        published: 0,
        already: published.len(),
        videos: Counts::default(),
        staging_removed: 0,
        leftovers_removed: 0,
        unsettled_copies: Vec::new(),
    };
    if !report.unfinished().is_empty() {
        return Ok(report);
    }
    let referenced: HashSet<String> = published_markers.iter().chain(&staged).flat_map(Marker::files).cloned().collect();
    if !staged.is_empty() {
        staged.sort_by(|a, b| a.chunk.cmp(&b.chunk));
        report.unsettled_copies = copies_across_partitions(&published_markers, &staged);
        for source in staged.iter().flat_map(|m| &m.sources) {
            report.videos.add(source.status);
        }
        let batch_key = format!("{COMMITS}/batch-{}.json", hash_parts(staged.iter().map(|m| m.chunk.as_str())));
        let batch = MarkerBatch { format: BATCH_FORMAT, chunks: staged };
        report.published = batch.chunks.len();
        store.put(&batch_key, Bytes::from(serde_json::to_vec(&batch)?)).await?;
        tracing::info!(chunks = report.published, marker = %store.uri_of(&batch_key), "published every partition");
    }
    (report.staging_removed, report.leftovers_removed) = clean_up(&store, &referenced).await?;
    Ok(report)
}

/// Remove the partitions' staging directories, then every part and shard that no published
/// marker (`referenced`: their files) names; returns how many of each.
async fn clean_up(store: &Store, referenced: &HashSet<String>) -> anyhow::Result<(usize, usize)> {
    let staging = store.list(PARTITIONS_DIR).await?;
    for entry in &staging {
        store.delete(&entry.key).await?;
    }
    store.remove_empty_dirs(PARTITIONS_DIR);
    Ok((staging.len(), remove_unreferenced(store, referenced, None).await?))
}

/// Inputs kept in full whose bytes an earlier input (in input order) of another chunk also has:
/// copies that met in different partitions, which a single run would have settled.
fn copies_across_partitions(published: &[Marker], staged: &[Marker]) -> Vec<(String, String)> {
    let mut kept: Vec<(&str, &str)> = published
        .iter()
        .chain(staged)
        .flat_map(|m| &m.sources)
        .filter(|s| s.status != VideoStatus::Duplicate)
        .filter_map(|s| Some((s.uri.as_str(), s.video_id.as_deref()?)))
        .collect();
    kept.sort();
    let mut first_of: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut copies = Vec::new();
    for (uri, id) in kept {
        match first_of.get(id) {
            Some(first) => copies.push((uri.to_string(), first.to_string())),
            None => {
                first_of.insert(id, uri);
            }
        }
    }
    copies
}

#[cfg(test)]
mod tests {
    use clipline_core::manifest::commits::MarkedSource;

    use super::*;

    fn marker(chunk: &str, sources: &[(&str, &str, &str)]) -> Marker {
        let sources = sources.iter().map(|(uri, id, status)| MarkedSource { uri: uri.to_string(), video_id: Some(id.to_string()), status: status.parse().unwrap() }).collect();
        Marker { format: 1, chunk: chunk.into(), settings_hash: "s".into(), sources, parts: Default::default(), shards: vec![] }
    }

    #[test]
    fn copies_kept_in_two_partitions_are_reported_against_the_first_in_input_order() {
        let published = [marker("a", &[("file:///b.mp4", "x", "ok"), ("file:///c.mp4", "y", "ok")])];
        let staged = [marker("b", &[("file:///a.mp4", "x", "ok"), ("file:///d.mp4", "y", "duplicate"), ("file:///e.mp4", "z", "ok")])];
        assert_eq!(copies_across_partitions(&published, &staged), vec![("file:///b.mp4".to_string(), "file:///a.mp4".to_string())]);
    }
}
