//! The Hugging Face hub cache, laid out as the hub's own clients (huggingface_hub, transformers,
//! `huggingface-cli download`) lay it out, so that a model one of them fetched is found by
//! clipline and the other way round, with no second download:
//!
//! ```text
//! HUB_CACHE/models--OWNER--NAME/
//!   blobs/ID                      a file's bytes, named by its checksum (SHA-256 of a Git LFS
//!                                 object, the Git blob id of a small file)
//!   snapshots/COMMIT/PATH         a relative link to ../../blobs/ID, one per file of the commit
//!   refs/REVISION                 the commit a branch or tag pointed at when it was pulled
//! ```
//!
//! A snapshot holding every file a model needs is a complete pull: clipline links the files into
//! the snapshot only once all their blobs are downloaded and checked, and writes the ref last.

use std::path::{Path, PathBuf};

use crate::download::Checksum;

/// One repository's directory in the hub cache.
#[derive(Debug, Clone)]
pub struct HubRepo {
    dir: PathBuf,
}

impl HubRepo {
    /// The directory of `repo` (`owner/name`) in the hub cache `cache`.
    pub fn new(cache: &Path, repo: &str) -> Self {
        Self { dir: cache.join(format!("models--{}", repo.replace('/', "--"))) }
    }

    /// The repository's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a file with `checksum` keeps its bytes.
    pub fn blob(&self, checksum: &Checksum) -> PathBuf {
        self.dir.join("blobs").join(checksum.hex())
    }

    /// The snapshot directory of `commit`.
    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    /// The snapshot `revision` names: itself when it is a commit, else the commit its ref
    /// records, else a snapshot of that name (a pull from a hub that gave no commit).
    pub fn snapshot_of(&self, revision: &str) -> PathBuf {
        let is_commit = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
        let recorded = || std::fs::read_to_string(self.dir.join("refs").join(revision)).ok().map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        match (is_commit, recorded()) {
            (false, Some(commit)) => self.snapshot(&commit),
            _ => self.snapshot(revision),
        }
    }

    /// The snapshot of `revision` when it holds every one of `files`.
    pub fn find(&self, revision: &str, files: &[&str]) -> Option<PathBuf> {
        let snapshot = self.snapshot_of(revision);
        files.iter().all(|f| snapshot.join(f).is_file()).then_some(snapshot)
    }

    /// Link `path` of snapshot `commit` to its blob (replacing an older link).
    ///
    /// # Errors
    /// When the link cannot be made.
    pub fn link(&self, commit: &str, path: &str, checksum: &Checksum) -> std::io::Result<()> {
        let link = self.snapshot(commit).join(path);
        let parent = link.parent().expect("a snapshot file has a parent");
        std::fs::create_dir_all(parent)?;
        // From snapshots/COMMIT/a/b/file up to the repository's directory, then into blobs/.
        let depth = Path::new(path).components().count() + 1;
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(checksum.hex());
        match std::fs::remove_file(&link) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::os::unix::fs::symlink(target, link)
    }

    /// Record that `revision` points at `commit` (written whole, through a temporary name).
    ///
    /// # Errors
    /// When the ref cannot be written.
    pub fn set_ref(&self, revision: &str, commit: &str) -> std::io::Result<()> {
        let refs = self.dir.join("refs");
        let file = refs.join(revision);
        std::fs::create_dir_all(file.parent().unwrap_or(&refs))?;
        let staging = refs.join(format!(".{}.{}", revision.replace('/', "_"), std::process::id()));
        std::fs::write(&staging, commit)?;
        std::fs::rename(&staging, &file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_link_to_blobs_and_refs_name_their_commit() {
        let cache = tempfile::tempdir().unwrap();
        let repo = HubRepo::new(cache.path(), "Org/model");
        assert!(repo.dir().ends_with("models--Org--model"));
        let (commit, sha) = ("0123456789abcdef0123456789abcdef01234567", "ab".repeat(32));
        let checksum = Checksum::Sha256(sha.clone());
        std::fs::create_dir_all(repo.blob(&checksum).parent().unwrap()).unwrap();
        std::fs::write(repo.blob(&checksum), b"weights").unwrap();
        assert_eq!(repo.find("main", &["onnx/model.onnx"]), None);
        repo.link(commit, "onnx/model.onnx", &checksum).unwrap();
        repo.link(commit, "onnx/model.onnx", &checksum).unwrap();
        assert_eq!(repo.find(commit, &["onnx/model.onnx"]), Some(repo.snapshot(commit)));
        assert_eq!(repo.find("main", &["onnx/model.onnx"]), None, "no ref yet");
        repo.set_ref("main", commit).unwrap();
        let snapshot = repo.find("main", &["onnx/model.onnx"]).unwrap();
        assert_eq!(std::fs::read(snapshot.join("onnx/model.onnx")).unwrap(), b"weights");
        assert_eq!(std::fs::read_link(snapshot.join("onnx/model.onnx")).unwrap(), PathBuf::from(format!("../../../blobs/{sha}")));
        assert_eq!(repo.find("main", &["onnx/model.onnx", "config.json"]), None, "a file is missing");
    }
}
