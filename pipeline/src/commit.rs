//! Atomic, resumable manifest commits.
//!
//! Inputs are sorted, and results reach the committer in that order. Every `commit_every` videos
//! form a chunk whose key is a hash of the settings and the chunk's sources. A chunk is committed
//! by writing its shard files (`shards/<hash>.shard`, when it has samples), its Parquet parts
//! (`manifests/<table>/part-<key>.parquet`) and then its marker (`manifests/_commits/<key>.json`);
//! an object store replaces whole objects, so each file is either complete or absent.
//!
//! On start, the markers say which sources are done; parts and shards no marker names (a run
//! killed before its marker) are deleted, and their chunk is redone. Since outputs are
//! deterministic and chunking restarts from the first unfinished source, a killed and restarted
//! run ends with exactly the files of an uninterrupted one.
//!
//! The committer is also where duplicates are settled: the first source (in input order) with
//! given bytes keeps its rows, a later one becomes a `duplicate` row pointing at it.
//!
//! A partition of a planned run ([`Layout::Partition`]) writes the same chunks to the same keys,
//! but its markers go to the partition's own directory until `clipline commit` publishes them,
//! and it removes only leftovers of its own chunks: other partitions write beside it.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use clipline_core::ids::hash_parts;
use clipline_core::manifest::commits::{chunk_of_part, markers, markers_in, part_key, MarkedSource, Marker, COMMITS};
use clipline_core::manifest::{encode, CaptionStatus, ClipStatus, FailureKind, RunRow, SampleRow, SampleStatus, ShardRow, Table, VideoRow, VideoStatus, TABLES};
use clipline_core::storage::Store;
use clipline_shard::sink::ShardSink;
use clipline_shard::{shard_key, ShardError, SHARDS_DIR};

use crate::ingest::VideoResult;

/// Failed inputs kept for the run summary; a run over millions of inputs must not hold (or
/// print) every failure.
pub const LISTED_FAILURES: usize = 20;

/// Staged local writes older than this were left by a killed process (a live write takes far
/// less); younger ones may belong to another worker writing to the same output.
const STALE_STAGING_S: u64 = 600;

/// A commit-level failure; the run stops (everything committed so far stays).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// Storage or encoding failed.
    #[error(transparent)]
    Store(#[from] clipline_core::Error),
    /// A shard could not be written or uploaded.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// The output holds results of other settings.
    #[error(
        "{output} holds results made with settings {found}, but this run's settings are {ours}; \
         write to a new output, or restore the settings it was made with (see the `config` column of its runs table)"
    )]
    SettingsChanged {
        /// The output root.
        output: String,
        /// The settings hash found there.
        found: String,
        /// This run's.
        ours: String,
    },
}

/// Counts of what a run committed.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Videos by status.
    pub videos: Counts<VideoStatus>,
    /// Shots.
    pub shots: u64,
    /// Clips by status.
    pub clips: Counts<ClipStatus>,
    /// Captions by status.
    pub captions: Counts<CaptionStatus>,
    /// Samples by status.
    pub samples: Counts<SampleStatus>,
    /// Shard files written.
    pub shards: u64,
    /// Their bytes.
    pub shard_bytes: u64,
    /// Frames decoded.
    pub frames: u64,
    /// The first [`LISTED_FAILURES`] failed inputs: (uri, kind, message); the `videos` table
    /// has them all.
    pub failures: Vec<(String, Option<FailureKind>, String)>,
}

/// How many rows have each status.
#[derive(Debug, Clone)]
pub struct Counts<S>(BTreeMap<S, u64>);

impl<S> Default for Counts<S> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<S: Ord + Copy> Counts<S> {
    /// Count one more row of `status`.
    pub fn add(&mut self, status: S) {
        *self.0.entry(status).or_default() += 1;
    }

    /// Rows of `status`.
    pub fn of(&self, status: S) -> u64 {
        self.0.get(&status).copied().unwrap_or(0)
    }

    /// Rows of any status.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Whether no row was counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The statuses counted and their rows, in the statuses' order.
    pub fn iter(&self) -> impl Iterator<Item = (S, u64)> + '_ {
        self.0.iter().map(|(s, n)| (*s, *n))
    }
}

/// Where a run's markers go and which leftovers it may remove.
#[derive(Debug, Clone)]
pub enum Layout {
    /// A single run: markers in `manifests/_commits`; it owns every file of the output.
    Whole,
    /// A partition of a plan.
    Partition {
        /// Where its markers wait for `clipline commit`.
        markers_dir: String,
        /// The keys of its chunks: the only parts it may remove.
        chunk_keys: HashSet<String>,
    },
}

impl Layout {
    fn markers_dir(&self) -> &str {
        match self {
            Layout::Whole => COMMITS,
            Layout::Partition { markers_dir, .. } => markers_dir,
        }
    }

    /// A partition's chunk keys; `None` for a single run, which owns every chunk.
    fn chunk_keys(&self) -> Option<&HashSet<String>> {
        match self {
            Layout::Whole => None,
            Layout::Partition { chunk_keys, .. } => Some(chunk_keys),
        }
    }
}

/// The key of the chunk holding `sources` (in order), under given settings.
pub fn chunk_key<'a>(settings_hash: &'a str, sources: impl IntoIterator<Item = &'a str>) -> String {
    hash_parts(std::iter::once(settings_hash).chain(sources))
}

/// Commits results chunk by chunk, in input order.
pub struct Committer {
    store: Store,
    settings_hash: String,
    layout: Layout,
    pending: Vec<VideoResult>,
    pending_chunk: usize,
    shards: Option<ShardSink>,
    first_source_of: HashMap<String, String>,
    /// What this run committed.
    pub committed: Committed,
}

/// The committed state found in an output.
pub struct Resume {
    /// Sources already committed.
    pub done: HashSet<String>,
    /// Files deleted that killed runs left: parts without a marker, stale staged writes.
    pub orphans_removed: usize,
}

impl Committer {
    /// Read the markers of `store` (and of the partition, for a partition), check settings,
    /// delete orphaned parts and shards. Samples go into shards through `shards` (when the run
    /// makes samples).
    ///
    /// # Errors
    /// On storage failures, unreadable markers, or markers of other settings.
    pub async fn open(store: Store, settings_hash: String, layout: Layout, shards: Option<ShardSink>) -> Result<(Self, Resume), CommitError> {
        let mut done = HashSet::new();
        let mut first_source_of = HashMap::new();
        let mut referenced = HashSet::new();
        let mut found = markers(&store).await?;
        if let Layout::Partition { markers_dir, .. } = &layout {
            found.extend(markers_in(&store, markers_dir).await?);
        }
        for marker in found {
            if marker.settings_hash != settings_hash {
                return Err(CommitError::SettingsChanged { output: store.uri().into(), found: marker.settings_hash, ours: settings_hash });
            }
            referenced.extend(marker.files().cloned());
            for source in marker.sources {
                if let (Some(id), true) = (&source.video_id, source.status != VideoStatus::Duplicate) {
                    first_source_of.entry(id.clone()).or_insert_with(|| source.uri.clone());
                }
                done.insert(source.uri);
            }
        }
        let mut orphans_removed = store.clean_staging(std::time::Duration::from_secs(STALE_STAGING_S));
        orphans_removed += remove_unreferenced(&store, &referenced, layout.chunk_keys()).await?;
        let committer =
            Self { store, settings_hash, layout, pending: Vec::new(), pending_chunk: 0, shards, first_source_of, committed: Committed::default() };
        Ok((committer, Resume { done, orphans_removed }))
    }

    /// Add the next outcome (in input order) of chunk `chunk`; the pending chunk is committed
    /// when the chunk changes.
    ///
    /// # Errors
    /// When a commit fails.
    pub async fn add(&mut self, outcome: VideoResult, chunk: usize) -> Result<(), CommitError> {
        if !self.pending.is_empty() && chunk != self.pending_chunk {
            self.flush().await?;
        }
        self.pending_chunk = chunk;
        self.pending.push(outcome);
        Ok(())
    }

    /// Commit what is pending.
    ///
    /// # Errors
    /// When a commit fails.
    pub async fn flush(&mut self) -> Result<(), CommitError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut chunk = std::mem::take(&mut self.pending);
        for outcome in &mut chunk {
            self.settle_duplicate(outcome);
        }
        let key = chunk_key(&self.settings_hash, chunk.iter().map(|o| o.video.source_uri.as_str()));
        let sources = chunk
            .iter()
            .map(|o| MarkedSource { uri: o.video.source_uri.clone(), video_id: o.video.video_id.clone(), status: o.video.status })
            .collect();
        self.count(&chunk);
        let (mut videos, mut shots, mut clips, mut captions, mut embedded) = (Vec::with_capacity(chunk.len()), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for outcome in chunk {
            videos.push(outcome.video);
            shots.extend(outcome.shots);
            clips.extend(outcome.clips);
            captions.extend(outcome.captions);
            embedded.extend(outcome.samples);
        }
        let (samples, shards) = match &mut self.shards {
            Some(sink) => sink.write_chunk(embedded).await?,
            None => Default::default(),
        };
        self.count_samples(&samples, &shards);
        let mut parts = HashMap::new();
        self.put_part(&key, &videos, &mut parts).await?;
        self.put_part(&key, &shots, &mut parts).await?;
        self.put_part(&key, &clips, &mut parts).await?;
        self.put_part(&key, &captions, &mut parts).await?;
        self.put_part(&key, &samples, &mut parts).await?;
        self.put_part(&key, &shards, &mut parts).await?;
        let shards = shards.iter().map(|s| shard_key(&s.shard)).collect();
        let marker = Marker { format: 1, chunk: key.clone(), settings_hash: self.settings_hash.clone(), sources, parts, shards };
        let json = serde_json::to_vec_pretty(&marker).expect("marker serialises");
        self.store.put(&format!("{}/{key}.json", self.layout.markers_dir()), Bytes::from(json)).await?;
        tracing::debug!(chunk = %key, videos = videos.len(), "committed");
        Ok(())
    }

    async fn put_part<T: Table>(&self, key: &str, rows: &[T], parts: &mut HashMap<String, String>) -> Result<(), CommitError> {
        if rows.is_empty() {
            return Ok(());
        }
        let part = part_key(T::NAME, key);
        self.store.put(&part, encode(rows)?).await?;
        parts.insert(T::NAME.to_string(), part);
        Ok(())
    }

    fn settle_duplicate(&mut self, outcome: &mut VideoResult) {
        let Some(id) = outcome.video.video_id.clone() else { return };
        match self.first_source_of.get(&id) {
            Some(first) if *first != outcome.video.source_uri => {
                // The same row however far the copy got before its twin claimed the bytes (it
                // may have been probed, or not), so that results do not depend on timing.
                let v = &outcome.video;
                let mut row = VideoRow::unprocessed(&v.source_uri, &v.settings_hash);
                row.video_id = v.video_id.clone();
                row.size_bytes = v.size_bytes;
                row.status = VideoStatus::Duplicate;
                row.error_kind = Some(FailureKind::Duplicate);
                row.error = Some(format!("same bytes as {first}"));
                row.duplicate_of = Some(first.clone());
                outcome.video = row;
                outcome.shots.clear();
                outcome.clips.clear();
                outcome.captions.clear();
                outcome.samples.clear();
            }
            Some(_) => {}
            None => {
                self.first_source_of.insert(id, outcome.video.source_uri.clone());
            }
        }
    }

    fn count_samples(&mut self, samples: &[SampleRow], shards: &[ShardRow]) {
        let c = &mut self.committed;
        for sample in samples {
            c.samples.add(sample.status);
        }
        c.shards += shards.len() as u64;
        c.shard_bytes += shards.iter().map(|s| s.bytes as u64).sum::<u64>();
    }

    fn count(&mut self, chunk: &[VideoResult]) {
        let c = &mut self.committed;
        for o in chunk {
            c.videos.add(o.video.status);
            c.shots += o.shots.len() as u64;
            c.frames += o.frames_decoded;
            for clip in &o.clips {
                c.clips.add(clip.status);
            }
            for caption in &o.captions {
                c.captions.add(caption.status);
            }
            if o.video.status == VideoStatus::Failed && c.failures.len() < LISTED_FAILURES {
                c.failures.push((
                    o.video.source_uri.clone(),
                    o.video.error_kind,
                    o.video.error.clone().unwrap_or_default(),
                ));
            }
        }
    }
}

/// Manifest directories whose parts markers name: every table but `runs`, whose files no marker
/// names (one per invocation, written whole).
fn marked_tables() -> impl Iterator<Item = String> {
    TABLES.iter().filter(|&&t| t != RunRow::NAME).map(|t| format!("manifests/{t}"))
}

/// Delete the parts and shards of `store` that no marker names (`referenced`); returns how many.
/// With `only_chunks`, just the parts of those chunks: a partition shares the output with other
/// writers, and leaves unreferenced shards (named by their bytes, not their chunk) to
/// `clipline commit`. Without it, the caller owns the whole output: nobody else may be writing.
///
/// # Errors
/// On storage failures.
pub async fn remove_unreferenced(store: &Store, referenced: &HashSet<String>, only_chunks: Option<&HashSet<String>>) -> Result<usize, CommitError> {
    let shards = only_chunks.is_none().then(|| SHARDS_DIR.to_string());
    let mut removed = 0;
    for dir in marked_tables().chain(shards) {
        for entry in store.list(&dir).await? {
            let ours = only_chunks.is_none_or(|keys| chunk_of_part(&entry.key).is_some_and(|c| keys.contains(c)));
            if ours && !referenced.contains(&entry.key) {
                tracing::info!(file = %store.uri_of(&entry.key), "removing a file left by an interrupted run");
                store.delete(&entry.key).await?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The commit and resume rules, on an in-memory store: what a restarted run finds done, what it
/// removes, and where duplicates and partitions put their rows.
#[cfg(test)]
mod tests {
    use clipline_core::manifest::commits::read_committed;
    use clipline_core::manifest::ShotRow;

    use super::*;

    const SETTINGS: &str = "settings-a";

    fn outcome(uri: &str, video_id: &str) -> VideoResult {
        let mut video = VideoRow::unprocessed(uri, SETTINGS);
        video.video_id = Some(video_id.into());
        video.status = VideoStatus::Ok;
        VideoResult { video, shots: vec![], clips: vec![], caption_frames: vec![], captions: vec![], embed_inputs: vec![], samples: vec![], frames_decoded: 10, cancelled: false }
    }

    async fn open(store: &Store, layout: Layout) -> (Committer, Resume) {
        Committer::open(store.clone(), SETTINGS.into(), layout, None).await.unwrap()
    }

    async fn committed_uris(store: &Store) -> Vec<String> {
        let mut uris: Vec<String> = read_committed::<VideoRow>(store).await.unwrap().into_iter().map(|v| v.source_uri).collect();
        uris.sort();
        uris
    }

    #[tokio::test]
    async fn a_restarted_run_finds_committed_chunks_done_and_removes_what_no_marker_names() {
        let store = Store::open("memory://").unwrap();
        let (mut committer, resume) = open(&store, Layout::Whole).await;
        assert!(resume.done.is_empty() && resume.orphans_removed == 0);
        committer.add(outcome("a.mp4", "id-a"), 0).await.unwrap();
        committer.add(outcome("b.mp4", "id-b"), 0).await.unwrap();
        // Chunk 0 is committed when chunk 1 begins; chunk 1 is still pending when the run dies,
        // after it put a part but before its marker.
        committer.add(outcome("c.mp4", "id-c"), 1).await.unwrap();
        assert_eq!(committer.committed.videos.of(VideoStatus::Ok), 2);
        drop(committer);
        store.put(&part_key(VideoRow::NAME, "killed-chunk"), encode(&[outcome("c.mp4", "id-c").video]).unwrap()).await.unwrap();

        let (mut committer, resume) = open(&store, Layout::Whole).await;
        assert_eq!(resume.done, HashSet::from(["a.mp4".to_string(), "b.mp4".to_string()]));
        assert_eq!(resume.orphans_removed, 1);
        assert_eq!(store.list("manifests/videos").await.unwrap().len(), 1, "only the committed chunk's part is left");
        assert_eq!(committed_uris(&store).await, ["a.mp4", "b.mp4"]);

        committer.add(outcome("c.mp4", "id-c"), 1).await.unwrap();
        committer.flush().await.unwrap();
        assert_eq!(committed_uris(&store).await, ["a.mp4", "b.mp4", "c.mp4"]);
        assert_eq!(markers(&store).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn chunks_have_the_same_keys_whatever_the_run_that_commits_them() {
        let (first, second) = (Store::open("memory://").unwrap(), Store::open("memory://").unwrap());
        for store in [&first, &second] {
            let (mut committer, _) = open(store, Layout::Whole).await;
            committer.add(outcome("a.mp4", "id-a"), 0).await.unwrap();
            committer.flush().await.unwrap();
        }
        let keys = |markers: Vec<Marker>| markers.into_iter().map(|m| m.chunk).collect::<Vec<_>>();
        assert_eq!(keys(markers(&first).await.unwrap()), keys(markers(&second).await.unwrap()));
        assert_eq!(keys(markers(&first).await.unwrap()), [chunk_key(SETTINGS, ["a.mp4"])]);
    }

    #[tokio::test]
    async fn an_output_of_other_settings_is_refused_by_name() {
        let store = Store::open("memory://").unwrap();
        let (mut committer, _) = open(&store, Layout::Whole).await;
        committer.add(outcome("a.mp4", "id-a"), 0).await.unwrap();
        committer.flush().await.unwrap();
        let Err(err) = Committer::open(store.clone(), "settings-b".into(), Layout::Whole, None).await else { panic!("other settings were accepted") };
        assert!(matches!(&err, CommitError::SettingsChanged { found, ours, .. } if found == SETTINGS && ours == "settings-b"), "{err}");
    }

    #[tokio::test]
    async fn a_later_copy_of_the_same_bytes_becomes_a_duplicate_row_even_after_a_restart() {
        let store = Store::open("memory://").unwrap();
        let (mut committer, _) = open(&store, Layout::Whole).await;
        committer.add(outcome("a.mp4", "same"), 0).await.unwrap();
        let mut copy = outcome("b.mp4", "same");
        copy.shots.push(ShotRow {
            video_id: "same".into(),
            source_uri: "b.mp4".into(),
            shot_index: 0,
            start_frame: 0,
            end_frame: 30,
            num_frames: 31,
            start_pts: 0.0,
            end_pts: 1.0,
            transition: "start".into(),
            boundary_score: 0.0,
            detector: "adaptive".into(),
            transition_start_frame: 0,
            transition_end_frame: 0,
        });
        committer.add(copy, 1).await.unwrap();
        committer.flush().await.unwrap();
        drop(committer);
        let (mut committer, _) = open(&store, Layout::Whole).await;
        committer.add(outcome("c.mp4", "same"), 2).await.unwrap();
        committer.flush().await.unwrap();

        let mut videos = read_committed::<VideoRow>(&store).await.unwrap();
        videos.sort_by(|a, b| a.source_uri.cmp(&b.source_uri));
        let summary: Vec<_> = videos.iter().map(|v| (v.source_uri.as_str(), v.status, v.duplicate_of.as_deref(), v.error_kind)).collect();
        assert_eq!(
            summary,
            [
                ("a.mp4", VideoStatus::Ok, None, None),
                ("b.mp4", VideoStatus::Duplicate, Some("a.mp4"), Some(FailureKind::Duplicate)),
                ("c.mp4", VideoStatus::Duplicate, Some("a.mp4"), Some(FailureKind::Duplicate)),
            ]
        );
        assert!(read_committed::<ShotRow>(&store).await.unwrap().is_empty(), "a duplicate's rows are dropped");
    }

    #[tokio::test]
    async fn a_partition_keeps_its_markers_apart_and_removes_only_its_own_leftovers() {
        let store = Store::open("memory://").unwrap();
        let ours = chunk_key(SETTINGS, ["a.mp4"]);
        let layout = || Layout::Partition { markers_dir: "plan/partitions/0/commits".into(), chunk_keys: HashSet::from([ours.clone()]) };
        // Another partition's part, written beside ours and not yet marked anywhere we look.
        let theirs = part_key(VideoRow::NAME, &chunk_key(SETTINGS, ["z.mp4"]));
        store.put(&theirs, encode(&[outcome("z.mp4", "id-z").video]).unwrap()).await.unwrap();
        // Our own leftover from a killed attempt.
        store.put(&part_key(VideoRow::NAME, &ours), encode(&[outcome("a.mp4", "id-a").video]).unwrap()).await.unwrap();

        let (mut committer, resume) = open(&store, layout()).await;
        assert_eq!(resume.orphans_removed, 1, "only our own chunk's leftover goes");
        let left: Vec<String> = store.list("manifests/videos").await.unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(left, [theirs], "another partition's part stays");
        committer.add(outcome("a.mp4", "id-a"), 0).await.unwrap();
        committer.flush().await.unwrap();
        assert!(markers(&store).await.unwrap().is_empty(), "nothing is published before `clipline commit`");
        assert_eq!(markers_in(&store, "plan/partitions/0/commits").await.unwrap().len(), 1);
        let (_, resume) = open(&store, layout()).await;
        assert_eq!(resume.done, HashSet::from(["a.mp4".to_string()]), "a restarted partition finds its own markers");
    }
}
