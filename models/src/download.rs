//! One file over HTTP into the model cache: resumable, checksummed, with timeouts and the
//! retries of [`clipline_core::http`]. The bytes go to `NAME.part` beside the destination; an interrupted download goes on
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

use clipline_core::http::{self, Attempt, Deadline, Exhausted, RetryPolicy};

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
    /// The digest, lowercase hex: the name the hub cache gives the file's blob.
    pub fn hex(&self) -> &str {
        match self {
            Checksum::Sha256(hex) | Checksum::GitBlob(hex) => hex,
        }
    }

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
    retry: RetryPolicy,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches a log line.
        f.debug_struct("Downloader").field("token", &self.token.as_ref().map(|_| "<set>")).field("retry", &self.retry).finish()
    }
}

impl Downloader {
    /// A client with connect and read timeouts; `token` is sent as a bearer token.
    ///
    /// # Errors
    /// When the TLS backend cannot start.
    pub fn new(token: Option<String>, attempts: u32, read_timeout: Duration) -> anyhow::Result<Self> {
        let http = http::client(Deadline::Read(read_timeout)).context("cannot start the HTTP client")?;
        Ok(Self { http, token, retry: RetryPolicy::new(attempts) })
    }

    /// How requests are retried.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
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
        match self.retry.run(name, |_| self.fetch_once(url, &part, name, bar)).await {
            Ok(()) => {}
            Err(Exhausted::Failed(e)) => return Err(e),
            Err(Exhausted::GaveUp { last, attempts }) => bail!("{name}: {last} (after {attempts} attempts; run the command again to resume)"),
        }
        let got = checksum.of_file(&part)?;
        if got != *checksum {
            std::fs::remove_file(&part).ok();
            bail!("{name}: checksum mismatch (expected {checksum}, got {got}); the partial file was removed, pull again");
        }
        std::fs::rename(&part, dest).with_context(|| format!("cannot move {} into place", part.display()))
    }

    /// One request, appending to `part` from its current length.
    async fn fetch_once(&self, url: &str, part: &Path, name: &str, bar: &ProgressBar) -> Result<(), Attempt<anyhow::Error>> {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut request = self.request(reqwest::Method::GET, url);
        if have > 0 {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let mut response = request.send().await.map_err(|e| Attempt::transport(&e))?;
        let status = response.status();
        let append = match status {
            StatusCode::PARTIAL_CONTENT => true,
            StatusCode::OK => false,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The part is already whole (or longer than the file): start over.
                std::fs::remove_file(part).ok();
                return Err(Attempt::Retry { reason: "the partial file did not fit the remote one; starting over".into(), after: None });
            }
            s => {
                let hint = if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN { " (a gated or private model needs HF_TOKEN)" } else { "" };
                return Err(Attempt::refused(s, response.headers(), |reason| anyhow::anyhow!("{name}: {reason}{hint}")));
            }
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(part)
            .map_err(|e| Attempt::Fail(anyhow::anyhow!("cannot write {}: {e}", part.display())))?;
        let start = if append { have } else { 0 };
        bar.set_length(start + response.content_length().unwrap_or(0));
        bar.set_position(start);
        bar.set_message(name.to_string());
        while let Some(chunk) = response.chunk().await.map_err(|e| Attempt::transport(&e))? {
            file.write_all(&chunk).map_err(|e| Attempt::Fail(anyhow::anyhow!("cannot write {}: {e}", part.display())))?;
            bar.inc(chunk.len() as u64);
        }
        file.sync_all().map_err(|e| Attempt::Fail(anyhow::anyhow!("cannot write {}: {e}", part.display())))?;
        Ok(())
    }
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
