//! HTTP inputs are downloaded, hashed and cut like local files; the same bytes from a URL and a
//! path are one video.

use std::path::Path;
use std::process::{Command, Stdio};

use clipline_core::manifest::{ClipRow, VideoRow, VideoStatus};

use crate::support::{clipline, lavfi_video, output, rows, LocalServer};

/// Python's file server on a free port, serving `DIR/served/clip.mp4`: a test video of `frames`.
fn serve_video(dir: &Path, frames: u32) -> LocalServer {
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    lavfi_video(&served.join("clip.mp4"), "testsrc2", frames);
    LocalServer::start("http.server", |port| {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"]).arg(served).stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    })
}

#[test]
fn http_inputs_are_fetched_and_recognised_as_the_same_video() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_video(dir.path(), 60);
    let url = format!("{}/clip.mp4", server.url());
    let out_dir = dir.path().join("out");
    let out = output(clipline().args(["run", "--input", &url, "--input"]).arg(dir.path().join("served/clip.mp4")).arg("--output").arg(&out_dir));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let videos: Vec<VideoRow> = rows(&out_dir);
    let by_url = videos.iter().find(|v| v.source_uri == url).unwrap();
    let by_path = videos.iter().find(|v| v.source_uri.starts_with("file://")).unwrap();
    assert_eq!(by_url.video_id, by_path.video_id, "same bytes, same id");
    assert_eq!(by_path.status, VideoStatus::Ok, "file:// sorts first and is processed");
    assert_eq!((by_url.status.as_str(), by_url.duplicate_of.as_deref()), ("duplicate", Some(by_path.source_uri.as_str())));
    let clips: Vec<ClipRow> = rows(&out_dir);
    assert_eq!(clips.len(), 1);
    assert_eq!(clips[0].source_uri, by_path.source_uri);
}

#[test]
fn credentials_in_input_urls_reach_neither_manifests_nor_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_video(dir.path(), 40);
    let port = server.port;
    let url = format!("http://reader:hunter2@127.0.0.1:{port}/clip.mp4?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=deadbeef&part=1");
    let missing = format!("http://reader:hunter2@127.0.0.1:{port}/gone.mp4?X-Amz-Signature=deadbeef");
    let out_dir = dir.path().join("out");
    let out = output(clipline().env("RUST_LOG", "debug").args(["run", "--input", &url, "--input", &missing]).arg("--output").arg(&out_dir));
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "one input fetched, one failed: {logs}");
    let videos: Vec<VideoRow> = rows(&out_dir);
    let everything = format!("{videos:?}{logs}{}", std::fs::read_to_string(out_dir.join("manifests/_commits").read_dir().unwrap().next().unwrap().unwrap().path()).unwrap());
    for secret in ["hunter2", "AKIDSECRET", "deadbeef"] {
        assert!(!everything.contains(secret), "{secret} leaked: {everything}");
    }
    let ok = videos.iter().find(|v| v.status == VideoStatus::Ok).expect("the URL with credentials was fetched");
    assert_eq!(ok.source_uri, format!("http://reader:***@127.0.0.1:{port}/clip.mp4?X-Amz-Credential=***&X-Amz-Signature=***&part=1"));
    let failed = videos.iter().find(|v| v.status == VideoStatus::Failed).unwrap();
    assert!(failed.error.as_deref().unwrap_or_default().contains("gone.mp4"), "{failed:?}");
}
