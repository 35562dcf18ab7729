//! The README's main job: the demo's synthetic videos have known shots, and clipline must find
//! them exactly.

use clipline_core::manifest::{CaptionRow, CaptionStatus, ClipRow, ClipStatus, ShotRow, VideoRow, VideoStatus};
use serde_json::Value;

use crate::support::{count_frames, demo, rows};

#[test]
fn demo_finds_every_known_shot_and_writes_exact_clips() {
    let demo = demo();
    let stdout = &demo.stdout;
    assert!(stdout.contains("clipline run completed"), "{stdout}");
    let dir = &demo.dir;

    let truth: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.as_path().join("inputs/truth.json")).unwrap()).unwrap();
    let shots: Vec<ShotRow> = rows(dir.as_path());
    let videos: Vec<VideoRow> = rows(dir.as_path());
    for video in &truth {
        let file = video["file"].as_str().unwrap();
        let row = videos.iter().find(|v| v.source_uri.ends_with(&format!("/{file}"))).unwrap();
        if let Some(original) = video["copy_of"].as_str() {
            assert_eq!(row.status, VideoStatus::Duplicate);
            assert!(row.duplicate_of.as_deref().unwrap().ends_with(original));
            continue;
        }
        assert_eq!(row.status, VideoStatus::Ok, "{file}: {:?}", row.error);
        assert_eq!(row.decoded_frames, Some(video["frames"].as_i64().unwrap()), "{file}");
        let found: Vec<&ShotRow> = shots.iter().filter(|s| s.source_uri == row.source_uri).collect();
        let segments: Vec<&Value> = video["segments"].as_array().unwrap().iter().filter(|s| s["blank"] == false).collect();
        assert_eq!(found.len(), segments.len(), "{file}: shots {:?}", found.iter().map(|s| (s.start_frame, s.end_frame)).collect::<Vec<_>>());
        for (shot, seg) in found.iter().zip(&segments) {
            let (start, end) = (seg["start"].as_i64().unwrap(), seg["end"].as_i64().unwrap());
            let (fade_in, fade_out) = (seg["fade_in"].as_i64().unwrap(), seg["fade_out"].as_i64().unwrap());
            // A fade is a transition: its frames belong to no shot, and TransNetV2's span may take
            // two more frames on either side (its span threshold errs towards leaving frames
            // out, and `detect.span_margin` adds one).
            let slack = |fade: i64| if fade > 0 { fade + 2 } else { 0 };
            assert!(shot.start_frame >= start && shot.start_frame <= start + slack(fade_in), "{file}: shot starts at {} for segment {start}..{end}", shot.start_frame);
            assert!(shot.end_frame <= end && shot.end_frame >= end - slack(fade_out), "{file}: shot ends at {} for segment {start}..{end}", shot.end_frame);
            if fade_in > 0 {
                assert!(shot.transition == "fade" && shot.transition_start_frame < start && shot.transition_end_frame == shot.start_frame, "{file}: {shot:?}");
            }
            if fade_in == 0 && fade_out == 0 {
                assert_eq!((shot.start_frame, shot.end_frame), (start, end), "{file}: hard cuts are frame-exact");
            }
        }
    }

    let clips: Vec<ClipRow> = rows(dir.as_path());
    assert!(clips.iter().all(|c| (15..=200).contains(&c.num_frames)));
    let ok: Vec<&ClipRow> = clips.iter().filter(|c| c.status == ClipStatus::Ok).collect();
    assert!(ok.len() >= 7, "{} ok clips", ok.len());
    assert!(clips.iter().any(|c| c.status == ClipStatus::Filtered && c.filter_reason.as_deref().unwrap().starts_with("static")));
    for clip in ok {
        let file = clip.clip_uri.as_deref().unwrap().trim_start_matches("file://");
        assert_eq!(count_frames(std::path::Path::new(file)) as i64, clip.num_frames, "{file}");
        let frame = clip.frame_uri.as_deref().unwrap().trim_start_matches("file://");
        assert!(image_size(frame).0 > 0, "{frame}");
    }
}

/// Clips inside a shape segment must get that segment's caption from the bundled tiny
/// captioner, exactly, at least 90% of them; every captioned clip once.
#[test]
fn demo_captions_the_known_shapes() {
    let demo = demo();
    let stdout = &demo.stdout;
    let dir = &demo.dir;
    assert!(stdout.contains("captions:") && stdout.contains("samples:") && stdout.contains("captions,samples,shards,runs"), "{stdout}");

    let truth: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.as_path().join("inputs/truth.json")).unwrap()).unwrap();
    let clips: Vec<ClipRow> = rows(dir.as_path());
    let captions: Vec<CaptionRow> = rows(dir.as_path());
    let ok_clips = clips.iter().filter(|c| c.status == ClipStatus::Ok).count();
    assert_eq!(captions.len(), ok_clips, "one caption per clip that was not filtered");
    assert!(captions.iter().all(|c| c.status == CaptionStatus::Ok && c.model_id.starts_with("tiny-captioner-") && c.prompt_hash.len() == 16));
    assert!(captions.iter().all(|c| c.frame_positions == "0.2,0.5,0.8" && !c.truncated && c.tokens > 0));
    assert!(captions.iter().all(|c| c.text_area.is_some_and(|a| a < 0.05)), "the demo's drawn shapes hold no text");

    let (mut known, mut right) = (0, 0);
    for caption in &captions {
        let clip = clips.iter().find(|c| c.clip_id == caption.clip_id).unwrap();
        let video = truth.iter().find(|v| clip.source_uri.ends_with(&format!("/{}", v["file"].as_str().unwrap()))).unwrap();
        let segment = video["segments"].as_array().unwrap().iter().find(|s| {
            s["start"].as_i64().unwrap() <= clip.start_frame && clip.end_frame <= s["end"].as_i64().unwrap()
        });
        if let Some(expected) = segment.and_then(|s| s["caption"].as_str()) {
            known += 1;
            right += usize::from(caption.caption == expected);
            if caption.caption != expected {
                eprintln!("{}: {:?}, expected {expected:?}", clip.clip_id, caption.caption);
            }
        }
    }
    assert!(known >= 5, "{known} clips of shape segments");
    assert!(right * 10 >= known * 9, "{right} of {known} shape clips got their true caption");
}

fn image_size(path: &str) -> (u32, u32) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", path])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.trim().split(',').map(|v| v.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}
