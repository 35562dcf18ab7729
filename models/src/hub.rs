//! Files of a Hugging Face hub repository, as the hub serves them: `HEAD
//! {endpoint}/{repo}/resolve/{revision}/{path}` answers (before any redirect to the CDN) with the
//! commit the revision points at and the file's checksum — `X-Linked-Etag`, the SHA-256 of a Git
//! LFS object, or `ETag`, the Git blob id of a small file — and the `GET` of the same address
//! gives the bytes. `HF_ENDPOINT` and `HF_TOKEN` are honoured as the hub's own clients do.
//!
//! Why not the `hf-hub` crate: 1.0 pulls the Xet storage client (a large tree for a 2-core CI),
//! and 0.5 does not verify what it downloads; this module is the part clipline needs.

use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::header::HeaderMap;

use clipline_core::http::{self, Attempt, Deadline, Exhausted, RetryPolicy};

use crate::download::Checksum;

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A file's metadata at a revision.
#[derive(Debug, Clone)]
pub struct HubFile {
    /// Where to GET it.
    pub url: String,
    /// The commit the revision resolved to.
    pub commit: Option<String>,
    /// What its bytes must hash to.
    pub checksum: Checksum,
}

/// A hub client.
pub struct Hub {
    endpoint: String,
    head: reqwest::Client,
    token: Option<String>,
    retry: RetryPolicy,
}

impl Hub {
    /// A client for `endpoint` (no trailing slash needed).
    ///
    /// # Errors
    /// When the HTTP client cannot start.
    pub fn new(endpoint: &str, token: Option<String>, timeout: Duration, retry: RetryPolicy) -> anyhow::Result<Self> {
        let head = http::builder(Deadline::Total(timeout)).redirect(reqwest::redirect::Policy::none()).build().context("cannot start the HTTP client")?;
        Ok(Self { endpoint: endpoint.trim_end_matches('/').to_string(), head, token, retry })
    }

    /// The endpoint and token from `HF_ENDPOINT` and `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`).
    pub fn from_env() -> (String, Option<String>) {
        use clipline_core::env;
        (env::text(env::HF_ENDPOINT).unwrap_or_else(|| DEFAULT_ENDPOINT.into()), env::hf_token())
    }

    /// The address of a file.
    pub fn url(&self, repo: &str, revision: &str, path: &str) -> String {
        format!("{}/{repo}/resolve/{revision}/{path}", self.endpoint)
    }

    /// Metadata of `path` in `repo` at `revision`.
    ///
    /// # Errors
    /// When the hub cannot be reached or does not have the file, or gives no checksum.
    pub async fn file(&self, repo: &str, revision: &str, path: &str) -> anyhow::Result<HubFile> {
        let url = self.url(repo, revision, path);
        let ask = |_| async {
            let mut request = self.head.head(&url);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|e| Attempt::transport(&e))?;
            let status = response.status();
            if status.is_success() || status.is_redirection() {
                return Ok(response.headers().clone());
            }
            let hint = match status.as_u16() {
                401 | 403 => " (a gated or private model needs HF_TOKEN)",
                404 => " (no such repository, revision or file)",
                _ => "",
            };
            Err(Attempt::refused(status, response.headers(), |reason| anyhow::anyhow!("{repo}/{path} at {revision}: {reason}{hint}")))
        };
        let headers = match self.retry.run(&format!("{repo}/{path}"), ask).await {
            Ok(headers) => headers,
            Err(Exhausted::Failed(e)) => return Err(e),
            Err(Exhausted::GaveUp { last, attempts }) => bail!("{repo}/{path}: {last} ({}, after {attempts} attempts)", self.endpoint),
        };
        let checksum = checksum(&headers).with_context(|| format!("{repo}/{path}: the hub gave no ETag to check the download against"))?;
        Ok(HubFile { url, commit: header(&headers, "x-repo-commit"), checksum })
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim_start_matches("W/").trim_matches('"').to_string())
}

/// The checksum the hub states: the LFS object's SHA-256, else the Git blob id.
fn checksum(headers: &HeaderMap) -> Option<Checksum> {
    let is_hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(sha) = header(headers, "x-linked-etag").filter(|s| is_hex(s, 64)) {
        return Some(Checksum::Sha256(sha.to_lowercase()));
    }
    let etag = header(headers, "etag")?;
    if is_hex(&etag, 64) {
        Some(Checksum::Sha256(etag.to_lowercase()))
    } else if is_hex(&etag, 40) {
        Some(Checksum::GitBlob(etag.to_lowercase()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfs_etags_win_over_blob_ids() {
        let mut h = HeaderMap::new();
        h.insert("etag", "\"ce013625030ba8dba906f756967f9e9ca394464a\"".parse().unwrap());
        assert_eq!(checksum(&h), Some(Checksum::GitBlob("ce013625030ba8dba906f756967f9e9ca394464a".into())));
        let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        h.insert("x-linked-etag", format!("\"{sha}\"").parse().unwrap());
        assert_eq!(checksum(&h), Some(Checksum::Sha256(sha.into())));
        assert_eq!(checksum(&HeaderMap::new()), None);
    }
}
