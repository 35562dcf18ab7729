//! Bad inputs become `videos` rows with a status and a reason that names the file; the run goes
//! on, and the exit code says inputs failed.

use std::path::Path;
use std::time::{Duration, Instant};

use clipline_core::manifest::{ClipRow, ClipStatus, VideoRow};

use crate::support::{clipline, ffmpeg, ingest, lavfi_video, output, rows, run_command};

fn truncate(path: &Path, keep: f64) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
}

#[test]
fn every_kind_of_bad_input_gets_a_row_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let p = |name: &str| inputs.join(name);
    lavfi_video(&p("good.mp4"), "testsrc2", 60);
    std::fs::write(p("empty.mp4"), b"").unwrap();
    std::fs::write(p("text.mp4"), b"this is a text file, not a video\n").unwrap();
    ffmpeg(&["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", p("audio_only.mp4").to_str().unwrap()]);
    lavfi_video(&p("one_frame.mp4"), "testsrc2", 1);
    ffmpeg(&["-f", "lavfi", "-i", "testsrc2=s=192x108:r=25", "-frames:v", "200", "-c:v", "libx264", "-movflags", "+faststart", p("truncated.mp4").to_str().unwrap()]);
    truncate(&p("truncated.mp4"), 0.5);
    lavfi_video(&p("no_index.mp4"), "testsrc2", 100);
    truncate(&p("no_index.mp4"), 0.7);
    ffmpeg(&["-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-frames:v", "20", "-c:v", "libx264", p("huge.mp4").to_str().unwrap()]);
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[decode]\nmax_dimension = 400\n[sources]\nhttp_attempts = 2\nhttp_timeout_s = 5\n").unwrap();

    let out_dir = dir.path().join("out");
    let out = output(
        clipline()
            .arg("run")
            .arg(&config)
            .arg("--input")
            .arg(&inputs)
            .args(["--input", "http://127.0.0.1:9/unreachable.mp4", "--input"])
            .arg(inputs.join("missing.mp4"))
            .arg("--output")
            .arg(&out_dir),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "exit code 3 when inputs failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));

    let videos: Vec<VideoRow> = rows(&out_dir);
    let row = |name: &str| videos.iter().find(|v| v.source_uri.ends_with(name)).unwrap_or_else(|| panic!("no row for {name}"));
    let expect = [
        ("good.mp4", "ok", None),
        ("empty.mp4", "failed", Some("empty")),
        ("text.mp4", "failed", Some("not_video")),
        ("audio_only.mp4", "failed", Some("no_video_stream")),
        ("one_frame.mp4", "skipped", Some("no_clips")),
        ("truncated.mp4", "partial", Some("truncated")),
        ("no_index.mp4", "failed", Some("not_video")),
        ("huge.mp4", "failed", Some("too_large")),
        ("unreachable.mp4", "failed", Some("unreachable")),
        ("missing.mp4", "failed", Some("not_found")),
    ];
    for (name, status, kind) in expect {
        let r = row(name);
        assert_eq!((r.status.as_str(), r.error_kind.map(|k| k.as_str())), (status, kind), "{name}: {:?}", r.error);
        if status != "ok" {
            let error = r.error.as_deref().unwrap();
            assert!(error.contains(name) || error.contains("127.0.0.1:9"), "{name}: the reason names the input: {error}");
        }
    }
    assert!(row("audio_only.mp4").error.as_deref().unwrap().contains("audio only"));
    assert!(row("huge.mp4").error.as_deref().unwrap().contains("640x360"));
    let truncated = row("truncated.mp4");
    assert!(truncated.decoded_frames.unwrap() < truncated.container_frames.unwrap());
    let clips: Vec<ClipRow> = rows(&out_dir);
    assert!(clips.iter().any(|c| c.source_uri.ends_with("truncated.mp4")), "frames that decode still give clips");
    assert!(stdout.contains("9 failed") || stdout.contains("failed [empty]"), "{stdout}");
    assert_eq!(videos.len(), expect.len());
}

#[test]
fn a_hanging_ffmpeg_is_killed_and_recorded_as_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    lavfi_video(&video, "testsrc2", 30);
    let fake = dir.path().join("ffmpeg");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let (mut run, out_dir) = run_command(dir.path(), "[decode]\nstall_timeout_s = 1\n", &video);
    let started = Instant::now();
    let out = output(run.env("CLIPLINE_FFMPEG", &fake));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let videos: Vec<VideoRow> = rows(&out_dir);
    assert_eq!(videos[0].error_kind.map(|k| k.as_str()), Some("timeout"));
    assert!(videos[0].error.as_deref().unwrap().contains("no progress"), "{:?}", videos[0].error);
}

#[test]
fn clips_whose_files_cannot_be_written_keep_their_rows_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    lavfi_video(&video, "testsrc2", 90);
    // A clip failure is not an input failure: the run succeeds.
    let out_dir = ingest(dir.path(), "[clips]\nmax_frames = 30\ncodec = \"no_such_encoder\"\n", &video);
    let clips: Vec<ClipRow> = rows(&out_dir);
    assert_eq!(clips.len(), 3);
    for clip in &clips {
        assert_eq!(clip.status, ClipStatus::Failed);
        let reason = clip.filter_reason.as_deref().unwrap();
        assert!(reason.contains(&clip.clip_id) && reason.contains("no_such_encoder"), "{reason}");
        assert_eq!(clip.clip_uri, None);
    }
}

#[test]
fn rotated_inputs_give_clips_in_display_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.mp4");
    lavfi_video(&plain, "testsrc2", 40);
    let rotated = dir.path().join("rotated.mp4");
    ffmpeg(&["-i", plain.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated.to_str().unwrap()]);
    let out_dir = ingest(dir.path(), "", &rotated);
    let videos: Vec<VideoRow> = rows(&out_dir);
    assert_eq!((videos[0].width, videos[0].height, videos[0].rotation), (Some(192), Some(108), Some(90)));
    let clips: Vec<ClipRow> = rows(&out_dir);
    assert_eq!((clips[0].width, clips[0].height), (108, 192), "display size");
    let frame = clips[0].frame_uri.as_deref().unwrap().trim_start_matches("file://");
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", frame])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "108,192", "the middle frame is upright");
}

#[test]
fn unusual_but_valid_inputs_are_processed_and_a_header_only_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let p = |name: &str| inputs.join(name).to_str().unwrap().to_string();
    let source = ["-f", "lavfi", "-i", "testsrc2=s=192x108:r=25", "-frames:v", "60"];
    // The moov atom first, then cut after 3000 bytes: a header and no frames.
    let full = dir.path().join("full.mp4");
    ffmpeg(&[&source[..], &["-c:v", "libx264", "-movflags", "+faststart", full.to_str().unwrap()]].concat());
    std::fs::write(p("header_only.mp4"), &std::fs::read(&full).unwrap()[..3000]).unwrap();
    ffmpeg(&[&source[..], &["-c:v", "libx264", "-f", "matroska", &p("matroska_named.mp4")]].concat());
    let vfr = "setpts='if(lt(N,30),N/25/TB,(30+(N-30)*2)/25/TB)'";
    ffmpeg(&[&source[..], &["-vf", vfr, "-fps_mode", "vfr", "-c:v", "libx264", &p("vfr.mp4")]].concat());
    ffmpeg(&[&source[..], &["-c:v", "libx264", "-pix_fmt", "yuv420p10le", &p("ten_bit.mp4")]].concat());
    ffmpeg(&[&source[..], &["-vf", "scale=191:107", "-pix_fmt", "yuv444p", "-c:v", "ffv1", &p("odd.mkv")]].concat());

    let out_dir = dir.path().join("out");
    let out = output(clipline().arg("run").arg("--input").arg(&inputs).arg("--output").arg(&out_dir));
    assert_eq!(out.status.code(), Some(3), "one input failed: {}", String::from_utf8_lossy(&out.stderr));
    let videos: Vec<VideoRow> = rows(&out_dir);
    let row = |name: &str| videos.iter().find(|v| v.source_uri.ends_with(name)).unwrap_or_else(|| panic!("no row for {name}"));

    let header_only = row("header_only.mp4");
    assert_eq!((header_only.status.as_str(), header_only.error_kind.map(|k| k.as_str())), ("failed", Some("decode_failed")));
    let error = header_only.error.as_deref().unwrap();
    assert!(error.contains("header_only.mp4") && error.contains("no frame could be decoded"), "{error}");

    for name in ["matroska_named.mp4", "vfr.mp4", "ten_bit.mp4", "odd.mkv"] {
        let r = row(name);
        assert_eq!((r.status.as_str(), r.clips), ("ok", 1), "{name}: {:?}", r.error);
    }
    assert!(row("matroska_named.mp4").container.as_deref().unwrap().contains("matroska"), "the container is probed, not guessed from the name");
    assert_eq!(row("vfr.mp4").variable_fps, Some(true));
    assert_eq!(row("ten_bit.mp4").pix_fmt.as_deref(), Some("yuv420p10le"));
    assert_eq!((row("odd.mkv").width, row("odd.mkv").height), (Some(191), Some(107)));
    let clips: Vec<ClipRow> = rows(&out_dir);
    assert_eq!(clips.iter().filter(|c| c.status == ClipStatus::Ok && c.clip_uri.is_some()).count(), 4, "every valid input's clip file is written");
}

#[test]
fn an_input_that_needs_more_memory_than_the_limit_fails_its_row_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.mp4");
    lavfi_video(&input, "testsrc2", 40);
    // Far too little for ffprobe to even load its libraries: the row says why.
    let (mut run, out_dir) = run_command(dir.path(), "[decode]\nmax_memory_mib = 24\n", &input);
    let out = output(&mut run);
    assert_eq!(out.status.code(), Some(3), "the run completes with a failed input: {}", String::from_utf8_lossy(&out.stderr));
    let videos: Vec<VideoRow> = rows(&out_dir);
    assert_eq!(videos[0].error_kind.map(|k| k.as_str()), Some("memory_limit"), "{:?}", videos[0]);
    assert!(videos[0].error.as_deref().unwrap_or_default().contains("decode.max_memory_mib = 24"), "{:?}", videos[0].error);
}
