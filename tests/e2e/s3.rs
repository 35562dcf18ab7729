//! Ingest into a real S3 server on 127.0.0.1 gives the same rows as ingest into local files.

use clipline_core::manifest::{decode, ClipRow, ShotRow};
use clipline_core::storage::Store;

use crate::support::{clipline, lavfi_video, output, rows, S3Server};

#[tokio::test(flavor = "multi_thread")]
async fn ingest_into_s3_equals_ingest_into_local_files() {
    let Some(server) = S3Server::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    lavfi_video(&input.join("a.mp4"), "testsrc2", 50);
    lavfi_video(&input.join("b.mp4"), "mandelbrot", 30);

    let local = dir.path().join("local");
    let out = output(clipline().arg("run").arg("-i").arg(&input).arg("-o").arg(&local));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let uri = format!("s3://{}/runs/one", server.bucket);
    let out = output(clipline().envs(server.env()).arg("run").arg("-i").arg(&input).args(["-o", &uri]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doctor = output(clipline().envs(server.env()).args(["doctor", "--output", &uri]));
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("writable and readable"));

    let store = Store::open_with(&uri, server.options()).unwrap();
    let mut s3_clips = Vec::new();
    for entry in store.list("manifests/clips").await.unwrap() {
        s3_clips.extend(decode::<ClipRow>(store.get(&entry.key).await.unwrap(), &entry.key).unwrap());
    }
    let mut s3_shots = Vec::new();
    for entry in store.list("manifests/shots").await.unwrap() {
        s3_shots.extend(decode::<ShotRow>(store.get(&entry.key).await.unwrap(), &entry.key).unwrap());
    }
    let local_clips: Vec<ClipRow> = rows(&local);
    let local_shots: Vec<ShotRow> = rows(&local);
    assert_eq!(s3_shots, local_shots);
    assert_eq!(s3_clips.len(), local_clips.len());
    for (s3, local) in s3_clips.iter().zip(&local_clips) {
        assert_eq!((&s3.clip_id, s3.start_frame, s3.end_frame, &s3.phash), (&local.clip_id, local.start_frame, local.end_frame, &local.phash));
        let key = s3.clip_uri.as_deref().unwrap().strip_prefix(&format!("{uri}/")).unwrap();
        assert!(store.exists(key).await.unwrap(), "{key} uploaded");
    }
}
