//! `clipline bench ...`: the Rust half of the benchmarks under `benches/`, which run it beside
//! the peer tool on the same inputs and print both. A crate of its own so that the production
//! crates do not carry benchmark code; only the binary links it, for the hidden `bench` command.

pub mod loader;
pub mod shards;
pub mod sql;
pub mod stdit;
pub mod synthesize;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use clipline_captioner::generate::GenerationSettings;
use clipline_captioner::{Captioner, CaptionerConfig};
use clipline_core::cache::cache_dir;
use clipline_embedder::{Draw, Vae, VaeLayout};
use clipline_onnx::SessionOptions;
use clipline_core::names::from_name;
use clipline_trainer::config::{CpuBackend, Device, LoopConfig};
use clipline_trainer::step_bench::{time_steps, StepShape};

/// A benchmark.
#[derive(Subcommand)]
pub enum Bench {
    /// The image VAE encoder on packed RGB frames; prints JSON with frames/s.
    VaeEncode {
        /// VAE directory or `bundled:tiny-vae`.
        #[arg(long)]
        model: String,
        /// Frames: packed RGB bytes `[n, height, width, 3]`.
        #[arg(long)]
        frames: PathBuf,
        /// Frame height.
        #[arg(long)]
        height: usize,
        /// Frame width.
        #[arg(long)]
        width: usize,
        /// Frames per model run.
        #[arg(long)]
        batch: usize,
        /// Passes over all frames; the best is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Threads per model run (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Shard sizes and speeds on the samples of an output, against fp32 `.npy` files.
    Shards(crate::shards::ShardsBench),
    /// The ready SQL queries over a synthetic manifest; prints one JSON line per query.
    Sql(crate::sql::SqlBench),
    /// Training steps of the STDiT on synthetic batches; prints JSON with the step time.
    Train {
        /// A training config (its `[model]`, `[train].device` and precision are used).
        #[arg(long)]
        config: PathBuf,
        /// Samples per batch.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Latent shape C,T,H,W.
        #[arg(long, value_delimiter = ',', required = true)]
        latent: Vec<usize>,
        /// Text tokens,width (0,0: none).
        #[arg(long, value_delimiter = ',', default_value = "0,0")]
        text: Vec<usize>,
        /// Untimed steps first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed steps.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Which backend.
        #[command(flatten)]
        backend: BackendChoice,
    },
    /// The streaming loader over whole epochs, cold and warm; prints JSON with samples/s and MB/s.
    Loader(crate::loader::LoaderBench),
    /// Write a committed output of many real-size synthetic samples (the loader benchmark's data).
    Synthesize(crate::synthesize::Synthesize),
    /// The STDiT's forward pass with safetensors weights on inputs from a JSON file (`x`,
    /// `x_shape`, `t`, optional `y`, `y_shape`, `pad`); prints the output as JSON. The check that
    /// clipline's weights mean the same in the PyTorch twin.
    StditForward {
        /// A training config: its `[model]` section.
        #[arg(long)]
        config: PathBuf,
        /// Weights named as the PyTorch twin names them.
        #[arg(long)]
        weights: PathBuf,
        /// The inputs (JSON).
        #[arg(long)]
        inputs: PathBuf,
        /// Which backend.
        #[command(flatten)]
        backend: BackendChoice,
    },
    /// The Idefics3/SmolVLM loop (vision encoder, embeddings, greedy decoding) on frames tiled
    /// and tokenized beforehand (outside the timing); `--export` writes those inputs for the
    /// Python side. Prints JSON with clips/s and tokens/s.
    VlmLoop {
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Frames: packed RGB bytes `[clips * frames, height, width, 3]`.
        #[arg(long)]
        rgb: PathBuf,
        /// Frame width.
        #[arg(long)]
        width: u32,
        /// Frame height.
        #[arg(long)]
        height: u32,
        /// Write each clip's prompt ids (`ids.json`) and tiles (`pixels.bin`) here.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Clips, batch size, token limit, passes, threads.
        #[command(flatten)]
        run: LoopArgs,
    },
    /// The caption model loop alone (encoder, then greedy decoding with the KV cache) on
    /// preprocessed frames; prints JSON with clips/s and tokens/s.
    CaptionLoop {
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Preprocessed pixels: float32 little-endian `[clips * frames, 3, size, size]`.
        #[arg(long)]
        pixels: PathBuf,
        /// Image side.
        #[arg(long)]
        size: usize,
        /// Clips, batch size, token limit, passes, threads.
        #[command(flatten)]
        run: LoopArgs,
    },
}

/// Which backend the STDiT benchmarks run on, over the config's `[train]` choice.
#[derive(Debug, clap::Args)]
pub struct BackendChoice {
    /// Override train.device (cpu, cuda).
    #[arg(long, value_parser = from_name::<Device>)]
    device: Option<Device>,
    /// Override train.cpu_backend (auto, flex, libtorch).
    #[arg(long, value_parser = from_name::<CpuBackend>)]
    cpu_backend: Option<CpuBackend>,
}

impl BackendChoice {
    /// Put the overrides into `train`.
    fn apply(&self, train: &mut LoopConfig) {
        train.device = self.device.unwrap_or(train.device);
        train.cpu_backend = self.cpu_backend.unwrap_or(train.cpu_backend);
    }
}

/// What both caption-loop benchmarks take besides their inputs.
#[derive(Debug, clap::Args)]
pub struct LoopArgs {
    /// Clips in the file.
    #[arg(long)]
    clips: usize,
    /// Frames per clip.
    #[arg(long)]
    frames: usize,
    /// Clips per batch.
    #[arg(long)]
    batch: usize,
    /// Most tokens per caption.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Passes over all clips; the best is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Threads per model run (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

impl LoopArgs {
    /// The captioner and its greedy settings.
    fn captioner(&self, model: PathBuf) -> anyhow::Result<(Captioner, GenerationSettings)> {
        let generation = GenerationSettings { max_new_tokens: self.max_new_tokens, ..GenerationSettings::default() };
        let session = SessionOptions { intra_threads: self.threads, ..SessionOptions::default() };
        let prompt = clipline_captioner::prompt::DEFAULT_PROMPT.to_string();
        Ok((Captioner::load(CaptionerConfig { model_dir: model, generation: generation.clone(), session, prompt })?, generation))
    }

    /// Print the figures of `tokens` generated in `seconds`.
    fn report(&self, seconds: f64, tokens: usize) {
        println!("{}", serde_json::json!({ "seconds": seconds, "clips_per_s": self.clips as f64 / seconds, "tokens_per_s": tokens as f64 / seconds, "tokens": tokens }));
    }
}

/// Run a benchmark, printing its figures.
///
/// # Errors
/// When its inputs cannot be read or the model fails.
pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::CaptionLoop { model, pixels, size, run } => caption_loop(model, &pixels, size, &run),
        Bench::VlmLoop { model, rgb, width, height, export, run } => vlm_loop(model, &rgb, (width, height), export.as_deref(), &run),
        Bench::VaeEncode { model, frames, height, width, batch, repeat, threads } => vae_encode(&model, &frames, (height, width), batch, repeat, threads),
        Bench::Shards(bench) => crate::shards::run(&bench),
        Bench::Sql(bench) => crate::sql::run(&bench),
        Bench::Loader(bench) => crate::loader::run(&bench),
        Bench::Synthesize(args) => crate::synthesize::run(&args),
        Bench::StditForward { config, weights, inputs, backend } => crate::stdit::forward(&config, &weights, &inputs, backend),
        Bench::Train { config, batch, latent, text, warmup, steps, backend } => {
            let mut config = clipline_trainer::TrainConfig::load(&config)?;
            backend.apply(&mut config.train);
            let (Ok(latent), Ok(text)) = (<[usize; 4]>::try_from(latent), <[usize; 2]>::try_from(text)) else {
                anyhow::bail!("--latent takes C,T,H,W and --text tokens,width");
            };
            let shape = StepShape { batch, latent, text };
            let times = time_steps(&config, shape, warmup, steps)?;
            println!("{}", serde_json::to_string(&times)?);
            Ok(())
        }
    }
}

/// Best wall time of `repeat` runs of `f`.
pub(crate) fn best_of(repeat: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        f()?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn vae_encode(model: &str, frames: &std::path::Path, (height, width): (usize, usize), batch: usize, repeat: usize, threads: usize) -> anyhow::Result<()> {
    let dir = clipline_models::resolve(model, clipline_models::Role::Vae, &clipline_embedder::bundled::ALL, &cache_dir(), "--model")?;
    let mut vae = Vae::load(&dir, &SessionOptions { intra_threads: threads, ..SessionOptions::default() })?;
    let rgb = std::fs::read(frames).with_context(|| format!("cannot read {}", frames.display()))?;
    let frame = height * width * 3;
    anyhow::ensure!(!rgb.is_empty() && rgb.len() % frame == 0, "{} does not hold whole {width}x{height} frames", frames.display());
    let n = rgb.len() / frame;
    // Image VAEs take the frames in batches; video VAEs take clips of the length they were
    // exported with, `batch` at a time being one clip each.
    let clip = match vae.layout {
        VaeLayout::Image => n,
        VaeLayout::Video { frames, .. } => frames,
    };
    anyhow::ensure!(n >= clip, "{} holds {n} frames, fewer than one clip of {clip}", frames.display());
    let n = n / clip * clip;
    let seconds = best_of(repeat, || {
        for chunk in rgb.chunks_exact(clip * frame) {
            vae.encode(chunk, clip, (height, width), Draw::Mean, batch)?;
        }
        Ok(())
    })?;
    println!("{}", serde_json::json!({ "seconds": seconds, "frames": n, "frames_per_s": n as f64 / seconds }));
    Ok(())
}

fn caption_loop(model: PathBuf, pixels: &std::path::Path, size: usize, run: &LoopArgs) -> anyhow::Result<()> {
    let LoopArgs { clips, frames, batch, repeat, .. } = *run;
    let bytes = std::fs::read(pixels).with_context(|| format!("cannot read {}", pixels.display()))?;
    let data: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let per_frame = 3 * size * size;
    anyhow::ensure!(data.len() == clips * frames * per_frame, "{} holds {} floats, expected {clips}x{frames}x3x{size}x{size}", pixels.display(), data.len());
    let (mut captioner, generation) = run.captioner(model)?;
    let model = captioner.encoder_decoder().context("the caption-loop benchmark runs encoder-decoder models (vlm-loop runs Idefics3)")?;
    let mut tokens = 0;
    let best = best_of(repeat, || {
        tokens = 0;
        for first in (0..clips).step_by(batch.max(1)) {
            let n = batch.min(clips - first);
            let slice = data[first * frames * per_frame..(first + n) * frames * per_frame].to_vec();
            let states = model.encode(&[n * frames, 3, size, size], slice, frames)?;
            let keys: Vec<String> = (first..first + n).map(|i| i.to_string()).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let out = model.generate(&states, &keys, &generation, &[])?;
            tokens += out.generated.iter().map(Vec::len).sum::<usize>();
        }
        Ok(())
    })?;
    run.report(best, tokens);
    Ok(())
}

fn vlm_loop(model: PathBuf, rgb: &std::path::Path, (width, height): (u32, u32), export: Option<&std::path::Path>, run: &LoopArgs) -> anyhow::Result<()> {
    let LoopArgs { clips, frames, batch, repeat, .. } = *run;
    let bytes = std::fs::read(rgb).with_context(|| format!("cannot read {}", rgb.display()))?;
    let frame = (width * height * 3) as usize;
    anyhow::ensure!(bytes.len() == clips * frames * frame, "{} holds {} bytes, expected {clips}x{frames} frames of {width}x{height}", rgb.display(), bytes.len());
    let images: Vec<image::RgbImage> = bytes.chunks_exact(frame).map(|b| image::RgbImage::from_raw(width, height, b.to_vec()).expect("whole frames")).collect();
    let (mut captioner, generation) = run.captioner(model)?;
    let (model, processor, tokenizer, prompt) = captioner.idefics3().context("the vlm-loop benchmark runs Idefics3/SmolVLM models")?;
    let prompt = prompt.to_string();
    let clip_frames: Vec<&[image::RgbImage]> = images.chunks(frames).collect();
    if let Some(dir) = export {
        let each: Vec<_> = clip_frames.iter().map(|c| model.prepare(&[*c], &prompt, processor, tokenizer)).collect::<Result<_, _>>()?;
        let ids: Vec<&Vec<u32>> = each.iter().map(|p| &p.ids).collect();
        std::fs::write(dir.join("ids.json"), serde_json::to_vec(&ids)?)?;
        std::fs::write(dir.join("pixels.bin"), each.iter().flat_map(|p| p.pixels.iter().flat_map(|v| v.to_le_bytes())).collect::<Vec<u8>>())?;
    }
    let prepared: Vec<_> = clip_frames.chunks(batch.max(1)).map(|b| model.prepare(b, &prompt, processor, tokenizer)).collect::<Result<_, _>>()?;
    let mut tokens = 0;
    let best = best_of(repeat, || {
        tokens = 0;
        for (i, inputs) in prepared.iter().enumerate() {
            let keys: Vec<String> = (0..inputs.ids.len() / inputs.length).map(|k| (i * batch + k).to_string()).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let out = model.generate(inputs.clone(), &keys, &generation, &[])?;
            tokens += out.generated.iter().map(Vec::len).sum::<usize>();
        }
        Ok(())
    })?;
    run.report(best, tokens);
    Ok(())
}
