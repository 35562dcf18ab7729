//! `clipline doctor`: what clipline found on this machine, with versions, and the fix for what is
//! missing: ffmpeg, ONNX Runtime (library, version, execution providers), the bundled caption
//! and embedding models, the text detector, and the output store when given.

use bytes::Bytes;
use clipline_core::cache::cache_dir;
use clipline_core::storage::Store;

use clipline_models::{self as models, Role};
use clipline_pipeline::tools::Tools;

/// One line of the report.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

/// Run the checks, print them; returns whether everything needed was found.
pub async fn doctor(output: Option<&str>) -> bool {
    let mut checks = Vec::new();
    match Tools::locate() {
        Ok(tools) => {
            for (name, path) in [("ffmpeg", &tools.ffmpeg), ("ffprobe", &tools.ffprobe)] {
                let version = Tools::version(path).unwrap_or_else(|| "version unknown".into());
                checks.push(Check { name, ok: true, detail: format!("{} ({version})", path.display()) });
            }
            let encoders = std::process::Command::new(&tools.ffmpeg).args(["-hide_banner", "-encoders"]).output();
            let has_x264 = encoders.map(|o| String::from_utf8_lossy(&o.stdout).contains("libx264")).unwrap_or(false);
            checks.push(Check {
                name: "libx264",
                ok: has_x264,
                detail: if has_x264 { "available for clip files".into() } else { "missing: install Debian's ffmpeg, or set clips.codec".into() },
            });
        }
        Err(e) => checks.push(Check { name: "ffmpeg", ok: false, detail: e.to_string() }),
    }
    if let Some(uri) = output {
        checks.push(storage_check(uri).await);
    }
    checks.push(onnx_check());
    checks.push(bundled_model_check());
    checks.push(bundled_embedders_check());
    checks.push(text_detector_check());
    checks.push(shot_detector_check());
    for c in &checks {
        println!("{:<12} {:<4} {}", c.name, if c.ok { "ok" } else { "FAIL" }, c.detail);
    }
    checks.iter().all(|c| c.ok)
}

fn onnx_check() -> Check {
    match clipline_onnx::runtime() {
        Ok(rt) => Check {
            name: "onnxruntime",
            ok: true,
            detail: format!("{} (version {}; execution providers: {})", rt.library.display(), rt.version, rt.providers.join(", ")),
        },
        Err(e) => Check { name: "onnxruntime", ok: false, detail: e.to_string() },
    }
}

fn bundled_model_check() -> Check {
    let loaded = models::resolve(clipline_captioner::bundled::TINY_CAPTIONER, Role::Captioner, &[clipline_captioner::bundled::BUNDLED], &cache_dir(), "caption.model")
        .and_then(|dir| Ok(clipline_captioner::model_files::ModelFiles::open(&dir)?));
    match loaded {
        Ok(files) => Check { name: "captioner", ok: true, detail: format!("{} at {} ({:?} layout)", clipline_captioner::bundled::TINY_CAPTIONER, files.dir.display(), files.layout) },
        Err(e) => Check { name: "captioner", ok: false, detail: e.to_string() },
    }
}

/// The bundled VAEs and text encoder, loaded into ONNX Runtime sessions.
fn bundled_embedders_check() -> Check {
    use clipline_embedder::{bundled, TextEncoder, Vae};
    let options = clipline_onnx::SessionOptions::default();
    let load = |model: clipline_onnx::model_dir::Bundled| -> Result<String, String> {
        let dir = model.materialize(&cache_dir()).map_err(|e| format!("bundled:{}: {e}", model.name))?;
        let id = if model.name == bundled::TINY_TEXT_ENCODER.name {
            TextEncoder::load(&dir, 16, &options).map(|m| m.model_id)
        } else {
            Vae::load(&dir, &options).map(|m| m.model_id)
        };
        id.map(|id| format!("bundled:{} ({id})", model.name)).map_err(|e| format!("bundled:{}: {e}", model.name))
    };
    match bundled::ALL.into_iter().map(load).collect::<Result<Vec<_>, _>>() {
        Ok(models) => Check { name: "embedders", ok: true, detail: models.join(", ") },
        Err(e) => Check { name: "embedders", ok: false, detail: e },
    }
}

/// The text detector the demo config names, loaded into a session.
fn text_detector_check() -> Check {
    use clipline_captioner::text_area::{TextDetector, TextSettings};
    let loaded = models::resolve("ppocr-v4-det", Role::TextDetector, &[], &cache_dir(), "caption.text_detector").and_then(|path| {
            TextDetector::open(&path, &clipline_onnx::SessionOptions::default(), TextSettings::default())?;
            Ok(path)
        });
    match loaded {
        Ok(path) => Check { name: "text-detect", ok: true, detail: format!("ppocr-v4-det at {}", path.display()) },
        Err(e) => Check { name: "text-detect", ok: false, detail: format!("{e:#} (scripts/setup.sh installs it)") },
    }
}

/// TransNetV2, the default shot detector, loaded into a session.
fn shot_detector_check() -> Check {
    use clipline_pipeline::detect::transnet::TransNet;
    let loaded = models::resolve("transnetv2", Role::ShotDetector, &[], &cache_dir(), "detect.model").and_then(|dir| {
        TransNet::open(&dir, &clipline_onnx::SessionOptions::default())?;
        Ok(dir)
    });
    match loaded {
        Ok(dir) => Check { name: "shot-detect", ok: true, detail: format!("transnetv2 at {}", dir.display()) },
        Err(e) => Check { name: "shot-detect", ok: false, detail: format!("{e:#} (scripts/setup.sh installs it; `clipline run --detect adaptive` needs no model)") },
    }
}

async fn storage_check(uri: &str) -> Check {
    let probe = async {
        let store = Store::open(uri)?;
        let key = "_clipline_doctor_probe";
        store.put(key, Bytes::from_static(b"ok")).await?;
        let back = store.get(key).await?;
        store.delete(key).await?;
        Ok::<_, clipline_core::Error>((store.uri().to_string(), back.as_ref() == b"ok"))
    };
    match probe.await {
        Ok((root, true)) => Check { name: "storage", ok: true, detail: format!("{root} writable and readable") },
        Ok((root, false)) => Check { name: "storage", ok: false, detail: format!("{root} returned other bytes than written") },
        Err(e) => Check { name: "storage", ok: false, detail: e.to_string() },
    }
}
