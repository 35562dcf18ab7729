//! Clip files and middle frames (with or without clip files) hold exactly the frames their rows
//! name: the test video's frames encode their own index in their brightness, and the source has
//! B-frames and sparse keyframes, so an inexact seek would show.

use std::path::Path;
use std::process::Command;

use clipline_core::manifest::ClipRow;

use crate::support::{ffmpeg, ingest, rows};

/// Brightness levels cycle with period 25: frame n shows level 7n mod 25, over a checkerboard.
fn counter_video(path: &Path, frames: u32) {
    ffmpeg(&[
        "-f", "lavfi", "-i",
        "nullsrc=s=192x108:r=25,geq=lum='28+8*mod(N*7\\,25)+20*mod(floor(X/16)+floor(Y/16)\\,2)':cb=128:cr=128",
        "-frames:v", &frames.to_string(),
        "-c:v", "libx264", "-crf", "6", "-bf", "3", "-g", "48", "-x264-params", "scenecut=0", "-pix_fmt", "yuv420p",
        path.to_str().unwrap(),
    ]);
}

/// Frame index modulo 25 of each frame of a video or image, read back from its brightness.
fn indices_mod_25(path: &str) -> Vec<u64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path, "-vf", "scale=192:108", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"])
        .output()
        .unwrap();
    // The luma plane as coded (no range conversion) is the first 192x108 bytes of each frame.
    out.stdout
        .chunks_exact(192 * 108 * 3 / 2)
        .map(|frame| {
            let luma = &frame[..192 * 108];
            let mean = luma.iter().map(|&v| v as f64).sum::<f64>() / luma.len() as f64;
            let level = ((mean - 38.0) / 8.0).round().rem_euclid(25.0) as u64;
            (18 * level) % 25
        })
        .collect()
}

#[test]
fn clip_files_and_middle_frames_hold_exactly_their_frames() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("counter.mp4");
    counter_video(&video, 130);
    let out_dir = ingest(dir.path(), "[clips]\nmax_frames = 40\nframe_format = \"png\"\n", &video);

    let clips: Vec<ClipRow> = rows(&out_dir);
    let ranges: Vec<(i64, i64)> = clips.iter().map(|c| (c.start_frame, c.end_frame)).collect();
    assert_eq!(ranges, vec![(0, 33), (33, 66), (66, 98), (98, 130)], "one shot split into balanced pieces");
    for clip in &clips {
        let file = clip.clip_uri.as_deref().unwrap().trim_start_matches("file://");
        let expected: Vec<u64> = (clip.start_frame as u64..clip.end_frame as u64).map(|n| n % 25).collect();
        assert_eq!(indices_mod_25(file), expected, "{}: frames of the clip file", clip.clip_id);
        let middle = (clip.start_frame + clip.num_frames / 2) as u64;
        let image = clip.frame_uri.as_deref().unwrap().trim_start_matches("file://");
        assert_eq!(indices_mod_25(image), vec![middle % 25], "{}: middle frame", clip.clip_id);
        assert!((clip.start_pts - clip.start_frame as f64 / 25.0).abs() < 1e-6);
        assert!((clip.duration_s - clip.num_frames as f64 / 25.0).abs() < 1e-6);
    }
}

/// Without clip files the pass stops at the last frame it needs; middle frames are still
/// exactly the frames named.
#[test]
fn middle_frames_without_clip_files_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("counter.mp4");
    counter_video(&video, 130);
    let out_dir = ingest(dir.path(), "[clips]\nmax_frames = 40\nframe_format = \"png\"\nwrite_clip_files = false\n", &video);
    let clips: Vec<ClipRow> = rows(&out_dir);
    assert_eq!(clips.len(), 4);
    for clip in &clips {
        assert!(clip.clip_uri.is_none());
        let middle = (clip.start_frame + clip.num_frames / 2) as u64;
        let image = clip.frame_uri.as_deref().unwrap().trim_start_matches("file://");
        assert_eq!(indices_mod_25(image), vec![middle % 25], "{}: middle frame", clip.clip_id);
    }
}
