//! One file over HTTP into the model cache: resumable, checksummed, with timeouts and bounded
//! retries. The bytes go to `NAME.part` beside the destination; an interrupted download goes on
//! from where it stopped with a `Range` request, and the file is renamed into place only once its
//! checksum matches, so a half-written or corrupted file never passes for a model.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use reqwest::header::{AUTHORIZATION, RANGE};
use reqwest::StatusCode;
use sha1::Digest;

use crate::sources::without_url as describe;

/// What a downloaded file must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-256 of the content (Git LFS objects, PyPI files), lowercase hex.
    Sha256(String),
    /// Git's blob id: SHA-1 of `blob LEN\0` and the content (small files kept in Git), hex.
    GitBlob(String),
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Checksum::Sha256(hex) => write!(f, "sha256:{hex}"),
            Checksum::GitBlob(hex) => write!(f, "git-blob:{hex}"),
        }
    }
}

impl Checksum {
    /// Hash `path` the same way.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn of_file(&self, path: &Path) -> std::io::Result<Checksum> {
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut feed = |update: &mut dyn FnMut(&[u8])| -> std::io::Result<()> {
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                update(&buf[..n]);
            }
        };
        Ok(match self {
            Checksum::Sha256(_) => {
                let mut h = sha2::Sha256::new();
                feed(&mut |b| h.update(b))?;
                Checksum::Sha256(format!("{:x}", h.finalize()))
            }
            Checksum::GitBlob(_) => {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {}\0", std::fs::metadata(path)?.len()).as_bytes());
                feed(&mut |b| h.update(b))?;
                Checksum::GitBlob(format!("{:x}", h.finalize()))
            }
        })
    }
}

/// An HTTP client for model downloads.
#[derive(Clone)]
pub struct Downloader {
    http: reqwest::Client,
    token: Option<String>,
    attempts: u32,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches a log line.
        f.debug_struct("Downloader").field("token", &self.token.as_ref().map(|_| "<set>")).field("attempts", &self.attempts).finish()
    }
}

impl Downloader {
    /// A client with connect and read timeouts; `token` is sent as a bearer token.
    ///
    /// # Errors
    /// When the TLS backend cannot start.
    pub fn new(token: Option<String>, attempts: u32, read_timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(read_timeout)
            .user_agent(concat!("clipline/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot start the HTTP client")?;
        Ok(Self { http, token, attempts: attempts.max(1) })
    }

    /// The underlying client, for metadata requests.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request with the token attached.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }

    /// Download `url` to `dest` unless it is there with the right checksum; resumes a `.part`
    /// file left by an earlier attempt or run. `name` is what errors and the bar call it.
    ///
    /// # Errors
    /// After the last attempt, or at once for a checksum mismatch or an HTTP client error.
    pub async fn fetch(&self, url: &str, dest: &Path, checksum: &Checksum, name: &str, bar: &ProgressBar) -> anyhow::Result<()> {
        if dest.is_file() && checksum.of_file(dest)? == *checksum {
            return Ok(());
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let part = part_path(dest);
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tracing::warn!(file = name, attempt, "download interrupted: {last}; resuming");
                tokio::time::sleep(Duration::from_millis(500 << attempt.min(5))).await;
            }
            match self.fetch_once(url, &part, name, bar).await {
                Ok(()) => {
                    let got = checksum.of_file(&part)?;
                    if got != *checksum {
                        std::fs::remove_file(&part).ok();
                        bail!("{name}: checksum mismatch (expected {checksum}, got {got}); the partial file was removed, pull again");
                    }
                    std::fs::rename(&part, dest).with_context(|| format!("cannot move {} into place", part.display()))?;
                    return Ok(());
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(e)) => last = e,
            }
        }
        bail!("{name}: {last} (after {} attempts; run the command again to resume)", self.attempts)
    }

    /// One request, appending to `part` from its current length.
    async fn fetch_once(&self, url: &str, part: &Path, name: &str, bar: &ProgressBar) -> Result<(), Failure> {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut request = self.request(reqwest::Method::GET, url);
        if have > 0 {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let mut response = request.send().await.map_err(|e| Failure::Transient(describe(&e)))?;
        let status = response.status();
        let append = match status {
            StatusCode::PARTIAL_CONTENT => true,
            StatusCode::OK => false,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The part is already whole (or longer than the file): start over.
                std::fs::remove_file(part).ok();
                return Err(Failure::Transient("the partial file did not fit the remote one; starting over".into()));
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => return Err(Failure::Transient(format!("HTTP {s}"))),
            s => {
                let hint = if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN { " (a gated or private model needs HF_TOKEN)" } else { "" };
                return Err(Failure::Fatal(anyhow::anyhow!("{name}: HTTP {s}{hint}")));
            }
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(part)
            .map_err(|e| Failure::Fatal(anyhow::anyhow!("cannot write {}: {e}", part.display())))?;
        let start = if append { have } else { 0 };
        bar.set_length(start + response.content_length().unwrap_or(0));
        bar.set_position(start);
        bar.set_message(name.to_string());
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::Transient(describe(&e)))? {
            file.write_all(&chunk).map_err(|e| Failure::Fatal(anyhow::anyhow!("cannot write {}: {e}", part.display())))?;
            bar.inc(chunk.len() as u64);
        }
        file.sync_all().map_err(|e| Failure::Fatal(anyhow::anyhow!("cannot write {}: {e}", part.display())))?;
        Ok(())
    }
}

enum Failure {
    Transient(String),
    Fatal(anyhow::Error),
}

/// Where a download in progress lives.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_ids_match_git() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello");
        std::fs::write(&path, "hello\n").unwrap();
        // `echo hello | git hash-object --stdin`
        let want = Checksum::GitBlob("ce013625030ba8dba906f756967f9e9ca394464a".into());
        assert_eq!(want.of_file(&path).unwrap(), want);
        let sha = Checksum::Sha256(String::new()).of_file(&path).unwrap();
        assert_eq!(sha, Checksum::Sha256("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into()));
    }
}
