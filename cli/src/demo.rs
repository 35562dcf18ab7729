//! `clipline demo`: the README's main job. It makes a few synthetic videos whose shots are known
//! (drawn shapes moving on plain backgrounds, ffmpeg's own test patterns, hard cuts, a fade
//! through black, a single take with a pan, a flash and a lighting change that must not be cut,
//! and a byte-identical copy), writes their ground truth beside them, and runs the pipeline.
//!
//! The shapes are drawn with `image` and moved by ffmpeg's `overlay`; every shot of a shape
//! carries the caption that describes it ("a red circle on a white background"), which the
//! captioner's tiny test model is trained to produce.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use image::{Rgba, RgbaImage};
use serde::Serialize;

use clipline_pipeline::config::Config;
use clipline_pipeline::tools::{last_error_line, run_limited, Limits, Tools};
use indicatif::MultiProgress;

use crate::run_cmd::run_and_report;

/// Write the demo videos under `output/inputs` and run `configs/demo.toml` over them into
/// `output`.
///
/// # Errors
/// When ffmpeg is missing, the videos cannot be written, or the run fails.
pub async fn demo(output: &Path, progress: &MultiProgress) -> anyhow::Result<std::process::ExitCode> {
    let tools = Tools::locate()?;
    let inputs = inputs_dir(output);
    tracing::info!(dir = %inputs.display(), "writing synthetic demo videos");
    let truth = tokio::task::spawn_blocking(move || write_inputs(&tools, &inputs)).await??;
    let mut config = Config::parse(include_str!("../../configs/demo.toml"), "configs/demo.toml")?;
    config.run.inputs = vec![inputs_dir(output).display().to_string()];
    config.run.output = Some(output.display().to_string());
    let code = run_and_report(config, None, progress).await?;
    let shots: usize = truth.iter().map(|t| t.segments.len()).sum();
    println!("demo: {} synthetic videos with {shots} true segments; ground truth in {}", truth.len(), inputs_dir(output).join("truth.json").display());
    Ok(code)
}

/// Frame size and rate of the demo videos.
pub const WIDTH: u32 = 320;
/// See [`WIDTH`].
pub const HEIGHT: u32 = 240;
/// See [`WIDTH`].
pub const FPS: u32 = 25;

/// A drawn shape.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A filled circle.
    Circle,
    /// A filled square as wide as the circle (its corners are what tells them apart).
    Square,
    /// A filled upward triangle.
    Triangle,
}

/// A named colour.
#[derive(Debug, Clone, Copy)]
pub struct Colour(pub &'static str, pub [u8; 3]);

const RED: Colour = Colour("red", [220, 30, 30]);
const BLUE: Colour = Colour("blue", [30, 60, 220]);
const GREEN: Colour = Colour("green", [30, 170, 60]);
const YELLOW: Colour = Colour("yellow", [240, 220, 40]);
const ORANGE: Colour = Colour("orange", [245, 140, 20]);
const WHITE: Colour = Colour("white", [255, 255, 255]);
const BLACK: Colour = Colour("black", [0, 0, 0]);

/// What a segment shows.
#[derive(Debug, Clone)]
pub enum Scene {
    /// A shape moving on an ellipse over a plain background.
    Shape {
        /// The shape.
        shape: Shape,
        /// Its colour.
        colour: Colour,
        /// The background colour.
        background: Colour,
        /// Horizontal and vertical amplitude of the path, pixels.
        path: (u32, u32),
    },
    /// An ffmpeg lavfi source graph producing `WIDTH`x`HEIGHT` at `FPS`.
    Lavfi(&'static str),
    /// Black frames between a fade-out and a fade-in: part of no shot.
    Blank,
}

/// A run of frames of one scene.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The content.
    pub scene: Scene,
    /// Frames.
    pub frames: u32,
    /// Frames of fade-in from black at the start.
    pub fade_in: u32,
    /// Frames of fade-out to black at the end.
    pub fade_out: u32,
}

impl Segment {
    fn new(scene: Scene, frames: u32) -> Self {
        Self { scene, frames, fade_in: 0, fade_out: 0 }
    }

    fn caption(&self) -> Option<String> {
        match &self.scene {
            Scene::Shape { shape, colour, background, .. } => {
                let name = match shape {
                    Shape::Circle => "circle",
                    Shape::Square => "square",
                    Shape::Triangle => "triangle",
                };
                Some(format!("a {} {name} on a {} background", colour.0, background.0))
            }
            Scene::Lavfi(_) | Scene::Blank => None,
        }
    }
}

fn shape(shape: Shape, colour: Colour, background: Colour, path: (u32, u32)) -> Scene {
    Scene::Shape { shape, colour, background, path }
}

/// Frames for one turn of a shape's path.
const PATH_PERIOD: u32 = 50;

/// The demo videos: file name and segments (a segment boundary is a hard cut unless fades
/// meet there).
pub fn videos() -> Vec<(&'static str, Vec<Segment>)> {
    vec![
        (
            "shapes.mp4",
            vec![
                Segment::new(shape(Shape::Circle, RED, WHITE, (100, 30)), 60),
                Segment::new(shape(Shape::Square, BLUE, WHITE, (40, 70)), 75),
                Segment::new(shape(Shape::Triangle, GREEN, BLACK, (90, 60)), 50),
                Segment::new(shape(Shape::Circle, YELLOW, BLUE, (110, 20)), 40),
            ],
        ),
        (
            "fades.mp4",
            vec![
                Segment { fade_out: 10, ..Segment::new(Scene::Lavfi("mandelbrot=s=320x240:r=25"), 90) },
                Segment::new(Scene::Blank, 6),
                Segment { fade_in: 10, ..Segment::new(shape(Shape::Square, ORANGE, WHITE, (100, 60)), 260) },
                Segment::new(Scene::Lavfi("testsrc2=s=320x240:r=25"), 10),
                Segment::new(Scene::Lavfi("smptebars=s=320x240:r=25"), 50),
            ],
        ),
        (
            "one_take.mp4",
            vec![Segment::new(
                Scene::Lavfi(
                    "testsrc2=s=640x240:r=25,crop=320:240:x='min(n*2\\,320)':y=0,\
                     drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='between(n,60,61)',\
                     eq=brightness=0.12:enable='gte(n,100)'",
                ),
                150,
            )],
        ),
    ]
}

/// Ground truth of one demo video, written to `inputs/truth.json`.
#[derive(Debug, Serialize)]
pub struct Truth {
    /// File name under `inputs/`.
    pub file: String,
    /// Total frames.
    pub frames: u32,
    /// Segments: `[start, end)`, how they begin, and the caption of shape scenes.
    pub segments: Vec<TruthSegment>,
    /// For a byte copy: the file it copies.
    pub copy_of: Option<String>,
}

/// One segment of the truth.
#[derive(Debug, Serialize)]
pub struct TruthSegment {
    /// First frame.
    pub start: u32,
    /// Frame after the last.
    pub end: u32,
    /// Frames fading in at the start.
    pub fade_in: u32,
    /// Frames fading out at the end.
    pub fade_out: u32,
    /// The caption of a shape scene.
    pub caption: Option<String>,
    /// Whether the segment is blank (a fade's black frames, in no shot).
    pub blank: bool,
}

/// Write the demo videos and `truth.json` into `dir`; returns the truth.
///
/// # Errors
/// When ffmpeg fails or files cannot be written.
pub fn write_inputs(tools: &Tools, dir: &Path) -> anyhow::Result<Vec<Truth>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sprites = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut truth = Vec::new();
    for (file, segments) in videos() {
        let path = dir.join(file);
        render(tools, &segments, sprites.path(), &path).with_context(|| format!("cannot render demo video {}", path.display()))?;
        let mut at = 0;
        let segs = segments
            .iter()
            .map(|s| {
                let seg = TruthSegment {
                    start: at,
                    end: at + s.frames,
                    fade_in: s.fade_in,
                    fade_out: s.fade_out,
                    caption: s.caption(),
                    blank: matches!(s.scene, Scene::Blank),
                };
                at += s.frames;
                seg
            })
            .collect();
        truth.push(Truth { file: file.into(), frames: at, segments: segs, copy_of: None });
    }
    std::fs::copy(dir.join("shapes.mp4"), dir.join("shapes_copy.mp4")).context("cannot copy shapes.mp4")?;
    truth.push(Truth { file: "shapes_copy.mp4".into(), frames: truth[0].frames, segments: vec![], copy_of: Some("shapes.mp4".into()) });
    std::fs::write(dir.join("truth.json"), serde_json::to_vec_pretty(&truth)?)?;
    Ok(truth)
}

fn render(tools: &Tools, segments: &[Segment], sprites: &Path, out: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"]);
    let mut graph = Vec::new();
    let mut input = 0;
    for (i, seg) in segments.iter().enumerate() {
        let mut chain = match &seg.scene {
            Scene::Blank | Scene::Lavfi(_) => {
                let src = match &seg.scene {
                    Scene::Lavfi(src) => src.to_string(),
                    _ => format!("color=c=black:s={WIDTH}x{HEIGHT}:r={FPS}"),
                };
                cmd.args(["-f", "lavfi", "-i", &src]);
                input += 1;
                format!("[{}:v]", input - 1)
            }
            Scene::Shape { shape, colour, background, path } => {
                let sprite = sprites.join(format!("{i}.png"));
                draw(*shape, *colour).save(&sprite)?;
                let [r, g, b] = background.1;
                cmd.args(["-f", "lavfi", "-i", &format!("color=c=0x{r:02x}{g:02x}{b:02x}:s={WIDTH}x{HEIGHT}:r={FPS}")]);
                cmd.args(["-loop", "1", "-framerate", &FPS.to_string(), "-i"]).arg(&sprite);
                input += 2;
                let (bg, fg) = (input - 2, input - 1);
                let (cx, cy) = ((WIDTH - SPRITE) / 2, (HEIGHT - SPRITE) / 2);
                let w = format!("2*PI*n/{PATH_PERIOD}");
                graph.push(format!("[{bg}:v][{fg}:v]overlay=x='{cx}+{}*sin({w})':y='{cy}+{}*cos({w})':shortest=1[o{i}]", path.0, path.1));
                format!("[o{i}]")
            }
        };
        chain.push_str(&format!("trim=end_frame={},setpts=PTS-STARTPTS,format=yuv420p", seg.frames));
        if seg.fade_in > 0 {
            chain.push_str(&format!(",fade=t=in:start_frame=0:nb_frames={}", seg.fade_in));
        }
        if seg.fade_out > 0 {
            chain.push_str(&format!(",fade=t=out:start_frame={}:nb_frames={}", seg.frames - seg.fade_out, seg.fade_out));
        }
        graph.push(format!("{chain}[s{i}]"));
    }
    let labels: String = (0..segments.len()).map(|i| format!("[s{i}]")).collect();
    graph.push(format!("{labels}concat=n={}:v=1:a=0[v]", segments.len()));
    cmd.args(["-filter_complex", &graph.join(";"), "-map", "[v]", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p"])
        .arg(out);
    let limits = Limits { stall: Duration::from_secs(120), total: Duration::from_secs(300) };
    let done = run_limited(cmd, limits, Arc::new(AtomicBool::new(false)))?;
    anyhow::ensure!(done.success, "ffmpeg: {}", last_error_line(&done.stderr));
    Ok(())
}

/// Side of the square sprite a shape is drawn in.
const SPRITE: u32 = 64;

fn draw(shape: Shape, colour: Colour) -> RgbaImage {
    let [r, g, b] = colour.1;
    let half = SPRITE as f32 / 2.0;
    RgbaImage::from_fn(SPRITE, SPRITE, |x, y| {
        let (fx, fy) = (x as f32 + 0.5 - half, y as f32 + 0.5 - half);
        let inside = match shape {
            Shape::Circle => fx * fx + fy * fy <= (half - 4.0).powi(2),
            Shape::Square => fx.abs() <= half - 4.0 && fy.abs() <= half - 4.0,
            Shape::Triangle => {
                let top = 6.0 - half;
                let bottom = half - 6.0;
                fy >= top && fy <= bottom && fx.abs() <= (fy - top) / (bottom - top) * (half - 4.0)
            }
        };
        if inside { Rgba([r, g, b, 255]) } else { Rgba([0, 0, 0, 0]) }
    })
}

/// The demo's input directory under an output directory.
pub fn inputs_dir(output: &Path) -> PathBuf {
    output.join("inputs")
}
