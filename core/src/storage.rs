//! One storage abstraction for every output and every remote input.
//!
//! A [`Store`] is a root URI (`file://`, a plain path, `s3://bucket/prefix`, `memory://`) plus
//! relative keys. Every call has a timeout, S3 calls retry with backoff, keys are checked so that
//! nothing can escape the root, and puts are atomic (object stores replace whole objects; the
//! local backend writes a staging file and renames it). Tests run the same suite against all
//! three backends.

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};

use crate::{Error, Result};

/// Directory under a local root where writes are staged before their atomic rename.
pub const STAGING: &str = ".staging";

/// Limits applied to every call of a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Limit for one small call (head, get of a manifest, put of a part).
    pub call_timeout: Duration,
    /// Limit for moving one large object (a clip file) in or out.
    pub transfer_timeout: Duration,
    /// Retries of a failed S3 request before the error is returned.
    pub max_retries: usize,
    /// S3 settings that override the environment, as object_store's config keys
    /// (`aws_endpoint`, `aws_access_key_id`, `aws_allow_http`, ...).
    pub s3: Vec<(String, String)>,
}

impl Default for StoreOptions {
    /// A minute per call, retries included, and up to 30 retries with exponential backoff and
    /// jitter (100 ms growing to 5 s): an object store that is unreachable for most of a minute
    /// costs a pause, not the run.
    /// `CLIPLINE_STORAGE_TIMEOUT_S` and `CLIPLINE_STORAGE_RETRIES` override the call limit and the
    /// retries (a run against a store known to be slow, or a test that wants an answer soon).
    fn default() -> Self {
        let (call_timeout, max_retries) = crate::env::storage_limits();
        Self {
            call_timeout: call_timeout.unwrap_or(Duration::from_secs(60)).max(Duration::from_secs(1)),
            transfer_timeout: Duration::from_secs(600),
            max_retries: max_retries.unwrap_or(30),
            s3: Vec::new(),
        }
    }
}

/// Metadata of one stored object, with its key relative to the store's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Key relative to the root, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A root location and the object store behind it.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    root: Path,
    uri: String,
    local_root: Option<PathBuf>,
    options: StoreOptions,
}

impl Store {
    /// Open a root URI with default limits.
    ///
    /// # Errors
    /// When the URI's scheme is unknown, a local directory cannot be created, or S3 settings are
    /// incomplete.
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, StoreOptions::default())
    }

    /// Open a root URI.
    ///
    /// `s3://bucket/prefix` takes credentials, region and endpoint from the usual AWS
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(uri: &str, options: StoreOptions) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidLocation { uri: uri.to_string(), reason: reason.to_string() };
        let (scheme, rest) = match uri.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, uri),
        };
        match scheme {
            Some("s3") => Self::open_s3(uri, rest, options),
            Some("memory") => Ok(Self::new(Arc::new(InMemory::new()), parse_key(rest, uri)?, format!("memory://{}", rest.trim_matches('/')), None, options)),
            Some("file") | None => Self::open_local(uri, rest, options),
            Some(_) => Err(invalid("unknown scheme; use a path, file://, s3:// or memory://")),
        }
    }

    fn open_s3(uri: &str, rest: &str, options: StoreOptions) -> Result<Self> {
        let rest = rest.trim_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::InvalidLocation { uri: uri.to_string(), reason: "no bucket name after s3://".into() });
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_client_options(
                ClientOptions::new().with_timeout(options.call_timeout).with_connect_timeout(Duration::from_secs(10)),
            )
            .with_retry(RetryConfig {
                // object_store draws each wait uniformly between the first and `base` times the last: with
                // base 4 the wait doubles on average, up to the 5 s cap.
                backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5), base: 4.0 },
                max_retries: options.max_retries,
                retry_timeout: options.call_timeout,
            });
        if let Some(endpoint) = crate::env::aws_endpoint() {
            builder = builder.with_endpoint(endpoint);
        }
        for (key, value) in &options.s3 {
            let key = key.parse().map_err(|source| Error::Storage { uri: uri.to_string(), source })?;
            builder = builder.with_config(key, value);
        }
        if let Some(endpoint) = builder.get_config_value(&object_store::aws::AmazonS3ConfigKey::Endpoint) {
            builder = builder.with_virtual_hosted_style_request(false).with_allow_http(endpoint.starts_with("http://"));
        }
        let s3 = builder.build().map_err(|source| Error::Storage { uri: uri.to_string(), source })?;
        Ok(Self::new(Arc::new(s3), parse_key(prefix, uri)?, format!("s3://{rest}"), None, options))
    }

    fn open_local(uri: &str, path: &str, options: StoreOptions) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidLocation { uri: uri.to_string(), reason };
        if path.is_empty() {
            return Err(invalid("empty location".into()));
        }
        let path = PathBuf::from(path);
        std::fs::create_dir_all(&path).map_err(|e| invalid(format!("cannot create directory: {e}")))?;
        let path = path.canonicalize().map_err(|e| invalid(e.to_string()))?;
        let fs = LocalFileSystem::new_with_prefix(&path).map_err(|source| Error::Storage { uri: uri.to_string(), source })?;
        Ok(Self::new(Arc::new(fs), Path::default(), format!("file://{}", path.display()), Some(path), options))
    }

    fn new(inner: Arc<dyn ObjectStore>, root: Path, uri: String, local_root: Option<PathBuf>, options: StoreOptions) -> Self {
        Self { inner, root, uri, local_root, options }
    }

    /// The root URI, normalised (`file:///abs/path`, `s3://bucket/prefix`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The full URI of a key, for messages and manifests.
    pub fn uri_of(&self, key: &str) -> String {
        format!("{}/{}", self.uri, key)
    }

    /// The local directory behind a `file://` store.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    fn path(&self, key: &str) -> Result<Path> {
        let rel = parse_key(key, key)?;
        if rel.as_ref().is_empty() {
            return Err(Error::InvalidLocation { uri: key.to_string(), reason: "empty key".into() });
        }
        Ok(self.root.parts().chain(rel.parts()).collect())
    }

    async fn timed<T>(&self, key: &str, limit: Duration, fut: impl Future<Output = object_store::Result<T>>) -> Result<T> {
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(object_store::Error::AlreadyExists { .. })) => Err(Error::AlreadyExists { uri: self.uri_of(key) }),
            Ok(Err(source)) => Err(Error::Storage { uri: self.uri_of(key), source }),
            Err(_) => Err(Error::Timeout { uri: self.uri_of(key), seconds: limit.as_secs() }),
        }
    }

    /// Write an object, replacing what was there, atomically.
    ///
    /// # Errors
    /// On a storage failure or timeout.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.path(key)?;
        if self.local_root.is_some() {
            return self.put_local(key, move |staged| std::fs::write(staged, &bytes)).await;
        }
        self.timed(key, self.options.call_timeout, self.inner.put(&path, PutPayload::from(bytes))).await?;
        Ok(())
    }

    /// Local files are written under `.staging/` in the root and renamed into place, so a
    /// process killed mid-write leaves nothing beside the outputs (object_store's own staging
    /// files sit next to the target, where readers would see them).
    async fn put_local(&self, key: &str, write: impl FnOnce(&FsPath) -> std::io::Result<()> + Send + 'static) -> Result<()> {
        let root = self.local_root.clone().expect("local store has a root");
        let target = root.join(self.path(key)?.as_ref());
        let staging = root.join(STAGING);
        let uri = self.uri_of(key);
        let job = move || -> std::io::Result<()> {
            std::fs::create_dir_all(&staging)?;
            let staged = tempfile::Builder::new().prefix("put-").tempfile_in(&staging)?.into_temp_path();
            write(&staged)?;
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            staged.persist(&target).map_err(|e| e.error)
        };
        let limit = self.options.transfer_timeout;
        match tokio::time::timeout(limit, tokio::task::spawn_blocking(job)).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Error::Io { uri, source: e }),
            Ok(Err(join)) => Err(Error::Io { uri, source: std::io::Error::other(join.to_string()) }),
            Err(_) => Err(Error::Timeout { uri, seconds: limit.as_secs() }),
        }
    }

    /// Remove what killed processes left in a local root's staging directory more than
    /// `older_than` ago; returns how many files were removed. A no-op for object stores.
    pub fn clean_staging(&self, older_than: Duration) -> usize {
        let Some(root) = &self.local_root else { return 0 };
        let Ok(entries) = std::fs::read_dir(root.join(STAGING)) else { return 0 };
        entries
            .flatten()
            .filter(|e| e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age > older_than)))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }

    /// Remove the empty directories under `prefix` of a local root, `prefix` itself included when
    /// it ends up empty: deleting every file under a prefix leaves them behind (object stores have
    /// no directories, so this is a no-op for them). Directories holding files are left alone.
    pub fn remove_empty_dirs(&self, prefix: &str) {
        fn sweep(dir: &FsPath) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else { return false };
            let mut empty = true;
            for entry in entries.flatten() {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                empty &= is_dir && sweep(&entry.path());
            }
            empty && std::fs::remove_dir(dir).is_ok()
        }
        if let (Some(root), Ok(path)) = (&self.local_root, self.path(prefix)) {
            sweep(&root.join(path.as_ref()));
        }
    }

    /// Write an object only if none exists at `key`; returns whether this call created it.
    ///
    /// # Errors
    /// On a storage failure or timeout.
    pub async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        let path = self.path(key)?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.timed(key, self.options.call_timeout, self.inner.put_opts(&path, PutPayload::from(bytes), opts)).await {
            Ok(_) => Ok(true),
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Upload a local file, in parts when it is large; the object appears only when complete.
    ///
    /// # Errors
    /// When the file cannot be read, or on a storage failure or timeout.
    pub async fn put_file(&self, key: &str, file: &FsPath) -> Result<()> {
        let path = self.path(key)?;
        if self.local_root.is_some() {
            let source = file.to_path_buf();
            return self.put_local(key, move |staged| std::fs::copy(&source, staged).map(|_| ())).await;
        }
        let upload = async {
            let mut reader = tokio::fs::File::open(file).await.map_err(|e| object_store::Error::Generic {
                store: "local file",
                source: format!("cannot read {}: {e}", file.display()).into(),
            })?;
            let mut writer = WriteMultipart::new(self.inner.put_multipart(&path).await?);
            let mut buf = vec![0u8; 8 << 20];
            loop {
                use tokio::io::AsyncReadExt;
                let n = reader.read(&mut buf).await.map_err(|e| object_store::Error::Generic {
                    store: "local file",
                    source: format!("cannot read {}: {e}", file.display()).into(),
                })?;
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(4).await?;
                writer.write(&buf[..n]);
            }
            writer.finish().await
        };
        self.timed(key, self.options.transfer_timeout, upload).await?;
        Ok(())
    }

    /// Read a whole object.
    ///
    /// # Errors
    /// When it does not exist, or on a storage failure or timeout.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key)?;
        self.timed(key, self.options.transfer_timeout, async { self.inner.get(&path).await?.bytes().await }).await
    }

    /// Read a whole object, or `None` when there is none.
    ///
    /// # Errors
    /// On a storage failure or timeout.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        match self.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read a byte range of an object with one request.
    ///
    /// # Errors
    /// On a storage failure or timeout, or a range past the end.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        self.timed(key, self.options.call_timeout, self.inner.get_range(&path, range)).await
    }

    /// Stream an object into a local file; returns its size.
    ///
    /// # Errors
    /// On a storage failure or timeout, or when the file cannot be written.
    pub async fn download(&self, key: &str, dest: &FsPath, mut on_chunk: impl FnMut(&[u8])) -> Result<u64> {
        let path = self.path(key)?;
        let transfer = async {
            use tokio::io::AsyncWriteExt;
            let local_err = |e: std::io::Error| object_store::Error::Generic {
                store: "local file",
                source: format!("cannot write {}: {e}", dest.display()).into(),
            };
            let mut out = tokio::fs::File::create(dest).await.map_err(local_err)?;
            let mut stream = self.inner.get(&path).await?.into_stream();
            let mut size = 0u64;
            while let Some(chunk) = stream.try_next().await? {
                on_chunk(&chunk);
                size += chunk.len() as u64;
                out.write_all(&chunk).await.map_err(local_err)?;
            }
            out.flush().await.map_err(local_err)?;
            Ok(size)
        };
        self.timed(key, self.options.transfer_timeout, transfer).await
    }

    /// Whether an object exists.
    ///
    /// # Errors
    /// On a storage failure or timeout.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match self.timed(key, self.options.call_timeout, self.inner.head(&path)).await {
            Ok(_) => Ok(true),
            Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object under a prefix (recursively), sorted by key.
    ///
    /// # Errors
    /// On a storage failure or timeout.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let rel = parse_key(prefix, prefix)?;
        let full: Path = self.root.parts().chain(rel.parts()).collect();
        let strip = self.root.parts().count();
        let listing = self.inner.list(Some(&full)).try_collect::<Vec<_>>();
        let metas = self.timed(prefix, self.options.call_timeout, listing).await?;
        let mut entries: Vec<Entry> = metas
            .into_iter()
            .map(|m| Entry {
                key: m.location.parts().skip(strip).map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"),
                size: m.size,
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// Delete an object; deleting a missing object is not an error.
    ///
    /// # Errors
    /// On a storage failure or timeout.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.timed(key, self.options.call_timeout, self.inner.delete(&path)).await {
            Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Parse a relative key, refusing anything that could leave the root.
fn parse_key(key: &str, uri: &str) -> Result<Path> {
    let invalid = |reason: &str| Error::InvalidLocation { uri: uri.to_string(), reason: reason.to_string() };
    let key = key.trim_matches('/');
    if key.is_empty() {
        return Ok(Path::default());
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return Err(invalid("keys may not contain backslashes or control characters"));
    }
    if key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(invalid("keys may not contain empty, '.' or '..' segments"));
    }
    Path::parse(key).map_err(|e| invalid(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_writes_are_staged_out_of_sight_and_stale_leftovers_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        store.put("a/b.bin", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("a/b.bin")).unwrap(), b"x");
        let leftover = dir.path().join(STAGING).join("put-killed");
        std::fs::write(&leftover, b"partial").unwrap();
        assert_eq!(store.clean_staging(Duration::from_secs(3600)), 0, "young files may be live writes");
        assert_eq!(store.clean_staging(Duration::ZERO), 1);
        assert!(!leftover.exists());
    }

    #[tokio::test]
    async fn emptied_directories_are_removed_and_ones_with_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        for key in ["p/0/commits/a.json", "p/1/commits/b.json", "p/1/status.json"] {
            store.put(key, Bytes::from_static(b"{}")).await.unwrap();
        }
        store.delete("p/0/commits/a.json").await.unwrap();
        store.delete("p/1/commits/b.json").await.unwrap();
        store.remove_empty_dirs("p");
        assert!(!dir.path().join("p/0").exists() && !dir.path().join("p/1/commits").exists());
        assert!(dir.path().join("p/1/status.json").exists());
        store.delete("p/1/status.json").await.unwrap();
        store.remove_empty_dirs("p");
        assert!(!dir.path().join("p").exists() && dir.path().exists(), "the prefix goes, the root stays");
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = Store::open("memory://").unwrap();
        for bad in ["../etc/passwd", "a/../../b", "a//b", "./a", "a\\b", "a\nb"] {
            assert!(matches!(store.path(bad), Err(Error::InvalidLocation { .. })), "{bad} accepted");
        }
        assert!(store.path("manifests/clips/part-1.parquet").is_ok());
    }

    #[test]
    fn memory_and_s3_uris_are_not_taken_for_paths() {
        assert_eq!(Store::open("memory://").unwrap().uri(), "memory://");
        assert!(Store::open("memory://").unwrap().local_root().is_none());
        assert!(matches!(Store::open("s3://"), Err(Error::InvalidLocation { .. })));
    }

    #[test]
    fn unknown_schemes_are_refused_by_name() {
        let err = Store::open("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("ftp://host/x") && err.contains("unknown scheme"), "{err}");
    }
}
