//! Model files shipped inside PyPI wheels (PP-OCR's detector is in `rapidocr-onnxruntime`): the
//! package index's JSON API names the wheel and its SHA-256; the wheel is downloaded (resumable,
//! checked) and the member unpacked. `CLIPLINE_PYPI_URL` points at another index (a mirror).

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use serde::Deserialize;

use clipline_core::http::{Attempt, Exhausted};

use crate::download::{Checksum, Downloader};

/// The public index.
pub const DEFAULT_INDEX: &str = "https://pypi.org";

#[derive(Deserialize)]
struct Release {
    urls: Vec<ReleaseFile>,
}

#[derive(Deserialize)]
struct ReleaseFile {
    filename: String,
    url: String,
    packagetype: String,
    digests: Digests,
}

#[derive(Deserialize)]
struct Digests {
    sha256: String,
}

/// The index from `CLIPLINE_PYPI_URL`, else PyPI.
pub fn index_from_env() -> String {
    clipline_core::env::text(clipline_core::env::CLIPLINE_PYPI_URL).unwrap_or_else(|| DEFAULT_INDEX.into())
}

/// Download `package==version`'s wheel into `downloads` (where an interrupted download
/// resumes), unpack `member` to `dest`, and delete the wheel.
///
/// # Errors
/// When the index cannot be reached, has no wheel of that version, the wheel fails its
/// checksum or lacks the member.
pub async fn fetch_member(
    downloader: &Downloader,
    index: &str,
    (package, version, member): (&str, &str, &str),
    downloads: &Path,
    dest: &Path,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let url = format!("{}/pypi/{package}/{version}/json", index.trim_end_matches('/'));
    let ask = |_| async {
        let response = tokio::time::timeout(Duration::from_secs(60), downloader.http().get(&url).send())
            .await
            .map_err(|_| Attempt::Retry { reason: "the package index did not answer in 60 s".into(), after: None })?
            .map_err(|e| Attempt::transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Attempt::refused(status, response.headers(), |reason| anyhow::anyhow!("{package} {version}: the package index answered {reason} ({index})")));
        }
        response.bytes().await.map_err(|e| Attempt::transport(&e))
    };
    let body = match downloader.retry().run(&format!("{package} {version}"), ask).await {
        Ok(body) => body,
        Err(Exhausted::Failed(e)) => return Err(e),
        Err(Exhausted::GaveUp { last, attempts }) => bail!("{package} {version}: {last} ({index}, after {attempts} attempts)"),
    };
    let release: Release = serde_json::from_slice(&body).with_context(|| format!("{package} {version}: unreadable answer from {index}"))?;
    let wheel = release
        .urls
        .into_iter()
        .find(|f| f.packagetype == "bdist_wheel")
        .with_context(|| format!("{package} {version} has no wheel on {index}"))?;
    let wheel_path = downloads.join(&wheel.filename);
    downloader.fetch(&wheel.url, &wheel_path, &Checksum::Sha256(wheel.digests.sha256.to_lowercase()), &wheel.filename, bar).await?;
    let (archive, member, dest) = (wheel_path.clone(), member.to_string(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || unpack(&archive, &member, &dest)).await??;
    // The member is what is kept; the wheel goes.
    std::fs::remove_file(&wheel_path).ok();
    Ok(())
}

/// Copy one member of a zip archive to `dest` (through a temporary name).
fn unpack(archive: &Path, member: &str, dest: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{} is not a readable wheel", archive.display()))?;
    let mut entry = zip.by_name(member).with_context(|| format!("{} has no {member}", archive.display()))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).with_context(|| format!("cannot unpack {member} from {}", archive.display()))?;
    let staging = crate::download::part_path(dest);
    std::fs::write(&staging, &bytes).with_context(|| format!("cannot write {}", staging.display()))?;
    std::fs::rename(&staging, dest).with_context(|| format!("cannot move {} into place", dest.display()))?;
    Ok(())
}
