//! Inputs: discovery (files, directories, globs, object-store prefixes, HTTP URLs) and fetching
//! to a local file that ffmpeg can read, hashing the bytes on the way.
//!
//! A video's id is the hash of its bytes, so the same video under two names is recognised. Remote
//! inputs are spooled to a temporary file (removed when the video is done) with a size limit,
//! timeouts and retries; local files are read in place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clipline_core::http::{self, Attempt, Deadline, Exhausted, RetryPolicy};
use clipline_core::ids::{hash_file, ContentHasher};
use clipline_core::manifest::FailureKind;
use clipline_core::storage::Store;

use crate::config::SourcesConfig;

/// One input video, not yet read.
#[derive(Debug, Clone)]
pub enum Source {
    /// A local file (it may not exist: that is reported when it is fetched).
    Local(PathBuf),
    /// An object in an object store.
    Object {
        /// The store holding it.
        store: Store,
        /// Its key in the store.
        key: String,
        /// Its size, as the listing gave it.
        size: Option<u64>,
    },
    /// An `http://` or `https://` URL.
    Http(String),
}

impl Source {
    /// The normalised URI recorded in the manifests and logs, credentials masked (see
    /// [`redact`]).
    pub fn uri(&self) -> String {
        match self {
            Source::Http(url) => redact(url),
            _ => self.locator(),
        }
    }

    /// The URI that reads the source, credentials included: what a plan's work list holds.
    pub fn locator(&self) -> String {
        match self {
            Source::Local(p) => format!("file://{}", p.display()),
            Source::Object { store, key, .. } => store.uri_of(key),
            Source::Http(url) => url.clone(),
        }
    }

    /// The source a normalised URI (as [`Source::uri`] gives it) names, without listing
    /// anything; `stores` keeps one client per bucket.
    ///
    /// # Errors
    /// When the URI's scheme is not an input's, or its bucket cannot be opened.
    pub fn from_uri(uri: &str, stores: &mut HashMap<String, Store>) -> Result<Self, DiscoverError> {
        if uri.starts_with("http://") || uri.starts_with("https://") {
            Ok(Source::Http(uri.to_string()))
        } else if let Some(path) = uri.strip_prefix("file://") {
            Ok(Source::Local(PathBuf::from(path)))
        } else if uri.starts_with("s3://") {
            let (root, key) = split_object_uri(uri);
            let store = match stores.get(&root) {
                Some(store) => store.clone(),
                None => {
                    let store = Store::open(&root).map_err(|e| DiscoverError { input: uri.to_string(), message: e.to_string() })?;
                    stores.insert(root, store.clone());
                    store
                }
            };
            Ok(Source::Object { store, key, size: None })
        } else {
            Err(DiscoverError { input: uri.to_string(), message: "not an input URI (file://, s3:// or http(s)://)".into() })
        }
    }
}

/// Query parameters whose values are credentials: presigned S3, GCS and Azure URLs, API keys.
/// Not a bare `key`, which as often names the object: two URLs differing only in a masked value
/// are one input (they sort and deduplicate by the masked URI).
const SECRET_PARAMETERS: [&str; 11] = [
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "signature",
    "sig",
    "token",
    "access_token",
    "api_key",
    "apikey",
];

/// `uri` with its credentials masked as `***`: a password in the user part and the values of
/// query parameters that carry signatures, tokens or keys. Anything else is returned unchanged,
/// byte for byte, so the same input keeps the same identity across runs.
pub fn redact(uri: &str) -> String {
    let Ok(mut url) = url::Url::parse(uri) else { return uri.to_string() };
    let mut changed = false;
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
        changed = true;
    }
    let secret = |name: &str| SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str());
    if url.query_pairs().any(|(k, _)| secret(&k)) {
        let masked: Vec<(String, String)> =
            url.query_pairs().map(|(k, v)| if secret(&k) { (k.into_owned(), "***".to_string()) } else { (k.into_owned(), v.into_owned()) }).collect();
        url.query_pairs_mut().clear().extend_pairs(masked);
        changed = true;
    }
    if changed { url.to_string() } else { uri.to_string() }
}

/// An input that cannot be enumerated at all (the run stops before doing anything).
#[derive(Debug, thiserror::Error)]
#[error("cannot list input {input}: {message}")]
pub struct DiscoverError {
    input: String,
    message: String,
}

/// Expand inputs into sources, sorted by URI and without repeats.
///
/// # Errors
/// When a glob is malformed or an object-store prefix cannot be listed.
pub async fn discover(inputs: &[String], cfg: &SourcesConfig) -> Result<Vec<Source>, DiscoverError> {
    let fail = |input: &str, message: String| DiscoverError { input: input.to_string(), message };
    let wanted = |name: &str| {
        let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        cfg.extensions.contains(&ext)
    };
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("http://") || input.starts_with("https://") {
            out.push(Source::Http(input.clone()));
        } else if input.starts_with("s3://") {
            let (root, key) = split_object_uri(input);
            let store = Store::open(&root).map_err(|e| fail(input, e.to_string()))?;
            let entries = store.list(&key).await.map_err(|e| fail(input, e.to_string()))?;
            if let Some(entry) = entries.iter().find(|e| e.key == key) {
                out.push(Source::Object { store, key, size: Some(entry.size) });
            } else {
                out.extend(entries.into_iter().filter(|e| wanted(&e.key)).map(|e| Source::Object { store: store.clone(), key: e.key, size: Some(e.size) }));
            }
        } else if input.contains("://") && !input.starts_with("file://") {
            return Err(fail(input, "unsupported scheme: inputs are paths, globs, file://, s3:// or http(s):// URLs".into()));
        } else {
            let local = input.strip_prefix("file://").unwrap_or(input);
            if local.contains(['*', '?', '[']) {
                let paths = glob::glob(local).map_err(|e| fail(input, e.to_string()))?;
                for path in paths.flatten().filter(|p| p.is_file()) {
                    out.push(Source::Local(absolute(&path)));
                }
            } else if Path::new(local).is_dir() {
                walk(Path::new(local), &wanted, &mut out).map_err(|e| fail(input, e.to_string()))?;
            } else {
                out.push(Source::Local(absolute(Path::new(local))));
            }
        }
    }
    out.sort_by_key(Source::uri);
    out.dedup_by_key(|s| s.uri());
    Ok(out)
}

fn split_object_uri(uri: &str) -> (String, String) {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (format!("{scheme}://{bucket}"), key.trim_matches('/').to_string())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn walk(dir: &Path, wanted: &dyn Fn(&str) -> bool, out: &mut Vec<Source>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, wanted, out)?;
        } else if wanted(&path.to_string_lossy()) {
            out.push(Source::Local(absolute(&path)));
        }
    }
    Ok(())
}

/// A fetched input: a local file and the hash of its bytes.
#[derive(Debug)]
pub struct Fetched {
    /// Where ffmpeg reads it.
    pub path: PathBuf,
    /// Content hash: the video id.
    pub video_id: String,
    /// Size in bytes.
    pub size: u64,
    _spool: Option<tempfile::TempPath>,
}

/// Why an input could not be fetched; becomes the `videos` row's `error_kind` and `error`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    /// Reason class.
    pub kind: FailureKind,
    /// What happened, naming the input.
    pub message: String,
    /// Bytes read, when known.
    pub size: Option<u64>,
}

fn fetch_error(kind: FailureKind, message: impl Into<String>) -> FetchError {
    FetchError { kind, message: message.into(), size: None }
}

/// Fetches sources to local files.
pub struct Fetcher {
    http: reqwest::Client,
    cfg: SourcesConfig,
    spool: PathBuf,
}

impl Fetcher {
    /// A fetcher spooling remote inputs under `spool`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(cfg: SourcesConfig, spool: PathBuf) -> Result<Self, reqwest::Error> {
        let http = http::client(Deadline::Total(Duration::from_secs(cfg.http_timeout_s)))?;
        Ok(Self { http, cfg, spool })
    }

    fn max_bytes(&self) -> u64 {
        self.cfg.max_download_mib * 1024 * 1024
    }

    /// Fetch one source.
    ///
    /// # Errors
    /// See [`FetchError`]; a zero-byte input is an error too.
    pub async fn fetch(&self, source: &Source) -> Result<Fetched, FetchError> {
        let fetched = match source {
            Source::Local(path) => {
                let path = path.clone();
                let meta = std::fs::metadata(&path).map_err(|e| fetch_error(FailureKind::NotFound, format!("cannot open {}: {e}", path.display())))?;
                if !meta.is_file() {
                    return Err(fetch_error(FailureKind::NotFound, format!("{} is not a file", path.display())));
                }
                let (video_id, size) = tokio::task::spawn_blocking({
                    let path = path.clone();
                    move || hash_file(&path)
                })
                .await
                .expect("hashing task")
                .map_err(|e| fetch_error(FailureKind::ReadError, format!("cannot read {}: {e}", path.display())))?;
                Fetched { path, video_id, size, _spool: None }
            }
            Source::Object { store, key, .. } => {
                let temp = self.spool_file()?;
                let mut hasher = ContentHasher::default();
                let size = store
                    .download(key, &temp, |chunk| hasher.update(chunk))
                    .await
                    .map_err(|e| fetch_error(FailureKind::Unreachable, e.to_string()))?;
                if size > self.max_bytes() {
                    return Err(fetch_error(FailureKind::TooLarge, format!("{} is {size} bytes, over the {} MiB limit", source.uri(), self.cfg.max_download_mib)));
                }
                Fetched { path: temp.to_path_buf(), video_id: hasher.finish(), size, _spool: Some(temp) }
            }
            Source::Http(url) => self.fetch_http(url).await?,
        };
        if fetched.size == 0 {
            return Err(FetchError { kind: FailureKind::Empty, message: format!("{} is empty (0 bytes)", source.uri()), size: Some(0) });
        }
        Ok(fetched)
    }

    /// A source's size without reading it: the file's, the listing's, or an HTTP HEAD's
    /// `Content-Length` (`None` when the server does not say or cannot be reached).
    pub async fn size_of(&self, source: &Source) -> Option<u64> {
        match source {
            Source::Local(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Source::Object { size, .. } => *size,
            Source::Http(url) => {
                let response = self.http.head(url).send().await.ok()?;
                if !response.status().is_success() {
                    return None;
                }
                response.headers().get(reqwest::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
            }
        }
    }

    fn spool_file(&self) -> Result<tempfile::TempPath, FetchError> {
        std::fs::create_dir_all(&self.spool).map_err(|e| fetch_error(FailureKind::Spool, format!("cannot create spool {}: {e}", self.spool.display())))?;
        tempfile::Builder::new()
            .prefix("input-")
            .tempfile_in(&self.spool)
            .map(|f| f.into_temp_path())
            .map_err(|e| fetch_error(FailureKind::Spool, format!("cannot create a file in {}: {e}", self.spool.display())))
    }

    async fn fetch_http(&self, url: &str) -> Result<Fetched, FetchError> {
        let shown = redact(url);
        match RetryPolicy::new(self.cfg.http_attempts).run(&shown, |_| self.try_http(url)).await {
            Ok(fetched) => Ok(fetched),
            Err(Exhausted::Failed(err)) => Err(err),
            Err(Exhausted::GaveUp { last, attempts }) => Err(fetch_error(FailureKind::Unreachable, format!("{shown}: {last} (after {attempts} attempts)"))),
        }
    }

    /// One download attempt.
    async fn try_http(&self, url: &str) -> Result<Fetched, Attempt<FetchError>> {
        let shown = redact(url);
        let mut response = self.http.get(url).send().await.map_err(|e| Attempt::transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Attempt::refused(status, response.headers(), |reason| fetch_error(FailureKind::Unreachable, format!("{shown}: {reason}"))));
        }
        if response.content_length().is_some_and(|n| n > self.max_bytes()) {
            return Err(Attempt::Fail(fetch_error(FailureKind::TooLarge, format!("{shown} is over the {} MiB limit", self.cfg.max_download_mib))));
        }
        let temp = self.spool_file().map_err(Attempt::Fail)?;
        let mut file = std::fs::File::create(&temp).map_err(|e| Attempt::Fail(fetch_error(FailureKind::Spool, e.to_string())))?;
        let mut hasher = ContentHasher::default();
        while let Some(chunk) = response.chunk().await.map_err(|e| Attempt::transport(&e))? {
            hasher.update(&chunk);
            if hasher.len() > self.max_bytes() {
                return Err(Attempt::Fail(fetch_error(FailureKind::TooLarge, format!("{shown} is over the {} MiB limit", self.cfg.max_download_mib))));
            }
            std::io::Write::write_all(&mut file, &chunk).map_err(|e| Attempt::Fail(fetch_error(FailureKind::Spool, e.to_string())))?;
        }
        Ok(Fetched { path: temp.to_path_buf(), video_id: hasher.finish(), size: hasher.len(), _spool: Some(temp) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn directories_globs_and_files_expand_sorted_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.mp4", "a.MKV", "notes.txt", "sub/c.webm"] {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let d = dir.path().display();
        let inputs = vec![d.to_string(), format!("{d}/*.mp4"), format!("{d}/missing.mp4")];
        let uris: Vec<String> = discover(&inputs, &SourcesConfig::default()).await.unwrap().iter().map(Source::uri).collect();
        let names: Vec<&str> = uris.iter().map(|u| u.rsplit('/').next().unwrap()).collect();
        assert_eq!(names, vec!["a.MKV", "b.mp4", "missing.mp4", "c.webm"]);
    }

    #[test]
    fn credentials_in_urls_are_masked_and_other_urls_kept_byte_for_byte() {
        assert_eq!(redact("https://user:hunter2@host/v.mp4"), "https://user:***@host/v.mp4");
        let presigned = "https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F2026&X-Amz-Signature=abc123&X-Amz-Expires=60";
        let masked = redact(presigned);
        assert!(!masked.contains("abc123") && !masked.contains("AKID"), "{masked}");
        assert!(masked.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256") && masked.contains("X-Amz-Expires=60"), "{masked}");
        for plain in ["http://127.0.0.1:8000/a%20b.mp4?t=10", "HTTP://Host:80/x.mp4", "s3://b/k.mp4", "https://h/get?key=video7"] {
            assert_eq!(redact(plain), plain);
        }
    }

    #[tokio::test]
    async fn unsupported_schemes_are_refused_by_name() {
        let err = discover(&["ftp://host/a.mp4".to_string()], &SourcesConfig::default()).await.unwrap_err().to_string();
        assert!(err.contains("ftp://host/a.mp4") && err.contains("unsupported scheme"), "{err}");
    }

    #[tokio::test]
    async fn empty_and_missing_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.mp4");
        std::fs::write(&empty, b"").unwrap();
        let fetcher = Fetcher::new(SourcesConfig::default(), dir.path().join("spool")).unwrap();
        let err = fetcher.fetch(&Source::Local(empty)).await.unwrap_err();
        assert_eq!(err.kind, FailureKind::Empty);
        assert!(err.message.contains("empty.mp4") && err.message.contains("0 bytes"));
        let err = fetcher.fetch(&Source::Local(dir.path().join("nope.mp4"))).await.unwrap_err();
        assert_eq!(err.kind, FailureKind::NotFound);
        assert!(err.message.contains("nope.mp4"));
    }

    #[tokio::test]
    async fn unreachable_urls_fail_after_bounded_attempts() {
        let cfg = SourcesConfig { http_attempts: 2, http_timeout_s: 5, ..SourcesConfig::default() };
        let fetcher = Fetcher::new(cfg, std::env::temp_dir()).unwrap();
        // Port 9 on loopback (discard) is closed on a normal machine: connection refused.
        let err = fetcher.fetch(&Source::Http("http://127.0.0.1:9/video.mp4".into())).await.unwrap_err();
        assert_eq!(err.kind, FailureKind::Unreachable);
        assert!(err.message.contains("127.0.0.1:9") && err.message.contains("2 attempts"), "{}", err.message);
    }

    /// A server that answers each connection with the next of `answers` (raw HTTP responses).
    fn serve(answers: Vec<String>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/video.mp4", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut conn, _)) = listener.accept() else { return };
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request);
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        url
    }

    #[tokio::test]
    async fn a_rate_limited_download_waits_as_asked_and_then_succeeds() {
        let limited = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nvideo".to_string();
        let url = serve(vec![limited, ok]);
        let fetcher = Fetcher::new(SourcesConfig { http_attempts: 3, ..SourcesConfig::default() }, std::env::temp_dir()).unwrap();
        let started = std::time::Instant::now();
        let fetched = fetcher.fetch(&Source::Http(url)).await.unwrap();
        assert_eq!(std::fs::read(&fetched.path).unwrap(), b"video");
        assert!(started.elapsed() >= Duration::from_secs(1), "retried after {:?}, before the 1 s Retry-After", started.elapsed());
    }

    #[tokio::test]
    async fn a_missing_file_is_not_retried() {
        let missing = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
        let url = serve(vec![missing]);
        let fetcher = Fetcher::new(SourcesConfig { http_attempts: 3, ..SourcesConfig::default() }, std::env::temp_dir()).unwrap();
        let err = fetcher.fetch(&Source::Http(url)).await.unwrap_err();
        assert_eq!(err.kind, FailureKind::Unreachable);
        assert!(err.message.contains("404") && !err.message.contains("attempts"), "{}", err.message);
    }
}
