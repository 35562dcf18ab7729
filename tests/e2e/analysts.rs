//! The analysts' tools on the demo output: `clipline sql` (every ready query, the output
//! formats, several outputs as one, S3, clear errors), `clipline report` rendered in headless
//! Chromium, and the notebooks executed by Jupyter.

use std::path::{Path, PathBuf};
use std::process::Command;

use clipline_core::manifest::{CaptionRow, CaptionStatus, ClipRow, ClipStatus, SampleRow, ShardRow, VideoRow, VideoStatus};
use clipline_testkit::Need;
use serde_json::Value;

use crate::support::{clipline, copy_tree, demo, ingest, lavfi_video, output, rows, S3Server};

const QUERIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/queries");

/// `clipline sql` over `data` with extra arguments; panics with stderr unless it succeeds.
fn sql(data: &[&Path], args: &[&str]) -> String {
    let mut cmd = clipline();
    cmd.arg("sql");
    for d in data {
        cmd.arg("--data").arg(d);
    }
    let out = output(cmd.args(args));
    assert!(out.status.success(), "clipline sql {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `clipline sql` that must fail; returns stderr.
fn sql_error(data: &Path, args: &[&str]) -> String {
    let out = output(clipline().arg("sql").arg("--data").arg(data).args(args));
    assert!(!out.status.success(), "clipline sql {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

fn ready(data: &Path, name: &str) -> Vec<Value> {
    let file = format!("{QUERIES}/{name}.sql");
    serde_json::from_str::<Value>(&sql(&[data], &[&file, "--output", "json"])).unwrap().as_array().unwrap().clone()
}

fn sum(rows: &[Value], column: &str) -> i64 {
    rows.iter().map(|r| r[column].as_i64().unwrap()).sum()
}

#[test]
fn the_documented_count_prints_a_csv_with_a_header() {
    let demo = &demo().dir;
    let clips: Vec<ClipRow> = rows(demo);
    let csv = sql(&[demo], &["SELECT count(*) AS n FROM clips", "--output", "csv"]);
    assert_eq!(csv, format!("n\n{}\n", clips.len()));
}

#[test]
fn every_ready_query_answers_on_the_demo() {
    let demo = &demo().dir;
    let videos: Vec<VideoRow> = rows(demo);
    let clips: Vec<ClipRow> = rows(demo);
    let captions: Vec<CaptionRow> = rows(demo);
    let samples: Vec<SampleRow> = rows(demo);
    let shards: Vec<ShardRow> = rows(demo);
    let ok = clips.iter().filter(|c| c.status == ClipStatus::Ok).count() as i64;

    let overview = ready(demo, "overview");
    assert_eq!(overview[0]["inputs"].as_i64(), Some(videos.len() as i64));
    assert_eq!(overview[0]["clips"].as_i64(), Some(clips.len() as i64));
    assert_eq!(overview[0]["clips_ok"].as_i64(), Some(ok));
    let hours: f64 = clips.iter().filter(|c| c.status == ClipStatus::Ok).map(|c| c.duration_s).sum::<f64>() / 3600.0;
    assert!((overview[0]["hours_ok"].as_f64().unwrap() - hours).abs() < 1e-9);

    for name in ["clips_per_source", "duration_histogram", "resolution_histogram", "fps_histogram", "aspect_histogram"] {
        assert_eq!(sum(&ready(demo, name), "clips"), ok, "{name} counts every kept clip once");
    }
    for name in ["motion_histogram", "brightness_histogram", "sharpness_histogram"] {
        assert_eq!(sum(&ready(demo, name), "clips"), clips.len() as i64, "{name} counts every clip once");
    }
    let durations = ready(demo, "duration_histogram");
    let bins: Vec<f64> = durations.iter().map(|r| r["duration_s"].as_f64().unwrap()).collect();
    assert!(bins.windows(2).all(|w| w[0] < w[1]) && bins.iter().all(|b| (b * 2.0).fract() == 0.0), "half-second bins in order: {bins:?}");

    let reasons = ready(demo, "filter_reasons");
    assert_eq!(sum(&reasons, "clips"), clips.len() as i64 - ok);
    for r in &reasons {
        let example = r["example"].as_str().unwrap_or_default();
        assert!(example.starts_with(r["filter"].as_str().unwrap_or_default()), "{r}");
    }

    let ok_captions: Vec<&CaptionRow> = captions.iter().filter(|c| c.status == CaptionStatus::Ok).collect();
    assert!(!ok_captions.is_empty(), "the demo is captioned");
    assert_eq!(sum(&ready(demo, "caption_lengths"), "captions"), ok_captions.len() as i64);
    let scored = captions.iter().filter(|c| c.text_area.is_some()).count() as i64;
    assert_eq!(sum(&ready(demo, "text_area_histogram"), "captions"), scored);
    let flags = ready(demo, "caption_flags");
    let flag = |name: &str| flags.iter().find(|r| r["flag"] == name).map_or(0, |r| r["captions"].as_i64().unwrap());
    assert_eq!(flag("failed"), captions.iter().filter(|c| c.status == CaptionStatus::Failed).count() as i64);
    assert_eq!(flag("truncated"), captions.iter().filter(|c| c.truncated).count() as i64);

    assert_eq!(sum(&ready(demo, "bucket_coverage"), "samples"), samples.len() as i64);
    let shard_sizes = ready(demo, "shard_sizes");
    assert_eq!(shard_sizes[0]["shards"].as_i64(), Some(shards.len() as i64));
    assert_eq!(shard_sizes[0]["bytes"].as_i64(), Some(shards.iter().map(|s| s.bytes).sum()));
    assert!(shard_sizes[0]["compression_ratio"].as_f64().unwrap() > 1.0);

    let failed = videos.iter().filter(|v| v.status == VideoStatus::Failed || v.status == VideoStatus::Partial).count();
    assert_eq!(ready(demo, "failed_inputs").len(), failed);
    assert!(!ready(demo, "runs").is_empty());
}

#[test]
fn ready_queries_run_by_name_and_the_table_format_and_parquet_output_work() {
    let demo = &demo().dir;
    let listing = sql(&[demo], &["--list"]);
    assert!(listing.contains("clips_per_source") && listing.contains("How many kept clips"), "{listing}");
    let table = sql(&[demo], &["overview"]);
    assert!(table.lines().next().unwrap().starts_with("inputs") && table.contains("(1 row)"), "{table}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("per_source.parquet");
    sql(&[demo], &["clips_per_source", "--output", "parquet", "--out", file.to_str().unwrap()]);
    let parquet = std::fs::read(&file).unwrap();
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"), "a whole Parquet file");

    let plan = sql(&[demo], &["SELECT clip_id FROM clips WHERE motion > 3", "--explain"]);
    assert!(plan.contains("Parquet SCAN") || plan.contains("parquet"), "a scan in the plan: {plan}");
    assert!(plan.contains("motion") && plan.contains("clip_id"), "filter and projection pushed into the scan: {plan}");
}

#[test]
fn several_outputs_read_as_one_table() {
    let demo = &demo().dir;
    let dir = tempfile::tempdir().unwrap();
    lavfi_video(&dir.path().join("one.mp4"), "testsrc2", 60);
    let other = ingest(dir.path(), "", &dir.path().join("one.mp4"));
    let count = |data: &[&Path]| sql(data, &["SELECT count(*) AS n FROM clips", "--output", "csv"]).lines().nth(1).unwrap().parse::<usize>().unwrap();
    let (a, b) = (count(&[demo]), count(&[&other]));
    assert!(b > 0);
    assert_eq!(count(&[demo, &other]), a + b);
    // Tables only one output has are still there.
    let captions = sql(&[demo, &other], &["SELECT count(*) AS n FROM captions", "--output", "csv"]);
    assert_eq!(captions, format!("n\n{}\n", rows::<CaptionRow>(demo).len()));
}

#[test]
fn unknown_tables_columns_bad_files_and_outputs_are_named_with_what_exists() {
    let demo = &demo().dir;
    let err = sql_error(demo, &["SELECT * FROM clipz"]);
    assert!(err.contains("unknown table \"clipz\"") && err.contains("videos, shots, clips, captions, samples, shards, runs"), "{err}");
    let err = sql_error(demo, &["SELECT no_such_column FROM clips"]);
    assert!(err.contains("no_such_column") && err.contains("clips: clip_id, video_id"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sql");
    std::fs::write(&bad, "SELEC count(*) FROM clips").unwrap();
    let err = sql_error(demo, &[bad.to_str().unwrap()]);
    assert!(err.contains("bad.sql"), "{err}");
    let err = sql_error(demo, &[dir.path().join("missing.sql").to_str().unwrap()]);
    assert!(err.contains("cannot read query file") && err.contains("missing.sql"), "{err}");

    let err = sql_error(&dir.path().join("nowhere"), &["SELECT 1"]);
    assert!(err.contains("nowhere: no such directory"), "{err}");
    assert!(!dir.path().join("nowhere").exists(), "reading does not create the output");
    let err = sql_error(dir.path(), &["SELECT 1"]);
    assert!(err.contains("holds no committed clipline manifests"), "{err}");

    // A part of another schema version: the version tag in its footer rewritten from 1 to 9.
    let copy = dir.path().join("copy");
    copy_tree(demo, &copy);
    let clips_dir = copy.join("manifests/clips");
    let part = std::fs::read_dir(&clips_dir).unwrap().flatten().map(|e| e.path()).min().unwrap();
    let mut bytes = std::fs::read(&part).unwrap();
    let tag = b"clipline.schema_version\x18\x011";
    let at = bytes.windows(tag.len()).position(|w| w == tag).expect("the version tag in the footer");
    bytes[at + tag.len() - 1] = b'9';
    std::fs::write(&part, bytes).unwrap();
    let err = sql_error(&copy, &["SELECT count(*) FROM clips"]);
    assert!(err.contains("schema version 9") && err.contains(part.file_name().unwrap().to_str().unwrap()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_and_the_report_read_an_output_on_s3() {
    let Some(server) = S3Server::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    lavfi_video(&dir.path().join("a.mp4"), "testsrc2", 60);
    let local = ingest(dir.path(), "", &dir.path().join("a.mp4"));
    let uri = format!("s3://{}/analysts", server.bucket);
    let out = output(clipline().envs(server.env()).arg("run").arg("-i").arg(dir.path().join("a.mp4")).args(["-o", &uri]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let query = "SELECT clip_id, start_frame, end_frame, motion FROM clips ORDER BY clip_id";
    let on_s3 = output(clipline().envs(server.env()).args(["sql", "--data", &uri, query, "--output", "csv"]));
    assert!(on_s3.status.success(), "{}", String::from_utf8_lossy(&on_s3.stderr));
    assert_eq!(String::from_utf8(on_s3.stdout).unwrap(), sql(&[&local], &[query, "--output", "csv"]));

    let report = dir.path().join("report");
    let out = output(clipline().envs(server.env()).args(["report", &uri, "--out"]).arg(&report));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_dir(report.join("frames")).unwrap().count() > 0, "frames copied from S3");
}

#[test]
fn the_report_renders_in_headless_chromium_with_its_charts_and_frames() {
    let demo = &demo().dir;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let out = output(clipline().arg("report").arg(demo).arg("--out").arg(&report));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(!html.contains("Failed:"), "every section answered");
    let charts = std::fs::read_dir(report.join("charts")).unwrap().count();
    let frames = std::fs::read_dir(report.join("frames")).unwrap().count();
    assert!(charts >= 10 && frames > 0, "{charts} charts, {frames} frames");
    let captions: Vec<CaptionRow> = rows(demo);
    assert!(captions.iter().any(|c| c.status == CaptionStatus::Ok && html.contains(&c.caption)), "captions on the contact sheet");

    let Some(chromium) = tool("chromium", &["--version"]) else { return };
    let dom = output(
        Command::new("timeout")
            .args(["120", &chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom"])
            .arg(format!("file://{}", report.join("index.html").display())),
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let images = charts + frames;
    assert!(dom.contains(&format!("data-images=\"{images}/{images}\"")), "every chart and frame loads: {}", &dom[..dom.len().min(400)]);
}

#[test]
fn the_notebooks_run_against_the_demo_and_a_training_run() {
    let Some(python) = tool(&std::env::var("CLIPLINE_PYTHON").unwrap_or_else(|_| "python3".into()), &["-c", "import nbconvert, ipykernel, polars, duckdb, matplotlib"]) else {
        return;
    };
    let demo = &demo().dir;
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/train-tiny.toml");
    let out = output(clipline().args(["train", config, "--data"]).arg(demo).arg("--run-dir").arg(&run_dir).args(["--steps", "4"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let notebooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks");
    let mut books: Vec<PathBuf> = std::fs::read_dir(&notebooks).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "ipynb")).collect();
    books.sort();
    assert!(books.len() >= 3);
    for book in books {
        let out = output(
            Command::new(&python)
                .args(["-m", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=300", "--output-dir"])
                .arg(dir.path())
                .arg(&book)
                .env("CLIPLINE_DATA", demo)
                .env("CLIPLINE_RUN_DIR", &run_dir),
        );
        assert!(out.status.success(), "{} failed:\n{}", book.display(), String::from_utf8_lossy(&out.stderr));
        let executed = std::fs::read_to_string(dir.path().join(book.file_name().unwrap())).unwrap();
        assert!(executed.contains("image/png"), "{} drew its charts", book.display());
    }
}

/// `program` when it runs with `args`; otherwise `None` (a skip), or a failure when
/// `CLIPLINE_REQUIRE_ANALYST_TOOLS` is set, as in CI.
fn tool(program: &str, args: &[&str]) -> Option<String> {
    let works = Command::new(program).args(args).output().is_ok_and(|o| o.status.success());
    if works { Some(program.to_string()) } else { Need::AnalystTools.missing(format_args!("`{program} {}` fails", args.join(" "))) }
}
