//! `clipline plan`: list the inputs once, cut them into the commit chunks a single run would
//! make, and deal whole chunks to N partitions balanced by bytes.
//!
//! Chunks holding inputs of equal size go to the same partition: equal bytes mean equal size, so
//! two copies of a video always meet in one worker, which settles the duplicate exactly as a
//! single run does (the first in input order keeps its clips). A size shared by more than
//! `MAX_SAME_SIZE` inputs is not a sign of copies but of a fixed-size format, and joining them
//! would pile them into one partition; those (and inputs of unknown size) are dealt freely, and
//! `clipline commit` reports any copies that then met in different partitions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use anyhow::Context;
use bytes::Bytes;
use clipline_core::ids::hash_bytes;
use clipline_core::manifest::encode;
use clipline_core::manifest::plan::{PlanInfo, WorkRow, PLAN_INFO, WORK_LIST};
use clipline_core::storage::Store;
use futures::StreamExt;
use indicatif::MultiProgress;

use crate::commit::chunk_key;
use crate::config::Config;
use crate::partition::PARTITIONS_DIR;
use crate::runtime::stage_bar;
use crate::job::{discover_inputs, open_output};
use crate::sources::{redact, Fetcher};

/// Inputs whose size is asked for at once (HTTP HEADs).
const SIZE_CONCURRENCY: usize = 16;

/// Inputs of one size beyond which equal size no longer groups chunks.
const MAX_SAME_SIZE: usize = 16;

/// Partitions listed one by one in the summary.
const LISTED_PARTITIONS: usize = 16;

/// What `clipline plan` made.
#[derive(Debug)]
pub struct PlanSummary {
    /// The plan.
    pub info: PlanInfo,
    /// Output root.
    pub output: String,
    /// Chunks.
    pub chunks: u64,
    /// Inputs and bytes per partition.
    pub per_partition: Vec<(u64, u64)>,
    /// Inputs whose size could not be known (balanced as if of median size).
    pub unknown_sizes: u64,
    /// False when the same plan was already there.
    pub written: bool,
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let i = &self.info;
        let state = if self.written { "written" } else { "unchanged (the same plan was already there)" };
        writeln!(f, "clipline plan {state}: {} inputs ({:.1} MiB) in {} chunks of up to {}, over {} partitions", i.inputs, mib(i.bytes), self.chunks, i.commit_every, i.partitions)?;
        for (p, (inputs, bytes)) in self.per_partition.iter().enumerate().take(LISTED_PARTITIONS) {
            writeln!(f, "  partition {p}/{}: {inputs} inputs, {:.1} MiB", i.partitions, mib(*bytes))?;
        }
        if self.per_partition.len() > LISTED_PARTITIONS {
            writeln!(f, "  ... and {} more partitions", self.per_partition.len() - LISTED_PARTITIONS)?;
        }
        let most = self.per_partition.iter().map(|p| p.1).max().unwrap_or(0);
        let mean = i.bytes as f64 / f64::from(i.partitions.max(1));
        writeln!(f, "  largest partition / mean: {:.2} (by bytes)", most as f64 / mean.max(1.0))?;
        if self.unknown_sizes > 0 {
            writeln!(f, "  {} inputs of unknown size were counted at the median size", self.unknown_sizes)?;
        }
        writeln!(f, "  work list: {}/{WORK_LIST}", self.output)?;
        write!(f, "next: clipline run CONFIG --output {} --partition i/{} for each i (or a Slurm array / Kubernetes Indexed Job), then clipline commit --output {}", self.output, i.partitions, self.output)
    }
}

/// Plan `config`'s inputs into `partitions` partitions under its output.
///
/// # Errors
/// When inputs or output are missing, inputs cannot be listed, or the output already holds
/// another plan with partitions in progress.
pub async fn plan(config: &Config, partitions: u32, progress: &MultiProgress) -> anyhow::Result<PlanSummary> {
    anyhow::ensure!(partitions > 0, "--partitions must be at least 1");
    let store = open_output(config)?;
    let sources = discover_inputs(config).await?;
    anyhow::ensure!(!sources.is_empty(), "the inputs {:?} name no videos", config.run.inputs);
    let fetcher = Fetcher::new(config.sources.clone(), std::env::temp_dir())?;
    let bar = stage_bar(progress, "sizes", "inputs");
    bar.set_length(sources.len() as u64);
    let sizes: Vec<Option<u64>> =
        futures::stream::iter(&sources).map(|s| fetcher.size_of(s)).buffered(SIZE_CONCURRENCY).inspect(|_| bar.inc(1)).collect().await;
    bar.finish_and_clear();

    let commit_every = config.run.commit_every.max(1);
    let chunks = sources.len().div_ceil(commit_every);
    let chunk_of = |input: usize| input / commit_every;
    let weights = chunk_weights(&sizes, chunks, chunk_of);
    let groups = chunks_sharing_a_size(&sizes, chunks, chunk_of);
    let partition_of_chunk = deal(&groups, &weights, partitions as usize);

    let rows: Vec<WorkRow> = sources
        .iter()
        .zip(&sizes)
        .enumerate()
        .map(|(i, (source, size))| WorkRow {
            uri: source.locator(),
            size_bytes: size.map(|s| s as i64),
            chunk: chunk_of(i) as i64,
            partition: partition_of_chunk[chunk_of(i)] as i64,
        })
        .collect();
    let mut per_partition = vec![(0u64, 0u64); partitions as usize];
    for row in &rows {
        let p = &mut per_partition[row.partition as usize];
        p.0 += 1;
        p.1 += row.size_bytes.unwrap_or(0) as u64;
    }
    let work_list = encode(&rows)?;
    let info = PlanInfo {
        partitions,
        commit_every: commit_every as u32,
        settings_hash: config.settings_hash(),
        inputs: rows.len() as u64,
        bytes: sizes.iter().flatten().sum(),
        work_list_hash: hash_bytes(&work_list),
    };
    let written = write_plan(&store, &info, work_list).await?;
    let unknown_sizes = sizes.iter().filter(|s| s.is_none()).count() as u64;
    Ok(PlanSummary { info, output: store.uri().to_string(), chunks: chunks as u64, per_partition, unknown_sizes, written })
}

/// The plan stored in an output.
///
/// # Errors
/// When there is none, or it is unreadable or half replaced.
pub async fn read_plan(store: &Store) -> anyhow::Result<(PlanInfo, Vec<WorkRow>)> {
    let info = store
        .get_opt(PLAN_INFO)
        .await?
        .with_context(|| format!("{} has no plan ({PLAN_INFO}): make one with clipline plan CONFIG --output {} --partitions N", store.uri(), store.uri()))?;
    let info: PlanInfo = serde_json::from_slice(&info).with_context(|| format!("unreadable plan {}", store.uri_of(PLAN_INFO)))?;
    let work_list = store.get(WORK_LIST).await?;
    anyhow::ensure!(
        hash_bytes(&work_list) == info.work_list_hash,
        "{} does not match {} (a plan was replaced half-way): run clipline plan again",
        store.uri_of(WORK_LIST),
        store.uri_of(PLAN_INFO)
    );
    let rows = clipline_core::manifest::decode::<WorkRow>(work_list, &store.uri_of(WORK_LIST))?;
    Ok((info, rows))
}

/// The chunk keys of each partition of a plan: the keys its chunks' markers and parts carry,
/// computed from the URIs the manifests record (credentials masked), as the committer does.
pub fn chunk_keys(info: &PlanInfo, rows: &[WorkRow]) -> Vec<HashSet<String>> {
    let mut uris_of: Vec<BTreeMap<i64, Vec<String>>> = vec![BTreeMap::new(); info.partitions as usize];
    for row in rows {
        uris_of[row.partition as usize].entry(row.chunk).or_default().push(redact(&row.uri));
    }
    uris_of.iter().map(|chunks| chunks.values().map(|uris| chunk_key(&info.settings_hash, uris.iter().map(String::as_str))).collect()).collect()
}

async fn write_plan(store: &Store, info: &PlanInfo, work_list: Bytes) -> anyhow::Result<bool> {
    if let Some(existing) = store.get_opt(PLAN_INFO).await? {
        if serde_json::from_slice::<PlanInfo>(&existing).is_ok_and(|e| e == *info) {
            return Ok(false);
        }
        let in_progress = store.list(PARTITIONS_DIR).await?;
        anyhow::ensure!(
            in_progress.is_empty(),
            "{} holds another plan whose partitions have started ({} files under {}): publish them with clipline commit --output {} (or delete that directory) before planning again",
            store.uri(),
            in_progress.len(),
            store.uri_of(PARTITIONS_DIR),
            store.uri()
        );
    }
    store.put(WORK_LIST, work_list).await?;
    store.put(PLAN_INFO, Bytes::from(serde_json::to_vec_pretty(info)?)).await?;
    Ok(true)
}

/// Bytes per chunk; an input of unknown size weighs the median known size.
fn chunk_weights(sizes: &[Option<u64>], chunks: usize, chunk_of: impl Fn(usize) -> usize) -> Vec<u64> {
    let mut known: Vec<u64> = sizes.iter().flatten().copied().collect();
    known.sort_unstable();
    let median = known.get(known.len() / 2).copied().unwrap_or(1).max(1);
    let mut weights = vec![0u64; chunks];
    for (i, size) in sizes.iter().enumerate() {
        weights[chunk_of(i)] += size.unwrap_or(median).max(1);
    }
    weights
}

/// Chunks joined into groups that must share a partition: those holding inputs of equal size
/// (not empty, and not a size more than [`MAX_SAME_SIZE`] inputs have).
fn chunks_sharing_a_size(sizes: &[Option<u64>], chunks: usize, chunk_of: impl Fn(usize) -> usize) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..chunks).collect();
    fn root(parent: &mut [usize], mut c: usize) -> usize {
        while parent[c] != c {
            parent[c] = parent[parent[c]];
            c = parent[c];
        }
        c
    }
    let mut inputs_of_size: HashMap<u64, usize> = HashMap::new();
    for size in sizes.iter().flatten() {
        *inputs_of_size.entry(*size).or_default() += 1;
    }
    let mut first_chunk_of_size: HashMap<u64, usize> = HashMap::new();
    for (i, size) in sizes.iter().enumerate() {
        let Some(size) = size.filter(|s| *s > 0 && inputs_of_size[s] <= MAX_SAME_SIZE) else { continue };
        let chunk = chunk_of(i);
        let other = *first_chunk_of_size.entry(size).or_insert(chunk);
        let (a, b) = (root(&mut parent, chunk), root(&mut parent, other));
        parent[a.max(b)] = a.min(b);
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for chunk in 0..chunks {
        let r = root(&mut parent, chunk);
        groups.entry(r).or_default().push(chunk);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort();
    groups
}

/// Deal groups of chunks to partitions, heaviest first to the lightest partition (ties to the
/// lowest index), so the result depends on the inputs only.
fn deal(groups: &[Vec<usize>], weights: &[u64], partitions: usize) -> Vec<usize> {
    let weight = |g: &Vec<usize>| g.iter().map(|&c| weights[c]).sum::<u64>();
    let mut order: Vec<&Vec<usize>> = groups.iter().collect();
    order.sort_by(|a, b| weight(b).cmp(&weight(a)).then_with(|| a[0].cmp(&b[0])));
    let mut load = vec![0u64; partitions];
    let mut partition_of = vec![0usize; weights.len()];
    for group in order {
        let lightest = (0..partitions).min_by_key(|&p| (load[p], p)).expect("at least one partition");
        load[lightest] += weight(group);
        for &chunk in group {
            partition_of[chunk] = lightest;
        }
    }
    partition_of
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_dealt_by_bytes_and_equal_sizes_stay_together() {
        // Six inputs, chunks of two: sizes 10+10, 5+1, 1+7. The two 10s share a chunk; 1 appears
        // in chunks 1 and 2, which must share a partition.
        let sizes = [Some(10), Some(10), Some(5), Some(1), Some(1), Some(7)];
        let chunk_of = |i: usize| i / 2;
        let weights = chunk_weights(&sizes, 3, chunk_of);
        assert_eq!(weights, vec![20, 6, 8]);
        let groups = chunks_sharing_a_size(&sizes, 3, chunk_of);
        assert_eq!(groups, vec![vec![0], vec![1, 2]]);
        assert_eq!(deal(&groups, &weights, 2), vec![0, 1, 1]);
        // More partitions than groups leaves some empty; every chunk is dealt once.
        assert_eq!(deal(&groups, &weights, 4), vec![0, 1, 1]);
    }

    #[test]
    fn a_size_common_to_many_inputs_does_not_pile_them_into_one_partition() {
        let sizes = vec![Some(1000); MAX_SAME_SIZE + 1];
        let groups = chunks_sharing_a_size(&sizes, sizes.len(), |i| i);
        assert_eq!(groups.len(), sizes.len());
        let two = [Some(0), Some(0), Some(5), Some(5)];
        assert_eq!(chunks_sharing_a_size(&two, 4, |i| i), vec![vec![0], vec![1], vec![2, 3]], "empty files are not copies");
    }

    #[test]
    fn unknown_sizes_weigh_the_median_and_join_no_group() {
        let sizes = [None, Some(4), None, Some(8), Some(6)];
        let weights = chunk_weights(&sizes, 5, |i| i);
        assert_eq!(weights, vec![6, 4, 6, 8, 6]);
        assert_eq!(chunks_sharing_a_size(&sizes, 5, |i| i).len(), 5);
        let dealt = deal(&chunks_sharing_a_size(&sizes, 5, |i| i), &weights, 2);
        let load = |p| (0..5).filter(|&c| dealt[c] == p).map(|c| weights[c]).sum::<u64>();
        assert_eq!((load(0), load(1)), (14, 16));
    }
}
