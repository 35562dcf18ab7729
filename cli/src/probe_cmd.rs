//! `clipline probe INPUT`: what ffprobe says of one input, as clipline reads it.

use std::process::ExitCode;

use anyhow::Context;
use clipline_pipeline::config::Config;
use clipline_pipeline::probe;
use clipline_pipeline::sources::{discover, Fetcher};
use clipline_pipeline::tools::Tools;

/// Fetch `input` as a run would and print its probe, container frames and timing as JSON.
///
/// # Errors
/// When ffprobe is missing, or the input cannot be fetched or probed.
pub async fn probe(input: &str) -> anyhow::Result<ExitCode> {
    let config = Config::default();
    let tools = Tools::locate()?.with_memory_limit(config.decode.max_memory_mib);
    let source = discover(&[input.to_string()], &config.sources).await?.into_iter().next().context("nothing to probe")?;
    let spool = tempfile::tempdir()?;
    let fetched = Fetcher::new(config.sources, spool.path().to_path_buf())?.fetch(&source).await?;
    let (path, d) = (fetched.path.clone(), config.decode);
    let result = tokio::task::spawn_blocking(move || probe::probe(&tools, &path, std::time::Duration::from_secs(d.probe_timeout_s), d.max_dimension, Default::default())).await?;
    let (probe, timeline) = result.with_context(|| format!("cannot probe {input}"))?;
    let report = serde_json::json!({
        "source": source.uri(),
        "video_id": fetched.video_id,
        "size_bytes": fetched.size,
        "probe": probe,
        "container_frames": timeline.pts.len(),
        "variable_fps": timeline.is_variable(),
        "frame_duration_s": timeline.frame_duration(probe.video.avg_fps),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
