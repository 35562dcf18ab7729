//! A local cache of fetched sample frames with a byte limit, least recently used out first.
//!
//! It keeps copies of frames that live in the dataset's store, one file per frame, so a later
//! epoch reads local disk instead of the network. It only ever deletes files it wrote under its
//! own directory, and [`FrameCache::open`] refuses a directory inside a local dataset, so it can
//! never delete the only copy of anything. A cached frame is verified like a fetched one; a
//! damaged copy is dropped and fetched again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::ShardError;

/// The cache directory and what it holds.
pub struct FrameCache {
    dir: PathBuf,
    limit: u64,
    index: Mutex<Index>,
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

/// Suffix of the cache's frame files, so it never touches anything else.
const FRAME_SUFFIX: &str = "frame";

impl FrameCache {
    /// Open (creating) the cache at `dir` with a limit of `limit` bytes, taking stock of what
    /// an earlier run left there.
    ///
    /// # Errors
    /// When `dir` is inside `dataset_root` (the local dataset itself), or cannot be created or read.
    pub fn open(dir: &Path, limit: u64, dataset_root: Option<&Path>) -> Result<Self, ShardError> {
        std::fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
        let dir = dir.canonicalize().map_err(|e| ShardError::io(dir, e))?;
        if let Some(root) = dataset_root.and_then(|r| r.canonicalize().ok())
            && (dir.starts_with(&root) || root.starts_with(&dir))
        {
            return Err(ShardError::io(&dir, std::io::Error::other(format!("the sample cache must not overlap the dataset at {}: it deletes files to stay under its limit", root.display()))));
        }
        let mut found = Vec::new();
        for shard in std::fs::read_dir(&dir).map_err(|e| ShardError::io(&dir, e))?.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == FRAME_SUFFIX)
                    && let Ok(meta) = file.metadata()
                {
                    found.push((meta.modified().ok(), path, meta.len()));
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
        let cache = Self { dir, limit, index: Mutex::new(index) };
        cache.evict_to(limit);
        Ok(cache)
    }

    fn path(&self, shard: &str, offset: u64, length: u64) -> PathBuf {
        self.dir.join(shard).join(format!("{offset}-{length}.{FRAME_SUFFIX}"))
    }

    /// The cached frame at (`shard`, `offset`, `length`), if any.
    pub fn get(&self, shard: &str, offset: u64, length: u64) -> Option<Vec<u8>> {
        let path = self.path(shard, offset, length);
        {
            let mut index = self.index.lock().expect("cache index");
            index.clock += 1;
            let clock = index.clock;
            index.entries.get_mut(&path)?.used = clock;
        }
        let bytes = std::fs::read(&path).ok();
        if bytes.is_none() {
            self.remove(shard, offset, length);
        }
        bytes
    }

    /// Keep a copy of a frame, evicting the least recently used ones to stay under the limit.
    /// A frame that cannot be written is simply not cached.
    pub fn put(&self, shard: &str, offset: u64, length: u64, frame: &[u8]) {
        let bytes = frame.len() as u64;
        if bytes > self.limit {
            return;
        }
        let path = self.path(shard, offset, length);
        self.evict_to(self.limit - bytes);
        let written = path.parent().is_some_and(|p| std::fs::create_dir_all(p).is_ok()) && {
            let tmp = path.with_extension("part");
            std::fs::write(&tmp, frame).and_then(|()| std::fs::rename(&tmp, &path)).is_ok()
        };
        if written {
            let mut index = self.index.lock().expect("cache index");
            index.clock += 1;
            let used = index.clock;
            if let Some(old) = index.entries.insert(path, Entry { bytes, used }) {
                index.total -= old.bytes;
            }
            index.total += bytes;
        }
    }

    /// Drop a frame (a damaged copy).
    pub fn remove(&self, shard: &str, offset: u64, length: u64) {
        let path = self.path(shard, offset, length);
        let mut index = self.index.lock().expect("cache index");
        if let Some(old) = index.entries.remove(&path) {
            index.total -= old.bytes;
        }
        let _ = std::fs::remove_file(&path);
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.index.lock().expect("cache index").total
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_under_its_limit_evicting_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FrameCache::open(&dir.path().join("cache"), 250, None).unwrap();
        cache.put("s1", 0, 100, &[1; 100]);
        cache.put("s1", 100, 100, &[2; 100]);
        assert_eq!(cache.get("s1", 0, 100).unwrap(), vec![1; 100]);
        cache.put("s2", 0, 100, &[3; 100]);
        assert_eq!(cache.bytes(), 200);
        assert!(cache.get("s1", 100, 100).is_none(), "the least recently used frame goes first");
        assert!(cache.get("s1", 0, 100).is_some());
        cache.put("big", 0, 300, &[4; 300]);
        assert!(cache.get("big", 0, 300).is_none(), "a frame over the whole limit is not cached");
        drop(cache);
        let reopened = FrameCache::open(&dir.path().join("cache"), 150, None).unwrap();
        assert_eq!(reopened.bytes(), 100, "a reopened cache takes stock and trims to its new limit");
    }

    #[test]
    fn refuses_to_live_inside_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let err = FrameCache::open(&dir.path().join("cache"), 100, Some(dir.path())).err().unwrap();
        assert!(err.to_string().contains("must not overlap the dataset"), "{err}");
    }
}
