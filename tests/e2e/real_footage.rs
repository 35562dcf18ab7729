//! Behaviour on real footage, read from `CLIPLINE_VIDEOS` or `../shared/videos` beside the repo
//! (the footage is not part of the repository). Skipped when neither exists, or a failure under
//! `CLIPLINE_REQUIRE_FOOTAGE`, which scripts/test.sh sets.

use std::path::PathBuf;

use clipline_core::manifest::ShotRow;
use clipline_testkit::Need;

use crate::support::{clipline, output, rows};

fn footage() -> Option<PathBuf> {
    let dir = std::env::var_os("CLIPLINE_VIDEOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/videos"));
    if dir.join("bikes_street_cuts.mp4").is_file() { Some(dir) } else { Need::Footage.missing(format_args!("no real footage at {} (no bikes_street_cuts.mp4)", dir.display())) }
}

#[test]
fn real_cuts_are_found_exactly_and_single_takes_stay_whole() {
    let Some(videos) = footage() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clipline();
    cmd.args(["run", "--no-clip-files", "--no-middle-frames", "-o"]).arg(dir.path());
    for name in ["bikes_street_cuts.mp4", "chaplin_bw_clip.mp4", "dog_by_fireplace_phone.mp4", "aerial_parking_cars.mp4"] {
        cmd.arg("-i").arg(videos.join(name));
    }
    let out = output(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shots: Vec<ShotRow> = rows(dir.path());
    let starts = |name: &str| -> Vec<i64> { shots.iter().filter(|s| s.source_uri.ends_with(name)).map(|s| s.start_frame).collect() };
    // The cut frames asserted by the source project's own test suite (SOURCES.md).
    assert_eq!(starts("bikes_street_cuts.mp4"), vec![0, 30, 76, 137, 187, 242]);
    for single in ["chaplin_bw_clip.mp4", "dog_by_fireplace_phone.mp4", "aerial_parking_cars.mp4"] {
        assert_eq!(starts(single), vec![0], "{single} is one continuous shot");
    }
}
