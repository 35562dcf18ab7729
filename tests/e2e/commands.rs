//! The small commands: `probe` reports what a file is, `doctor` what clipline found.

use serde_json::Value;

use crate::support::{clipline, lavfi_video, output};

#[test]
fn probe_reports_the_stream_and_frame_counts_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    lavfi_video(&video, "testsrc2", 37);
    let out = output(clipline().arg("probe").arg(&video));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["container_frames"], 37);
    assert_eq!(report["probe"]["video"]["width"], 192);
    assert_eq!(report["probe"]["video"]["codec"], "h264");
    assert_eq!(report["variable_fps"], false);
    assert_eq!(report["video_id"].as_str().unwrap().len(), 32);
}

#[test]
fn probe_of_a_text_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video").unwrap();
    let out = output(clipline().arg("probe").arg(&text));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("notes.mp4") && stderr.contains("not a readable video"), "{stderr}");
}

#[test]
fn doctor_reports_ffmpeg_and_a_writable_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(clipline().args(["doctor", "--output"]).arg(dir.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ffmpeg") && stdout.contains("ffmpeg version"), "{stdout}");
    assert!(stdout.contains("writable and readable"), "{stdout}");
    let onnx = stdout.lines().find(|l| l.starts_with("onnxruntime")).unwrap_or_default();
    assert!(onnx.contains(" ok ") && onnx.contains("libonnxruntime.so") && onnx.contains("version 1.31.1") && onnx.contains("CPU"), "{stdout}");
    assert!(stdout.contains("bundled:tiny-captioner") && stdout.contains("bundled:tiny-vae") && stdout.contains("bundled:tiny-text-encoder"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("text-detect") && l.contains(" ok ") && l.contains("det.onnx")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("shot-detect") && l.contains(" ok ") && l.contains("transnetv2")), "{stdout}");
    let wrong = output(clipline().env("CLIPLINE_ORT_LIB", dir.path().join("libonnxruntime.so.9")).arg("doctor"));
    let text = String::from_utf8_lossy(&wrong.stdout);
    assert!(!wrong.status.success() && text.contains("libonnxruntime.so.9") && text.contains("1.31.1"), "{text}");
    let missing = output(clipline().env("CLIPLINE_FFMPEG", dir.path().join("nope")).arg("doctor"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains("apt-get install ffmpeg"));
}
