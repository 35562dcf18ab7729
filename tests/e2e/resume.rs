//! A run killed with SIGKILL at any moment and started again ends with exactly the files and rows
//! of an uninterrupted run: nothing lost, nothing twice, no partial file visible.

use std::path::Path;
use std::time::{Duration, Instant};

use clipline_core::manifest::{ClipRow, RunRow, ShotRow, VideoRow};

use crate::interrupt::{kill_repeatedly, seeded, timed};
use crate::support::{clipline, lavfi_video, output, rows, tree};

fn inputs(dir: &Path) {
    for (i, pattern) in ["testsrc2", "mandelbrot", "rgbtestsrc", "smptehdbars", "testsrc", "life=mold=10:ratio=0.1"].iter().enumerate() {
        lavfi_video(&dir.join(format!("v{i}.mp4")), pattern, 40 + 15 * i as u32);
    }
}

fn run(input: &Path, output_dir: &Path) -> std::process::Command {
    let mut cmd = clipline();
    cmd.arg("run").arg("--input").arg(input).arg("--output").arg(output_dir).args(["--commit-every", "1", "--decode-concurrency", "1"]);
    cmd
}

/// Rows with the output root removed from URIs, sorted, for comparing two outputs.
fn normalised(root: &Path) -> (Vec<VideoRow>, Vec<ShotRow>, Vec<ClipRow>) {
    let prefix = format!("file://{}", root.canonicalize().unwrap().display());
    let mut videos: Vec<VideoRow> = rows(root);
    videos.sort_by(|a, b| a.source_uri.cmp(&b.source_uri));
    let mut shots: Vec<ShotRow> = rows(root);
    shots.sort_by(|a, b| (&a.source_uri, a.shot_index).cmp(&(&b.source_uri, b.shot_index)));
    let mut clips: Vec<ClipRow> = rows(root);
    clips.sort_by(|a, b| a.clip_id.cmp(&b.clip_id));
    for c in &mut clips {
        for uri in [&mut c.clip_uri, &mut c.frame_uri].into_iter().flatten() {
            *uri = uri.replace(&prefix, "");
        }
    }
    (videos, shots, clips)
}

/// What readers see: every file but the runs table (one file per invocation) and the hidden
/// staging directory (writes cut short by a kill, removed by a later run once stale).
fn outputs_without_runs(root: &Path) -> Vec<String> {
    tree(root).into_iter().filter(|p| !p.starts_with("manifests/runs/") && !p.starts_with(".staging/")).collect()
}

#[test]
fn killed_runs_resume_to_exactly_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    inputs(&input);

    let reference = dir.path().join("reference");
    let measured = timed(&mut run(&input, &reference));

    // Eight kills at moments inside the uninterrupted run's time (see `interrupt`).
    let resumed = dir.path().join("resumed");
    let mut rng = seeded("resume test");
    let kills = kill_repeatedly(&mut run(&input, &resumed), &mut rng, measured, 8);
    eprintln!("resume test: {} SIGKILLs at {kills:?}, an uninterrupted run took {measured:?}", kills.len());

    assert_eq!(outputs_without_runs(&resumed), outputs_without_runs(&reference), "same files, no leftovers");
    assert_eq!(normalised(&resumed), normalised(&reference), "same rows");
}

#[test]
fn a_second_run_over_a_finished_output_does_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    lavfi_video(&input.join("a.mp4"), "testsrc2", 40);
    let out_dir = dir.path().join("out");
    for _ in 0..2 {
        let out = output(&mut run(&input, &out_dir));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let videos: Vec<VideoRow> = rows(&out_dir);
    assert_eq!(videos.len(), 1);
    let stdout = String::from_utf8_lossy(&output(&mut run(&input, &out_dir)).stdout).to_string();
    assert!(stdout.contains("1 already done, 0 processed"), "{stdout}");
}

#[test]
fn an_output_made_with_other_settings_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.mp4");
    lavfi_video(&input, "testsrc2", 40);
    let out_dir = dir.path().join("out");
    assert!(output(&mut run(&input, &out_dir)).status.success());
    let config = dir.path().join("other.toml");
    std::fs::write(&config, "[clips]\nmax_frames = 30\n").unwrap();
    let out = output(clipline().arg("run").arg(&config).arg("-i").arg(&input).arg("-o").arg(&out_dir));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("holds results made with settings") && stderr.contains("new output"), "{stderr}");
}

#[test]
fn ctrl_c_stops_cleanly_and_the_next_run_finishes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    inputs(&input);
    let out_dir = dir.path().join("out");
    let mut child = run(&input, &out_dir).spawn().unwrap();
    // Ctrl-C once the first of the six commit chunks is published: mid-run on any machine.
    let commits = out_dir.join("manifests/_commits");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_dir(&commits).map_or(0, |d| d.count()) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended without publishing a commit marker");
        assert!(Instant::now() < deadline, "no commit marker within 2 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted after its first of six chunks: {status:?}");

    let out = output(&mut run(&input, &out_dir));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let videos: Vec<VideoRow> = rows(&out_dir);
    assert_eq!(videos.len(), 6, "every input exactly once");
    let runs: Vec<RunRow> = rows(&out_dir);
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    assert!(statuses.contains(&"interrupted"), "{statuses:?}");
    assert!(statuses.contains(&"completed"), "{statuses:?}");
}
