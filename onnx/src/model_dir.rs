//! Model directories: naming a model by its files, and the tiny models bundled in the binary
//! (so the demo and a fresh machine run every model stage without a download).

use std::path::{Path, PathBuf};

/// Prefix of bundled model names in configs (`bundled:tiny-vae`).
pub const BUNDLED_PREFIX: &str = "bundled:";

/// A model whose files are compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    /// Its name after `bundled:`.
    pub name: &'static str,
    /// Its files: name and bytes; the first is the one whose presence marks a complete copy.
    pub files: &'static [(&'static str, &'static [u8])],
}

impl Bundled {
    /// Write the files under `cache/models/<name>-<hash>` (once; concurrent first uses are
    /// safe) and return that directory.
    ///
    /// # Errors
    /// When the directory cannot be written.
    pub fn materialize(&self, cache: &Path) -> std::io::Result<PathBuf> {
        let mut hasher = blake3::Hasher::new();
        for (name, bytes) in self.files {
            hasher.update(name.as_bytes());
            hasher.update(bytes);
        }
        let models = cache.join("models");
        let dir = models.join(format!("{}-{}", self.name, &hasher.finalize().to_hex()[..12]));
        let complete = |d: &Path| d.join(self.files[0].0).is_file();
        if complete(&dir) {
            return Ok(dir);
        }
        let staging = models.join(format!(".staging-{}-{}", self.name, std::process::id()));
        std::fs::create_dir_all(&staging)?;
        for (name, bytes) in self.files {
            std::fs::write(staging.join(name), bytes)?;
        }
        match std::fs::rename(&staging, &dir) {
            Err(_) if complete(&dir) => std::fs::remove_dir_all(&staging)?,
            other => other?,
        }
        Ok(dir)
    }
}

/// The directory a config's model field names: `bundled:NAME` (one of `bundled`, written under
/// `cache` on first use) or a directory path. `what` names the field in errors.
///
/// # Errors
/// A message naming the field when the name is neither, or a bundled model cannot be written.
pub fn resolve_model_dir(spec: &str, bundled: &[Bundled], cache: &Path, what: &str) -> Result<PathBuf, String> {
    if let Some(name) = spec.strip_prefix(BUNDLED_PREFIX) {
        let model = bundled.iter().find(|b| b.name == name).ok_or_else(|| {
            let known: Vec<String> = bundled.iter().map(|b| format!("{BUNDLED_PREFIX}{}", b.name)).collect();
            format!("{what} {spec:?} is not a bundled model; bundled: {}", known.join(", "))
        })?;
        return model.materialize(cache).map_err(|e| format!("cannot write the bundled model {spec} under {}: {e}", cache.display()));
    }
    let dir = PathBuf::from(spec);
    if dir.is_dir() {
        Ok(dir)
    } else {
        let known: Vec<String> = bundled.iter().map(|b| format!("{BUNDLED_PREFIX}{}", b.name)).collect();
        Err(format!("{what} {spec:?} is neither a model directory nor one of {}", known.join(", ")))
    }
}

/// `name@hash` of a model: the directory's name ([`model_name`]) and the first 12 hex digits of
/// the BLAKE3 hash of `files` (its graphs and tokenizer), so a changed model gets a new id.
///
/// # Errors
/// When a file cannot be read, naming it.
pub fn model_id(dir: &Path, files: &[&Path]) -> Result<String, String> {
    let mut hasher = blake3::Hasher::new();
    for path in files {
        let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        hasher.update_reader(&mut file).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(format!("{}@{}", model_name(dir), &hasher.finalize().to_hex()[..12]))
}

/// What a model directory is called: its name, or for a snapshot of the Hugging Face hub cache
/// (`models--OWNER--NAME/snapshots/COMMIT`) the repository's name, not the commit.
fn model_name(dir: &Path) -> String {
    let name = |p: Option<&Path>| p.and_then(Path::file_name).map(|n| n.to_string_lossy().to_string());
    let snapshots = dir.parent();
    let repo = snapshots.and_then(Path::parent);
    match (name(snapshots).as_deref(), name(repo)) {
        (Some("snapshots"), Some(repo)) if repo.starts_with("models--") => repo.rsplit("--").next().unwrap_or(&repo).to_string(),
        _ => name(Some(dir)).unwrap_or_else(|| "model".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_cache_snapshots_are_named_by_their_repository() {
        assert_eq!(model_name(Path::new("/c/hub/models--Xenova--vit-gpt2-image-captioning/snapshots/0123abcd")), "vit-gpt2-image-captioning");
        assert_eq!(model_name(Path::new("/c/models/tiny-captioner-5e1f0a9b2c3d")), "tiny-captioner-5e1f0a9b2c3d");
        assert_eq!(model_name(Path::new("/c/other/snapshots/x")), "x");
    }
}
