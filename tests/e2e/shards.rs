//! The embed and shard stages inside `clipline run`: one video and one image sample per clip in
//! content-named shards, every sample readable by id and bit-exact through the reader, `shards
//! verify` catching a flipped bit, resume and orphan cleanup, and clips that fit no bucket.

use std::path::Path;

use clipline_core::manifest::{ClipRow, ClipStatus, SampleRow, SampleStatus, ShardRow};
use clipline_core::storage::Store;
use clipline_shard::{Dataset, SampleDecoder};

use crate::support::{clipline, ingest, lavfi_video, output, rows, tree};

const EMBEDDED: &str = "\
[clips]
write_middle_frames = false

[caption]
model = \"bundled:tiny-captioner\"

[embed]
vae = \"bundled:tiny-vae\"
text_encoder = \"bundled:tiny-text-encoder\"

[embed.buckets]
resolutions = [{ name = \"64p\", height = 64 }]
aspect_ratios = [\"1:1\", \"16:9\"]
frame_counts = [9, 17]
target_fps = 12.0
multiple_of = 16
image_samples = true

[shards]
target_mib = 1
";

fn inputs(dir: &Path) -> std::path::PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    lavfi_video(&input.join("a.mp4"), "testsrc2", 100);
    lavfi_video(&input.join("b.mp4"), "mandelbrot", 60);
    input
}

fn verify(out: &Path) -> (bool, String) {
    let result = output(clipline().args(["shards", "verify"]).arg(out));
    (result.status.success(), String::from_utf8_lossy(&result.stdout).to_string())
}

#[test]
fn every_clip_gets_a_video_and_an_image_sample_read_back_through_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let out = ingest(dir.path(), EMBEDDED, &inputs(dir.path()));
    let clips: Vec<ClipRow> = rows(&out);
    let samples: Vec<SampleRow> = rows(&out);
    let shards: Vec<ShardRow> = rows(&out);
    let ok_clips = clips.iter().filter(|c| c.status == ClipStatus::Ok).count();
    assert!(ok_clips >= 2);
    assert_eq!(samples.len(), 2 * ok_clips, "a video and an image sample per clip");
    for s in &samples {
        assert_eq!(s.status, SampleStatus::Ok, "{:?}", s.error);
        let frames = if s.kind == "image" { 1 } else { s.frames };
        assert!(s.bucket.starts_with(&format!("64p-{frames}f-")), "{}", s.bucket);
        assert_eq!(s.latent_shape, vec![frames, 4, s.height / 8, s.width / 8]);
        assert_eq!(s.text_shape.len(), 2);
        assert!(s.shard.as_deref().is_some_and(|n| shards.iter().any(|r| r.shard == n)));
        assert_eq!(s.checksum.as_deref().map(str::len), Some(16));
    }
    assert!(samples.iter().any(|s| s.kind == "video" && s.frame_stride == 2), "25 fps subsampled towards 12");
    for shard in &shards {
        let file = out.join("shards").join(&shard.shard);
        assert_eq!(std::fs::metadata(&file).unwrap().len() as i64, shard.bytes);
        assert_eq!(samples.iter().filter(|s| s.shard.as_deref() == Some(&shard.shard)).count() as i64, shard.samples);
    }
    assert!(!tree(&out).iter().any(|f| f.ends_with(".rgb")), "bucket frames stay in scratch");

    // Every sample through the reader: one ranged read, verified, bf16 views of the right shape.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dataset = rt.block_on(Dataset::open(Store::open(out.to_str().unwrap()).unwrap())).unwrap();
    let mut decoder = SampleDecoder::new().unwrap();
    for s in &samples {
        let sample = rt.block_on(dataset.read(&s.sample_id, &mut decoder)).unwrap();
        assert_eq!(sample.header().clip_id, s.clip_id);
        let latent = sample.tensor("latent").unwrap();
        let shape: Vec<i64> = latent.shape().iter().map(|&d| d as i64).collect();
        assert_eq!(shape, s.latent_shape);
        assert!(latent.as_bf16().unwrap().iter().all(|v| v.is_finite()));
        assert!(!sample.header().attributes["caption"].is_empty());
    }
    let (ok, report) = verify(&out);
    assert!(ok, "{report}");

    let before = tree(&out.join("manifests/samples"));
    let shard_files = tree(&out.join("shards"));
    ingest(dir.path(), EMBEDDED, &dir.path().join("in"));
    assert_eq!(tree(&out.join("manifests/samples")), before, "a rerun embeds nothing again");
    assert_eq!(tree(&out.join("shards")), shard_files);
}

#[test]
fn a_causal_video_vae_encodes_whole_clips_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let config = EMBEDDED.replace("vae = \"bundled:tiny-vae\"", "vae = \"bundled:tiny-video-vae\"");
    let out = ingest(dir.path(), &config, &inputs(dir.path()));
    let samples: Vec<SampleRow> = rows(&out);
    assert!(samples.iter().any(|s| s.kind == "video" && s.frames == 17), "a clip longer than the export's 9 frames");
    for s in &samples {
        assert_eq!(s.status, SampleStatus::Ok, "{:?}", s.error);
        assert!(s.vae_id.starts_with("tiny-video-vae-"));
        let latent_frames = if s.kind == "image" { 1 } else { 1 + (s.frames - 1) / 4 };
        assert_eq!(s.latent_shape, vec![latent_frames, 4, s.height / 8, s.width / 8]);
    }
    let (ok, report) = verify(&out);
    assert!(ok, "{report}");
}

#[test]
fn a_flipped_bit_fails_verification_naming_the_shard_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = ingest(dir.path(), EMBEDDED, &inputs(dir.path()));
    let samples: Vec<SampleRow> = rows(&out);
    let victim = &samples[0];
    let shard = out.join("shards").join(victim.shard.as_ref().unwrap());
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[(victim.offset.unwrap() + victim.length.unwrap() / 2) as usize] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();
    let (ok, report) = verify(&out);
    assert!(!ok, "{report}");
    assert!(report.contains(victim.shard.as_ref().unwrap()) && report.contains(&victim.sample_id), "{report}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dataset = rt.block_on(Dataset::open(Store::open(out.to_str().unwrap()).unwrap())).unwrap();
    let err = rt.block_on(dataset.read(&victim.sample_id, &mut SampleDecoder::new().unwrap())).unwrap_err().to_string();
    assert!(err.contains("checksum") && err.contains(&victim.sample_id), "corrupt data is never returned: {err}");
}

#[test]
fn a_shard_left_by_a_killed_run_is_removed_and_the_output_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = ingest(dir.path(), EMBEDDED, &inputs(dir.path()));
    let orphan = out.join("shards/0123456789abcdef0123456789abcdef.shard");
    std::fs::write(&orphan, b"half a shard").unwrap();
    ingest(dir.path(), EMBEDDED, &dir.path().join("in"));
    assert!(!orphan.exists(), "a shard no commit names is removed");
    let (ok, report) = verify(&out);
    assert!(ok, "{report}");
}

#[test]
fn clips_smaller_than_every_bucket_get_skipped_rows_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = EMBEDDED.replace("{ name = \"64p\", height = 64 }", "{ name = \"720p\", height = 720 }");
    let out = ingest(dir.path(), &config, &inputs(dir.path()));
    let samples: Vec<SampleRow> = rows(&out);
    assert!(!samples.is_empty());
    for s in &samples {
        assert_eq!(s.status, SampleStatus::Skipped);
        let error = s.error.as_deref().unwrap();
        assert!(error.contains(&s.clip_id) && error.contains("192x108") && error.contains("smaller than every bucket"), "{error}");
        assert!(s.shard.is_none());
    }
    assert!(!out.join("shards").exists() || tree(&out.join("shards")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_on_s3_equal_local_ones_and_read_back_by_ranged_reads() {
    let Some(server) = crate::support::S3Server::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = inputs(dir.path());
    let local = ingest(dir.path(), EMBEDDED, &input);
    let uri = format!("s3://{}/embedded", server.bucket);
    let out = output(clipline().envs(server.env()).arg("run").arg(dir.path().join("config.toml")).arg("-i").arg(&input).args(["-o", &uri]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verified = output(clipline().envs(server.env()).args(["shards", "verify", &uri]));
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));

    let dataset = Dataset::open(Store::open_with(&uri, server.options()).unwrap()).await.unwrap();
    let local_rows: Vec<SampleRow> = rows(&local);
    let key = |r: &SampleRow| (r.sample_id.clone(), r.shard.clone(), r.offset, r.checksum.clone());
    let mut s3_rows: Vec<_> = dataset.rows().iter().map(key).collect();
    let mut want: Vec<_> = local_rows.iter().map(key).collect();
    s3_rows.sort();
    want.sort();
    assert_eq!(s3_rows, want, "same samples in the same content-named shards");
    let mut decoder = SampleDecoder::new().unwrap();
    for row in &local_rows {
        let sample = dataset.read(&row.sample_id, &mut decoder).await.unwrap();
        let shard = std::fs::read(local.join("shards").join(row.shard.as_ref().unwrap())).unwrap();
        let frame = &shard[row.offset.unwrap() as usize..(row.offset.unwrap() + row.length.unwrap()) as usize];
        let local_sample = decoder
            .decode(frame, clipline_shard::sample::Expected {
                shard: "local",
                sample: &row.sample_id,
                check_id: true,
                checksum: u64::from_str_radix(row.checksum.as_ref().unwrap(), 16).unwrap(),
                raw_length: row.raw_length.unwrap() as usize,
            })
            .unwrap();
        assert_eq!(sample.bytes(), local_sample.bytes(), "{} reads back bit-exact", row.sample_id);
    }
}
