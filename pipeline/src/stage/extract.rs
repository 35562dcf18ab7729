//! The extraction stage: each planned clip's row, and for the clips kept, their files (the clip,
//! its middle frame) written with ffmpeg and uploaded, and the frames the model stages take (the
//! captioner's sampled frames, the embedder's bucketed frames), several clips of a video per
//! ffmpeg process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clipline_core::ids::clip_id;
use clipline_core::manifest::{ClipRow, ClipStatus};
use clipline_embedder::{Bucket, ClipShape};
use image::RgbImage;
use tempfile::TempPath;

use super::probe::{FrameTimes, Probed};
use super::RunContext;
use crate::batch::together_or_alone;
use crate::caption::ClipFrames;
use crate::clips::PlannedClip;
use crate::config::ClipsConfig;
use crate::embed::{EmbedInput, Kind, SampleFrames};
use crate::extract::{self, Seek};
use crate::sources::Fetched;
use crate::tools::Limits;

/// The output refused a clip's file (after the store's retries): the run must stop.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageFailure(pub String);

/// A video's clips after extraction.
pub struct Extracted {
    /// Every planned clip's row: `ok`, `filtered` by the planner, or `failed` when its files
    /// could not be made.
    pub clips: Vec<ClipRow>,
    /// The kept clips' sampled frames, for the caption stage.
    pub caption_frames: Vec<ClipFrames>,
    /// The kept clips' samples, for the embed stage (with their bucketed frames, or why they
    /// have none).
    pub embed_inputs: Vec<EmbedInput>,
}

/// The extraction stage.
pub struct ExtractStage {
    ctx: Arc<RunContext>,
}

impl ExtractStage {
    /// A stage writing what the run's `[clips]`, `[caption]` and `[embed]` ask for.
    pub fn new(ctx: Arc<RunContext>) -> Self {
        Self { ctx }
    }

    /// The clip's row, before its files are written.
    fn clip_row(&self, fetched: &Fetched, uri: &str, (width, height): (u32, u32), times: &FrameTimes, clip: &PlannedClip) -> ClipRow {
        let (start_pts, end_pts) = (times.pts(clip.start), times.pts(clip.end));
        let duration = (end_pts - start_pts).max(1e-9);
        ClipRow {
            clip_id: clip_id(&fetched.video_id, clip.start, clip.end),
            video_id: fetched.video_id.clone(),
            source_uri: uri.to_string(),
            shot_index: clip.shot_index as i64,
            clip_index: clip.clip_index as i64,
            start_frame: clip.start as i64,
            end_frame: clip.end as i64,
            num_frames: (clip.end - clip.start) as i64,
            start_pts,
            end_pts,
            duration_s: duration,
            fps: (clip.end - clip.start) as f64 / duration,
            width: width as i64,
            height: height as i64,
            aspect: width as f64 / height.max(1) as f64,
            motion: clip.scores.motion,
            brightness: clip.scores.brightness,
            sharpness: clip.scores.sharpness,
            phash: format!("{:016x}", clip.scores.phash),
            is_static: clip.is_static,
            status: if clip.filter_reason.is_some() { ClipStatus::Filtered } else { ClipStatus::Ok },
            filter_reason: clip.filter_reason.clone(),
            clip_uri: None,
            frame_uri: None,
            detector: self.ctx.detector.clone(),
            settings_hash: self.ctx.settings_hash.clone(),
        }
    }

    /// Rows of all `planned` clips of `fetched` (known to the user as `uri`); the files of those
    /// not filtered are written meanwhile, and their caption frames and bucketed frames taken.
    ///
    /// # Errors
    /// When the output refuses a file.
    pub async fn run(self: &Arc<Self>, fetched: &Fetched, uri: &str, probed: &Probed, planned: &[PlannedClip]) -> Result<Extracted, StorageFailure> {
        let (probe, times) = (&probed.probe, &probed.times);
        let mut rows: Vec<ClipRow> = planned.iter().map(|clip| self.clip_row(fetched, uri, probe.video.display_size(), times, clip)).collect();
        let wanted: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].filter_reason.is_none()).collect();
        self.ctx.stages.extract.progress.expect(wanted.len() as u64);
        let c = &self.ctx.config.clips;
        if !c.write_clip_files && !c.write_middle_frames && !self.ctx.config.caption.enabled() && !self.ctx.config.embed.enabled() {
            self.ctx.stages.extract.skip(wanted.len() as u64);
            return Ok(Extracted { clips: rows, caption_frames: Vec::new(), embed_inputs: Vec::new() });
        }
        let mut embed_inputs = Vec::new();
        let specs: Vec<ClipFiles> = wanted
            .iter()
            .map(|&i| {
                let mut files = self.clip_files(&fetched.video_id, &rows[i].clip_id, &planned[i], times, probe.video.index);
                files.embed_frames = self.embed_frames(&rows[i], &planned[i], &mut embed_inputs);
                files
            })
            .collect();
        let batches = specs.chunks(self.ctx.config.run.extract_batch).map(|batch| self.extract_batch(fetched, batch.to_vec()));
        let results: Vec<Written> = futures::future::join_all(batches).await.into_iter().flatten().collect();
        let mut caption_frames = Vec::new();
        for (&i, result) in wanted.iter().zip(results) {
            let row = &mut rows[i];
            match result {
                Ok(written) => {
                    (row.clip_uri, row.frame_uri) = (written.clip_uri, written.frame_uri);
                    if !written.caption_frames.is_empty() {
                        caption_frames.push(ClipFrames { clip_id: row.clip_id.clone(), frames: written.caption_frames });
                    }
                    embed_inputs.extend(written.embed_inputs);
                }
                Err(ClipFailure::Clip(message)) => {
                    tracing::warn!(clip = %row.clip_id, "{message}");
                    row.status = ClipStatus::Failed;
                    row.filter_reason = Some(message);
                }
                Err(ClipFailure::Storage(failure)) => return Err(failure),
            }
        }
        Ok(Extracted { clips: rows, caption_frames, embed_inputs })
    }

    /// The bucketed frames to take for a clip's samples; samples no bucket fits go straight to
    /// `skipped` (as inputs without frames).
    fn embed_frames(&self, row: &ClipRow, clip: &PlannedClip, skipped: &mut Vec<EmbedInput>) -> Vec<EmbedFrames> {
        if !self.ctx.config.embed.enabled() {
            return Vec::new();
        }
        let shape = ClipShape { width: row.width as u32, height: row.height as u32, frames: row.num_frames as u64, fps: row.fps };
        let (video, image) = self.ctx.config.embed.buckets.assign(shape);
        let mut wanted = Vec::new();
        for (kind, bucket) in std::iter::once((Kind::Video, video)).chain(image.map(|b| (Kind::Image, b))) {
            match bucket {
                Ok(bucket) => {
                    let first = match kind {
                        Kind::Video => bucket.frame_offsets(shape.frames)[0],
                        Kind::Image => clip.middle_frame() - clip.start,
                    };
                    wanted.push(EmbedFrames { kind, bucket, first, path: PathBuf::new() });
                }
                Err(reason) => skipped.push(EmbedInput { clip_id: row.clip_id.clone(), kind, frames: SampleFrames::NoBucket(reason), caption: None }),
            }
        }
        wanted
    }

    /// What to write for one clip, and where its frames are.
    fn clip_files(&self, video_id: &str, id: &str, clip: &PlannedClip, times: &FrameTimes, stream: u32) -> ClipFiles {
        let ext = &self.ctx.config.clips.frame_format;
        ClipFiles {
            clip_key: format!("clips/{video_id}/{id}.mp4"),
            frame_key: format!("frames/{video_id}/{id}.{ext}"),
            name: id.to_string(),
            seek: times.seek(clip.start, stream),
            frames: clip.end - clip.start,
            middle: clip.middle_frame() - clip.start,
            seconds: times.pts(clip.end) - times.pts(clip.start),
            clip_path: PathBuf::new(),
            frame_path: PathBuf::new(),
            embed_frames: Vec::new(),
            caption_frames: if self.ctx.config.caption.enabled() {
                self.ctx.config.caption.frame_offsets(clip.end - clip.start).into_iter().map(|o| (o, PathBuf::new())).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Write and upload the files of a batch of clips with one ffmpeg process; when the batch
    /// fails, each clip is tried alone, so one bad clip does not fail its neighbours.
    async fn extract_batch(self: &Arc<Self>, fetched: &Fetched, mut batch: Vec<ClipFiles>) -> Vec<Written> {
        let dir = match tempfile::tempdir_in(&self.ctx.scratch) {
            Ok(dir) => dir,
            Err(e) => {
                let message = format!("cannot create scratch dir in {}: {e}", self.ctx.scratch.display());
                return batch.iter().map(|_| Err(ClipFailure::Clip(message.clone()))).collect();
            }
        };
        for files in &mut batch {
            files.clip_path = dir.path().join(format!("{}.mp4", files.name));
            files.frame_path = dir.path().join(format!("{}.{}", files.name, self.ctx.config.clips.frame_format));
            for (k, (_, path)) in files.caption_frames.iter_mut().enumerate() {
                *path = dir.path().join(format!("{}-caption{k}.ppm", files.name));
            }
            // Bucket frames outlive the batch's directory: they wait in the run's scratch for
            // the embed stage, named after the batch too, since two copies of a video processed
            // at once have the same clip names.
            let batch_name = dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for (k, frames) in files.embed_frames.iter_mut().enumerate() {
                frames.path = self.ctx.scratch.join(format!("{batch_name}-{}-embed{k}.rgb", files.name));
            }
        }
        let seconds: f64 = batch.iter().map(|f| f.seconds).sum();
        let limits = Limits {
            stall: Duration::from_secs(self.ctx.config.decode.stall_timeout_s),
            total: Duration::from_secs_f64(self.ctx.config.decode.timeout_base_s as f64 + 10.0 * seconds),
        };
        let (me, source, work) = (self.clone(), fetched.path.clone(), batch.clone());
        let written = self
            .ctx
            .stages
            .extract
            .run_blocking_items(batch.len() as u64, move || {
                let c = &me.ctx.config.clips;
                let runner = extract::Runner { tools: &me.ctx.tools, limits, cancel: me.ctx.cancel.flag() };
                let caption_side = me.ctx.config.caption.frame_max_side;
                together_or_alone(&work, |clips| runner.extract(&source, &extraction_jobs(clips, c, caption_side)).map(|()| vec![(); clips.len()]))
            })
            .await;
        let mut results = Vec::with_capacity(batch.len());
        for (files, outcome) in batch.iter().zip(written) {
            results.push(match outcome {
                Ok(()) => self.upload(files).await,
                Err(e) => Err(ClipFailure::Clip(e)),
            });
        }
        results
    }

    /// Upload one of a clip's files.
    async fn put_clip_file(&self, key: &str, path: &Path) -> Result<String, ClipFailure> {
        extract::upload(&self.ctx.output, key, path).await.map_err(|e| ClipFailure::Storage(StorageFailure(e)))
    }

    async fn upload(&self, files: &ClipFiles) -> Written {
        let c = &self.ctx.config.clips;
        let clip_uri = if c.write_clip_files { Some(self.put_clip_file(&files.clip_key, &files.clip_path).await?) } else { None };
        let frame_uri = if c.write_middle_frames { Some(self.put_clip_file(&files.frame_key, &files.frame_path).await?) } else { None };
        let caption_frames = files
            .caption_frames
            .iter()
            .map(|(_, path)| image::open(path).map(|i| i.to_rgb8()).map_err(|e| ClipFailure::Clip(format!("cannot read caption frame {}: {e}", path.display()))))
            .collect::<Result<_, _>>()?;
        let embed_inputs = files.embed_frames.iter().map(|f| EmbedInput { clip_id: files.name.clone(), kind: f.kind, frames: f.take(), caption: None }).collect();
        Ok(WrittenClip { clip_uri, frame_uri, caption_frames, embed_inputs })
    }
}

/// What a clip's extraction produced.
struct WrittenClip {
    /// URI of the clip file, when configured.
    clip_uri: Option<String>,
    /// URI of the middle frame, when configured.
    frame_uri: Option<String>,
    /// Frames for the captioner, when captioning.
    caption_frames: Vec<RgbImage>,
    /// Bucketed frames for the embedder, when embedding.
    embed_inputs: Vec<EmbedInput>,
}

/// Why a clip has no files.
enum ClipFailure {
    /// They could not be made or read back: the clip fails alone.
    Clip(String),
    /// The output refused them: the run stops.
    Storage(StorageFailure),
}

/// A clip's files and frames, or why they are missing.
type Written = Result<WrittenClip, ClipFailure>;

/// The files one clip gets, and where its frames are in the source.
#[derive(Clone)]
struct ClipFiles {
    /// The clip id, which names the files.
    name: String,
    /// Output key of the clip file.
    clip_key: String,
    /// Output key of the middle frame.
    frame_key: String,
    /// Scratch path of the clip file (set when its batch runs).
    clip_path: PathBuf,
    /// Scratch path of the middle frame (set when its batch runs).
    frame_path: PathBuf,
    /// Seek to the clip's first frame.
    seek: Seek,
    /// Frames in the clip.
    frames: u64,
    /// Middle frame, counted from the first.
    middle: u64,
    /// Duration, seconds.
    seconds: f64,
    /// Frames for the captioner: offset from the first frame, scratch path.
    caption_frames: Vec<(u64, PathBuf)>,
    /// Bucketed frames for the embedder.
    embed_frames: Vec<EmbedFrames>,
}

/// One sample's frames to take from a clip.
#[derive(Clone)]
struct EmbedFrames {
    kind: Kind,
    bucket: Bucket,
    /// First frame taken, counted from the clip's first.
    first: u64,
    /// Scratch path of the raw frames (set when its batch runs).
    path: PathBuf,
}

impl EmbedFrames {
    /// The scratch file ffmpeg wrote, now owned by the sample (deleted when it is dropped).
    fn take(&self) -> SampleFrames {
        let bucket = self.bucket.clone();
        match TempPath::try_from_path(&self.path) {
            Ok(frames) => SampleFrames::Ready { bucket, frames },
            Err(e) => SampleFrames::Missing { bucket, reason: format!("ffmpeg wrote no bucket frames to {}: {e}", self.path.display()) },
        }
    }
}

/// The ffmpeg jobs that write a batch's files, as configured.
fn extraction_jobs<'a>(batch: &'a [ClipFiles], c: &'a ClipsConfig, caption_side: u32) -> Vec<extract::Job<'a>> {
    batch
        .iter()
        .map(|f| {
            let mut outputs = Vec::new();
            if c.write_clip_files {
                outputs.push(extract::Output::Clip { frames: f.frames, cfg: c, dest: &f.clip_path });
            }
            if c.write_middle_frames {
                outputs.push(extract::Output::Frame { offset: f.middle, max_side: c.frame_max_side, dest: &f.frame_path });
            }
            for (offset, dest) in &f.caption_frames {
                outputs.push(extract::Output::Frame { offset: *offset, max_side: caption_side, dest });
            }
            for e in &f.embed_frames {
                let b = &e.bucket;
                outputs.push(extract::Output::Raw {
                    first: e.first,
                    count: u64::from(b.frames),
                    stride: u64::from(b.stride),
                    width: b.width,
                    height: b.height,
                    dest: &e.path,
                });
            }
            extract::Job { seek: f.seek, outputs }
        })
        .collect()
}

