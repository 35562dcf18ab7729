//! `clipline bench sql`: the ready queries over a synthetic manifest of many clip rows, timed in
//! process; `benches/sql.py` runs DuckDB on the same files and prints both.
//!
//! The synthetic output is written the way a run writes one (zstd Parquet parts of the real
//! schema, each named by a commit marker), with plausible distributions: a few dozen clips
//! per source, common frame rates and resolutions, skewed motion and sharpness, and about one
//! clip in six filtered with a reason.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use clipline_core::manifest::commits::{Marker, COMMITS};
use clipline_core::manifest::{encode, ClipRow, ClipStatus, FailureKind, Table, VideoRow, VideoStatus};
use clipline_core::rng::SplitMix64;
use clipline_core::storage::{Store, StoreOptions};
use clipline_sql::{ready_queries, Catalog, Session};

/// Arguments of the SQL benchmark.
#[derive(clap::Args)]
pub struct SqlBench {
    /// A local directory: the synthetic output is written there unless it already holds one.
    #[arg(long)]
    data: String,
    /// Clip rows of the synthetic manifest.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Clip rows per Parquet part.
    #[arg(long, default_value_t = 500_000)]
    part_rows: u64,
    /// Timed passes per query after one untimed one; the best is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// Clips per synthetic source video.
const CLIPS_PER_VIDEO: u64 = 40;

/// Make the data if needed, then print one JSON line per ready query over `videos` and `clips`.
///
/// # Errors
/// When the data cannot be written or a query fails.
pub fn run(bench: &SqlBench) -> anyhow::Result<()> {
    clipline_sql::detached(|runtime| run_queries(bench, runtime))
}

fn run_queries(bench: &SqlBench, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let store = Store::open(&bench.data)?;
    if runtime.block_on(store.list(COMMITS))?.is_empty() {
        let started = Instant::now();
        runtime.block_on(write_synthetic(&store, bench.rows, bench.part_rows.max(1)))?;
        eprintln!("wrote {} synthetic clip rows to {} in {:.1} s", bench.rows, store.uri(), started.elapsed().as_secs_f64());
    }
    let catalog = runtime.block_on(Catalog::open(std::slice::from_ref(&bench.data), &StoreOptions::default()))?;
    let mut session = Session::new(catalog)?;
    for query in ready_queries().into_iter().filter(|q| q.tables.iter().all(|t| t == VideoRow::NAME || t == ClipRow::NAME)) {
        let mut best = f64::INFINITY;
        let mut rows = 0;
        for _ in 0..=bench.repeat {
            let started = Instant::now();
            rows = session.run(query.sql, query.name)?.height();
            best = best.min(started.elapsed().as_secs_f64());
        }
        println!("{}", serde_json::json!({"query": query.name, "seconds": best, "rows": rows}));
    }
    Ok(())
}

/// Write `rows` synthetic clips (and their videos) as committed parts.
async fn write_synthetic(store: &Store, rows: u64, part_rows: u64) -> anyhow::Result<()> {
    let mut rng = SplitMix64::new(7);
    let mut start = 0;
    while start < rows {
        let end = (start + part_rows).min(rows);
        let chunk = format!("bench-{start:012}");
        let clips: Vec<ClipRow> = (start..end).map(|i| synthetic_clip(i, &mut rng)).collect();
        let videos: Vec<VideoRow> = (start.div_ceil(CLIPS_PER_VIDEO)..end.div_ceil(CLIPS_PER_VIDEO)).map(synthetic_video).collect();
        let mut parts = HashMap::new();
        for (table, bytes) in [(ClipRow::NAME, encode(&clips)?), (VideoRow::NAME, encode(&videos)?)] {
            let key = clipline_core::manifest::commits::part_key(table, &chunk);
            store.put(&key, bytes).await?;
            parts.insert(table.to_string(), key);
        }
        let marker = Marker { format: 1, chunk: chunk.clone(), settings_hash: "bench".into(), sources: Vec::new(), parts, shards: Vec::new() };
        store.put(&format!("{COMMITS}/{chunk}.json"), serde_json::to_vec(&marker)?.into()).await.context("writing a marker")?;
        start = end;
    }
    Ok(())
}

fn video_id(video: u64) -> String {
    format!("{:032x}", u128::from(video).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
}

fn synthetic_video(video: u64) -> VideoRow {
    let mut row = VideoRow::unprocessed(&format!("s3://bench/videos/{video:08}.mp4"), "bench");
    let failed = video.is_multiple_of(97);
    row.video_id = Some(video_id(video));
    row.status = if failed { VideoStatus::Failed } else { VideoStatus::Ok };
    if failed {
        row.error_kind = Some(FailureKind::DecodeFailed);
        row.error = Some(format!("s3://bench/videos/{video:08}.mp4: invalid NAL unit"));
    }
    row.clips = CLIPS_PER_VIDEO as i64;
    row
}

fn synthetic_clip(i: u64, rng: &mut SplitMix64) -> ClipRow {
    const FPS: [f64; 6] = [23.976, 24.0, 25.0, 29.97, 30.0, 60.0];
    const SIZES: [(i64, i64); 5] = [(1920, 1080), (1280, 720), (640, 360), (1080, 1920), (720, 720)];
    let video = i / CLIPS_PER_VIDEO;
    let fps = FPS[(rng.next_u64() % 6) as usize];
    let (width, height) = SIZES[(rng.next_u64() % 5) as usize];
    let num_frames = 15 + (rng.next_u64() % 186) as i64;
    let start_frame = (i % CLIPS_PER_VIDEO) as i64 * 200;
    let motion = 40.0 * rng.next_f64().powi(3);
    let brightness = 20.0 + 200.0 * rng.next_f64();
    let sharpness = 2f64.powf(12.0 * rng.next_f64());
    let duration_s = num_frames as f64 / fps;
    let filter_reason = match rng.next_u64() % 12 {
        0 => Some(format!("static: motion {motion:.2} < 0.50")),
        1 => Some(format!("blurry: sharpness {sharpness:.1} < 10.0")),
        _ => None,
    };
    let vid = video_id(video);
    ClipRow {
        clip_id: format!("{vid}-{start_frame:07}-{:07}", start_frame + num_frames),
        source_uri: format!("s3://bench/videos/{video:08}.mp4"),
        shot_index: (i % CLIPS_PER_VIDEO) as i64,
        clip_index: 0,
        start_frame,
        end_frame: start_frame + num_frames,
        num_frames,
        start_pts: start_frame as f64 / fps,
        end_pts: (start_frame + num_frames) as f64 / fps,
        duration_s,
        fps,
        width,
        height,
        aspect: width as f64 / height as f64,
        motion,
        brightness,
        sharpness,
        phash: format!("{:016x}", rng.next_u64()),
        is_static: motion < 0.5,
        status: if filter_reason.is_some() { ClipStatus::Filtered } else { ClipStatus::Ok },
        filter_reason,
        clip_uri: Some(format!("s3://bench/out/clips/{vid}/{i}.mp4")),
        frame_uri: Some(format!("s3://bench/out/frames/{vid}/{i}.jpg")),
        video_id: vid,
        detector: "adaptive-v1".into(),
        settings_hash: "bench".into(),
    }
}
