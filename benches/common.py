"""Helpers shared by the benchmark scripts: where things are, timing, running clipline."""
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/clipline/target"))
CLIPLINE = Path(os.environ.get("CLIPLINE_BIN", TARGET / "debug/clipline"))
VIDEOS = Path(os.environ.get("CLIPLINE_VIDEOS", REPO.parent / "shared/videos"))
EXTENSIONS = {".mp4", ".mkv", ".webm", ".mov"}
CORES = os.cpu_count() or 2


def need_clipline():
    if not CLIPLINE.exists():
        sys.exit(f"{CLIPLINE} not found: build it first (scripts/demo.sh builds it), or set CLIPLINE_BIN")


def videos(directory=VIDEOS):
    if not Path(directory).is_dir():
        sys.exit(f"no videos at {directory}: set CLIPLINE_VIDEOS or pass a directory")
    return sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in EXTENSIONS)


def probe_frames(path):
    """(decoded frame count, duration in seconds) of a video, by decoding it once."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames:format=duration", "-of", "json", str(path)],
        check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    return int(info["streams"][0]["nb_read_frames"]), float(info["format"]["duration"])


REPEAT = int(os.environ.get("CLIPLINE_BENCH_REPEAT", "3"))


def clipline_bench(name, **flags):
    """Run `clipline bench NAME --flag value ...` and return the JSON line it prints."""
    need_clipline()
    cmd = [str(CLIPLINE), "-q", "bench", name]
    for flag, value in flags.items():
        cmd += ["--" + flag.replace("_", "-"), str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def best_of(fn, *args, cleanup=None):
    """Fastest wall time of REPEAT runs (this machine is shared; the minimum is the least noisy)."""
    best = float("inf")
    for _ in range(REPEAT):
        t, result = timed(fn, *args)
        best = min(best, t)
        if cleanup:
            cleanup(result)
    return best


def parallel(fn, items, workers=CORES):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def plain_decode(path, width=128, height=72):
    """ffmpeg decode scaled to the analysis size, frames discarded: the floor for detection."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-an", "-sn",
         "-vf", f"scale={width}:{height}:flags=area", "-fps_mode", "passthrough",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, stdout=subprocess.DEVNULL)


def clipline_run(inputs, *flags, output=None):
    """Run `clipline run` over inputs into a fresh (or given) output; returns the output dir."""
    need_clipline()
    out = output or tempfile.mkdtemp(prefix="clipline-bench-")
    cmd = [str(CLIPLINE), "--quiet", "run", "--output", out, *flags]
    for i in inputs:
        cmd += ["--input", str(i)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "RUST_LOG": "error"})
    if proc.returncode not in (0, 3):
        sys.exit(f"clipline failed ({proc.returncode}): {proc.stderr}")
    return out


def read_shots(output):
    """{source file name: [shot start frames]} from a clipline output (needs duckdb)."""
    import duckdb
    rows = duckdb.sql(
        f"SELECT source_uri, list(start_frame ORDER BY shot_index) FROM '{output}/manifests/shots/*.parquet' GROUP BY 1"
    ).fetchall()
    return {Path(uri).name: starts for uri, starts in rows}


def read_boundaries(output):
    """{source file name: [(first frame, end frame) of each transition between shots]} from a
    clipline output: the frames of a transition belong to no shot (first == end for a cut)."""
    import duckdb
    rows = duckdb.sql(
        f"SELECT source_uri, list((transition_start_frame, start_frame) ORDER BY shot_index) FILTER (WHERE transition <> 'start') "
        f"FROM '{output}/manifests/shots/*.parquet' GROUP BY 1"
    ).fetchall()
    return {Path(uri).name: [tuple(b.values()) if isinstance(b, dict) else tuple(b) for b in spans or []] for uri, spans in rows}


def read_clips(output):
    """{source file name: [(start frame, end frame, status) of each planned clip]} (needs duckdb)."""
    import duckdb
    rows = duckdb.sql(
        f"SELECT source_uri, list((start_frame, end_frame, status) ORDER BY start_frame) FROM '{output}/manifests/clips/*.parquet' GROUP BY 1"
    ).fetchall()
    return {Path(uri).name: [tuple(c.values()) if isinstance(c, dict) else tuple(c) for c in clips] for uri, clips in rows}


def pyscenedetect_cuts(path, detector):
    """Cut frames (starts of scenes after the first) by PySceneDetect with OpenCV, at defaults."""
    from scenedetect import SceneManager, open_video
    from scenedetect.detectors import AdaptiveDetector, ContentDetector
    manager = SceneManager()
    manager.add_detector(ContentDetector() if detector == "content" else AdaptiveDetector())
    manager.detect_scenes(open_video(str(path)))
    return [scene[0].frame_num for scene in manager.get_scene_list()[1:]]
