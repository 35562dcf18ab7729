//! A local cache of shard blocks with a byte limit, least recently used out first.
//!
//! A cold epoch from object storage is bounded by requests, not bytes: one ranged read per
//! sample costs a round trip each. With the cache on, the loader instead fetches aligned blocks
//! of `block` bytes (one request serves every sample in the block, and concurrent readers of a
//! block share one fetch, across processes too: a block another process wrote is used as it is), keeps them as files, and serves later reads of those samples, in this
//! epoch and the next, from local disk. The loader uses it only for datasets on object storage
//! (a local dataset is read directly), and it only ever deletes its own block files, so it never
//! deletes the only copy of anything.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::ShardError;

/// The cache directory and what it holds.
pub struct BlockCache {
    dir: PathBuf,
    limit: u64,
    block: u64,
    index: Mutex<Index>,
    fetching: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Default)]
struct Index {
    entries: HashMap<PathBuf, Entry>,
    total: u64,
    clock: u64,
}

struct Entry {
    bytes: u64,
    used: u64,
}

/// Suffix of the cache's block files, so it never touches anything else.
const BLOCK_SUFFIX: &str = "block";

/// Suffix (before the writer's process id) of a block being written; one a killed process left
/// is removed when a cache is opened.
const PART_SUFFIX: &str = "part";

impl BlockCache {
    /// Open (creating) the cache at `dir` with a limit of `limit` bytes in blocks of `block`
    /// bytes, taking stock of what an earlier run left there (blocks of another size are dropped).
    ///
    /// # Errors
    /// When `dir` cannot be created or read.
    pub fn open(dir: &Path, limit: u64, block: u64) -> Result<Self, ShardError> {
        std::fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
        let dir = dir.to_path_buf();
        let mut found = Vec::new();
        for shard in std::fs::read_dir(&dir).map_err(|e| ShardError::io(&dir, e))?.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e.to_string_lossy().starts_with(PART_SUFFIX)) {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                if path.extension().is_some_and(|e| e == BLOCK_SUFFIX)
                    && let Ok(meta) = file.metadata()
                {
                    let sized = path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.ends_with(&format!("x{block}")));
                    if sized {
                        found.push((meta.modified().ok(), path, meta.len()));
                    } else {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        found.sort();
        let mut index = Index::default();
        for (_, path, bytes) in found {
            index.clock += 1;
            index.total += bytes;
            index.entries.insert(path, Entry { bytes, used: index.clock });
        }
        let cache = Self { dir, limit, block: block.max(1), index: Mutex::new(index), fetching: Mutex::new(HashMap::new()) };
        cache.evict_to(limit);
        Ok(cache)
    }

    /// The block size.
    pub fn block(&self) -> u64 {
        self.block
    }

    fn path(&self, shard: &str, block: u64) -> PathBuf {
        self.dir.join(shard).join(format!("{block}x{}.{BLOCK_SUFFIX}", self.block))
    }

    /// The blocks that hold bytes `offset..offset + length`.
    pub fn blocks(&self, offset: u64, length: u64) -> std::ops::RangeInclusive<u64> {
        offset / self.block..=(offset + length.max(1) - 1) / self.block
    }

    /// Whether block `block` of `shard` is held (and marks it used).
    fn touch(&self, path: &Path) -> bool {
        let mut index = self.index.lock().expect("cache index");
        index.clock += 1;
        let clock = index.clock;
        index.entries.get_mut(path).map(|e| e.used = clock).is_some()
    }

    /// Make sure block `block` of `shard` is held, fetching it with `fetch` (given the block's
    /// byte range) when it is not; concurrent callers for one block share one fetch.
    ///
    /// # Errors
    /// What `fetch` returns.
    pub async fn ensure<F, Fut>(&self, shard: &str, block: u64, shard_bytes: u64, fetch: F) -> Result<(), ShardError>
    where
        F: FnOnce(std::ops::Range<u64>) -> Fut,
        Fut: std::future::Future<Output = Result<bytes::Bytes, ShardError>>,
    {
        let path = self.path(shard, block);
        if self.touch(&path) {
            return Ok(());
        }
        let gate = self.fetching.lock().expect("fetch gates").entry(path.clone()).or_default().clone();
        let _held = gate.lock().await;
        let fetched = async {
            if self.touch(&path) {
                return Ok(());
            }
            let range = block * self.block..((block + 1) * self.block).min(shard_bytes);
            // Another process on this cache (a DataLoader worker, another rank on the node)
            // may have fetched the block: its files are whole once they have their name.
            if std::fs::metadata(&path).is_ok_and(|m| m.len() == range.end - range.start) {
                self.insert(path.clone(), range.end - range.start);
                return Ok(());
            }
            let data = fetch(range).await?;
            let file = path.clone();
            // A block that cannot be written is simply not cached; the caller then reads the frame directly.
            if let Ok(Ok(len)) = tokio::task::spawn_blocking(move || write_atomically(&file, &data).map(|()| data.len() as u64)).await {
                self.insert(path.clone(), len);
            }
            Ok(())
        }
        .await;
        self.fetching.lock().expect("fetch gates").remove(&path);
        fetched
    }

    /// Bytes `offset..offset + length` of `shard` from its held blocks, or `None` when one of
    /// them is missing (evicted meanwhile) or unreadable.
    pub fn read(&self, shard: &str, offset: u64, length: u64) -> Option<Vec<u8>> {
        let mut out = vec![0u8; length as usize];
        for b in self.blocks(offset, length) {
            let (start, end) = (offset.max(b * self.block), (offset + length).min((b + 1) * self.block));
            let file = std::fs::File::open(self.path(shard, b)).ok()?;
            file.read_exact_at(&mut out[(start - offset) as usize..(end - offset) as usize], start - b * self.block).ok()?;
        }
        Some(out)
    }

    /// Drop the blocks holding bytes `offset..offset + length` of `shard` (a damaged copy).
    pub fn remove(&self, shard: &str, offset: u64, length: u64) {
        let mut index = self.index.lock().expect("cache index");
        for b in self.blocks(offset, length) {
            let path = self.path(shard, b);
            if let Some(old) = index.entries.remove(&path) {
                index.total -= old.bytes;
            }
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.index.lock().expect("cache index").total
    }

    fn insert(&self, path: PathBuf, bytes: u64) {
        self.evict_to(self.limit.saturating_sub(bytes));
        let mut index = self.index.lock().expect("cache index");
        index.clock += 1;
        let used = index.clock;
        if let Some(old) = index.entries.insert(path, Entry { bytes, used }) {
            index.total -= old.bytes;
        }
        index.total += bytes;
    }

    fn evict_to(&self, target: u64) {
        let mut index = self.index.lock().expect("cache index");
        if index.total <= target {
            return;
        }
        let mut by_age: Vec<(u64, PathBuf)> = index.entries.iter().map(|(p, e)| (e.used, p.clone())).collect();
        by_age.sort();
        for (_, path) in by_age {
            if index.total <= target {
                break;
            }
            if let Some(old) = index.entries.remove(&path) {
                index.total -= old.bytes;
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // One staging name per process: processes sharing the cache never write into each other's.
    let tmp = path.with_extension(format!("{PART_SUFFIX}{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(data: &'static [u8]) -> impl Fn(std::ops::Range<u64>) -> std::future::Ready<Result<bytes::Bytes, ShardError>> {
        move |r| std::future::ready(Ok(bytes::Bytes::from_static(&data[r.start as usize..r.end as usize])))
    }

    #[tokio::test]
    async fn serves_ranges_across_blocks_and_stays_under_its_limit() {
        static SHARD: [u8; 250] = {
            let mut b = [0u8; 250];
            let mut i = 0;
            while i < 250 {
                b[i] = i as u8;
                i += 1;
            }
            b
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(&dir.path().join("cache"), 200, 100).unwrap();
        for b in cache.blocks(90, 20) {
            cache.ensure("s", b, 250, block_of(&SHARD)).await.unwrap();
        }
        assert_eq!(cache.read("s", 90, 20).unwrap(), SHARD[90..110].to_vec(), "a range over two blocks");
        assert_eq!(cache.bytes(), 200);
        cache.ensure("s", 2, 250, block_of(&SHARD)).await.unwrap();
        assert_eq!(cache.bytes(), 150, "the last block is short; the least recently used block went");
        assert!(cache.read("s", 10, 5).is_none());
        assert_eq!(cache.read("s", 240, 10).unwrap(), SHARD[240..250].to_vec());
        drop(cache);
        let reopened = BlockCache::open(&dir.path().join("cache"), 100, 100).unwrap();
        assert_eq!(reopened.bytes(), 50, "a reopened cache takes stock and trims to its new limit");
        assert_eq!(BlockCache::open(&dir.path().join("cache"), 100, 64).unwrap().bytes(), 0, "blocks of another size are dropped");
    }

    #[tokio::test]
    async fn a_block_another_process_wrote_is_not_fetched_again_and_a_killed_writers_part_is_removed() {
        static SHARD: [u8; 100] = [7; 100];
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (first, second) = (BlockCache::open(dir, 1000, 100).unwrap(), BlockCache::open(dir, 1000, 100).unwrap());
        first.ensure("s", 0, 100, block_of(&SHARD)).await.unwrap();
        let refuse = |_| std::future::ready(Err(ShardError::corrupt("s", "fetched again")));
        second.ensure("s", 0, 100, refuse).await.unwrap();
        assert_eq!(second.read("s", 0, 100).unwrap(), SHARD.to_vec());
        let block = first.path("s", 0);
        let part = block.with_extension(format!("{PART_SUFFIX}999999"));
        std::fs::write(&part, [1, 2]).unwrap();
        let reopened = BlockCache::open(dir, 1000, 100).unwrap();
        assert!(!part.exists(), "the killed writer's part file is gone");
        assert_eq!(reopened.bytes(), 100);
    }
}
