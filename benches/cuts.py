#!/usr/bin/env python3
"""Benchmark `cuts`: cut accuracy of clipline and PySceneDetect, side by side.

    python3 benches/cuts.py [VIDEO_DIR]      (default: $CLIPLINE_VIDEOS or ../shared/videos)

Test videos are composed by joining single-shot real footage at known frames (every piece
normalised to 640x360 at 25 fps):
  hard   hard cuts between different sources;
  jump   hard cuts between two moments of the same camera (jump cuts: the hardest case);
  fades  fade out / fade in through black (10 frames each way);
plus bikes_street_cuts.mp4, whose cut frames its source project's test suite asserts.
A hard cut is found when a detected boundary lies within +-1 frame; a fade when one lies inside
the fade. Prints precision, recall and F1 per set and overall.
Needs: ffmpeg, a built clipline, `pip install scenedetect opencv-python-headless duckdb`.
"""
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import CORES, VIDEOS, clipline_run, pyscenedetect_cuts, read_shots

# (source file, start second, frames)
SETS = {
    "hard": [("chaplin_bw_clip.mp4", 1, 60), ("bbb_5s_720p.mp4", 0.5, 50), ("carphone_qcif.mp4", 0, 70),
             ("aerial_parking_cars.mp4", 5, 45), ("bottles_table.mp4", 3, 80), ("asl_sign_again.mkv", 0, 40),
             ("dog_by_fireplace_phone.mp4", 0, 40), ("people_one_by_one_indoor.mp4", 30, 90), ("asl_sign_book.mkv", 0.5, 60)],
    "jump": [("people_one_by_one_indoor.mp4", 10, 50), ("people_one_by_one_indoor.mp4", 70, 50), ("bottles_table.mp4", 5, 50),
             ("bottles_table.mp4", 25, 50), ("aerial_parking_cars.mp4", 2, 50), ("aerial_parking_cars.mp4", 22, 50),
             ("chaplin_bw_clip.mp4", 0, 50), ("chaplin_bw_clip.mp4", 6, 50)],
    "fades": [("chaplin_bw_clip.mp4", 4, 70), ("people_one_by_one_indoor.mp4", 60, 70), ("bottles_table.mp4", 15, 70),
              ("aerial_parking_cars.mp4", 15, 70), ("bbb_5s_720p.mp4", 2.5, 60)],
}
FADE = 10
BIKES_CUTS = [30, 76, 137, 187, 242]


def compose(name, pieces, fade, out_dir):
    """Join the pieces; returns (path, truth) with truth a list of (lo, hi) frame windows."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-nostdin"]
    chains, truth, at = [], [], 0
    for i, (src, start, frames) in enumerate(pieces):
        cmd += ["-ss", str(start), "-i", str(VIDEOS / src)]
        chain = (f"[{i}:v]fps=25,scale=640:360:force_original_aspect_ratio=increase,crop=640:360,setsar=1,"
                 f"trim=end_frame={frames},setpts=PTS-STARTPTS,format=yuv420p")
        if fade and i > 0:
            chain += f",fade=t=in:start_frame=0:nb_frames={FADE}"
        if fade and i < len(pieces) - 1:
            chain += f",fade=t=out:start_frame={frames - FADE}:nb_frames={FADE}"
        chains.append(chain + f"[s{i}]")
        if i > 0:
            truth.append((at - FADE, at + FADE) if fade else (at - 1, at + 1))
        at += frames
    labels = "".join(f"[s{i}]" for i in range(len(pieces)))
    graph = ";".join(chains) + f";{labels}concat=n={len(pieces)}:v=1:a=0[v]"
    path = out_dir / f"{name}.mp4"
    subprocess.run(cmd + ["-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-crf", "18", str(path)], check=True)
    return path, truth


def score(found, truth):
    """(true positives, predicted, true) with one-to-one matching inside the windows."""
    unused = sorted(found)
    hits = 0
    for lo, hi in truth:
        match = next((f for f in unused if lo <= f <= hi), None)
        if match is not None:
            unused.remove(match)
            hits += 1
    return hits, len(found), len(truth)


def prf(hits, predicted, true):
    p = hits / predicted if predicted else 1.0
    r = hits / true if true else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main():
    global VIDEOS
    if len(sys.argv) > 1:
        VIDEOS = Path(sys.argv[1])
    work = Path(tempfile.mkdtemp(prefix="clipline-cuts-"))
    cases = {}
    for name, pieces in SETS.items():
        cases[name] = compose(name, pieces, name == "fades", work)
    cases["bikes"] = (VIDEOS / "bikes_street_cuts.mp4", [(c - 1, c + 1) for c in BIKES_CUTS])

    out = clipline_run([path for path, _ in cases.values()], "--no-clip-files", "--no-middle-frames")
    ours = read_shots(out)
    found = {"clipline": {name: ours.get(path.name, [0])[1:] for name, (path, _) in cases.items()}}
    for detector in ("content", "adaptive"):
        with ProcessPoolExecutor(max_workers=CORES) as pool:
            cuts = list(pool.map(pyscenedetect_cuts, [p for p, _ in cases.values()], [detector] * len(cases)))
        found[f"PySceneDetect {detector}"] = dict(zip(cases, cuts))

    print(f"{'detector':24} {'set':6} {'P':>6} {'R':>6} {'F1':>6}   found / true")
    for tool, per_case in found.items():
        total = [0, 0, 0]
        for name, (_, truth) in cases.items():
            s = score(per_case[name], truth)
            total = [a + b for a, b in zip(total, s)]
            print(f"{tool:24} {name:6} {prf(*s)[0]:6.2f} {prf(*s)[1]:6.2f} {prf(*s)[2]:6.2f}   {s[0]}/{s[2]} hits, {s[1]} found")
        hard = [a + b for a, b in zip(score(per_case['hard'], cases['hard'][1]), score(per_case['bikes'], cases['bikes'][1]))]
        print(f"{tool:24} {'ALL':6} {prf(*total)[0]:6.2f} {prf(*total)[1]:6.2f} {prf(*total)[2]:6.2f}   hard cuts (hard+bikes) F1 {prf(*hard)[2]:.2f}")
    shutil.rmtree(work)
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
