//! One video through the ingest stages: fetch → probe → analysis decode with shot detection and
//! scores → clip plan and filters → clip files, middle frames, caption frames and bucket frames
//! → manifest rows (captions and samples are added by the model stages after it).
//!
//! Nothing that goes wrong with an input fails the run: it becomes its `videos` row's status and
//! reason, and a clip whose files cannot be made keeps its row with status `failed`. Only the
//! output refusing a clip's files ([`StorageFailure`]) stops the run: the output is unusable, so
//! the run ends there instead of recording failed clips (what is committed stays; started again,
//! it resumes). That failure travels back with the video as a value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clipline_core::ids::clip_id;
use clipline_core::manifest::{CaptionRow, ClipRow, ClipStatus, FailureKind, ShotRow, VideoRow, VideoStatus};
use clipline_core::storage::Store;
use clipline_embedder::{Bucket, ClipShape};
use image::RgbImage;
use tempfile::TempPath;

use crate::caption::ClipFrames;
use crate::clips::{self, PlannedClip};
use crate::config::{ClipsConfig, Config};
use crate::decode::{decode_rgb, DecodeError};
use crate::detect::{FrameRecord, Shot, ShotDetector};
use crate::embed::{EmbedInput, Embedded, Kind, SampleFrames};
use crate::extract::{self, Seek};
use crate::probe::{self, Probe, Timeline};
use crate::runtime::{Cancel, Stages};
use crate::sources::{Fetched, Fetcher, Source};
use crate::tools::{ran_out_of_memory, Limits, Tools};

/// What processing one input produced.
#[derive(Debug)]
pub struct VideoOutcome {
    /// The `videos` row.
    pub video: VideoRow,
    /// Its shots.
    pub shots: Vec<ShotRow>,
    /// Its clips.
    pub clips: Vec<ClipRow>,
    /// Sampled frames of its clips, for the caption stage (taken by the commit).
    pub caption_frames: Vec<ClipFrames>,
    /// Its captions (filled by the caption stage).
    pub captions: Vec<CaptionRow>,
    /// Bucketed frames of its clips, for the embed stage (taken by it).
    pub embed_inputs: Vec<EmbedInput>,
    /// Its samples (filled by the embed stage).
    pub samples: Vec<Embedded>,
    /// Frames decoded for it.
    pub frames_decoded: u64,
    /// Whether the run was cancelled while it was processed (its rows are incomplete).
    pub cancelled: bool,
}

impl VideoOutcome {
    /// Mark clips whose captions found more text than `max` filtered, and drop their samples'
    /// inputs, so they are never embedded (their caption rows stay, with the score).
    pub fn filter_text_area(&mut self, max: f64) {
        for caption in &self.captions {
            let Some(area) = caption.text_area.filter(|&a| a > max) else { continue };
            if let Some(clip) = self.clips.iter_mut().find(|c| c.clip_id == caption.clip_id && c.status == ClipStatus::Ok) {
                clip.status = ClipStatus::Filtered;
                clip.filter_reason = Some(format!("too much text: text_area {area:.3} > filters.max_text_area {max}"));
                self.embed_inputs.retain(|input| input.clip_id != caption.clip_id);
            }
        }
    }
}

/// Shared state of an ingest run.
pub struct Ingest {
    /// The configuration.
    pub config: Config,
    /// ffmpeg and ffprobe.
    pub tools: Tools,
    /// The output store.
    pub output: Store,
    /// Fingerprint of the output-relevant settings.
    pub settings_hash: String,
    /// The detector description recorded with shots and clips.
    pub detector: String,
    /// Input fetcher.
    pub fetcher: Fetcher,
    /// The stages.
    pub stages: Stages,
    /// Cancellation.
    pub cancel: Cancel,
    /// Where temporary clip files are written before upload.
    pub scratch: PathBuf,
    /// Frames decoded so far (for the progress display).
    pub frames: AtomicU64,
    /// Lowest input index seen for each content hash, so a later copy skips the work.
    claims: Mutex<HashMap<String, usize>>,
}

/// The output refused a clip's file (after the store's retries): the run must stop.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageFailure(pub String);

impl Ingest {
    /// Assemble the run state.
    pub fn new(config: Config, tools: Tools, output: Store, fetcher: Fetcher, stages: Stages, cancel: Cancel, scratch: PathBuf) -> Self {
        Self {
            settings_hash: config.settings_hash(),
            detector: config.shots.describe(),
            config,
            tools,
            output,
            fetcher,
            stages,
            cancel,
            scratch,
            frames: AtomicU64::new(0),
            claims: Mutex::new(HashMap::new()),
        }
    }

    /// Process input number `index` (its position in the sorted input list).
    ///
    /// # Errors
    /// When the output refuses one of its clips' files.
    pub async fn process(self: Arc<Self>, index: usize, source: Source) -> Result<VideoOutcome, StorageFailure> {
        let uri = source.uri();
        let mut outcome = VideoOutcome { video: VideoRow::unprocessed(&uri, &self.settings_hash), shots: vec![], clips: vec![], caption_frames: vec![], captions: vec![], embed_inputs: vec![], samples: vec![], frames_decoded: 0, cancelled: false };
        let fetched = match self.stages.fetch.run(self.fetcher.fetch(&source)).await {
            Ok(f) => f,
            Err(e) => {
                outcome.video.size_bytes = e.size.map(|s| s as i64);
                self.skip_probe_and_decode();
                return Ok(self.fail(outcome, e.kind, e.message));
            }
        };
        outcome.video.video_id = Some(fetched.video_id.clone());
        outcome.video.size_bytes = Some(fetched.size as i64);
        if self.claimed_earlier(&fetched.video_id, index) {
            outcome.video.status = VideoStatus::Duplicate;
            self.skip_probe_and_decode();
            return Ok(outcome);
        }

        let probe = {
            let (tools, path, cancel) = (self.tools.clone(), fetched.path.clone(), self.cancel.flag());
            let (timeout, max_dim) = (Duration::from_secs(self.config.decode.probe_timeout_s), self.config.decode.max_dimension);
            self.stages.probe.run_blocking(move || probe::probe(&tools, &path, timeout, max_dim, cancel)).await
        };
        let (probe, timeline) = match probe {
            Ok(p) => p,
            Err(e) => {
                self.stages.decode.skip(1);
                return Ok(self.fail(outcome, e.kind(), format!("{uri}: {e}")));
            }
        };
        record_probe(&mut outcome.video, &probe, &timeline);

        let (records, shots) = match self.analyse(&fetched.path, &probe, &mut outcome).await {
            Ok(analysis) => analysis,
            Err((kind, message)) => return Ok(self.fail(outcome, kind, message)),
        };
        let times = FrameTimes::new(&probe, timeline);
        outcome.shots = self.shot_rows(&fetched.video_id, &uri, &shots, &times);
        outcome.video.shots = shots.len() as i64;
        let planned = clips::plan(&shots, &records, &self.config.clips, &self.config.filters);
        (outcome.clips, outcome.caption_frames, outcome.embed_inputs) = self.write_clips(&fetched, &uri, &probe, &times, &planned).await?;
        outcome.video.clips = outcome.clips.len() as i64;
        if outcome.video.status == VideoStatus::Ok && outcome.clips.is_empty() {
            outcome.video.status = VideoStatus::Skipped;
            outcome.video.error_kind = Some(FailureKind::NoClips);
            outcome.video.error = Some(format!(
                "{uri}: no shot of at least {} frames ({} frames, {} shots)",
                self.config.clips.min_frames,
                records.len(),
                shots.len()
            ));
        }
        outcome.cancelled = self.cancel.is_cancelled();
        Ok(outcome)
    }

    fn fail(&self, mut outcome: VideoOutcome, kind: FailureKind, message: String) -> VideoOutcome {
        let limit = self.config.decode.max_memory_mib;
        let (kind, message) = if limit > 0 && ran_out_of_memory(&message) {
            (FailureKind::MemoryLimit, format!("{message} (ffmpeg and ffprobe run with at most decode.max_memory_mib = {limit} MiB; raise it if inputs like this are expected)"))
        } else {
            (kind, message)
        };
        tracing::warn!(source = %outcome.video.source_uri, kind = kind.as_str(), "{message}");
        outcome.video.status = VideoStatus::Failed;
        outcome.video.error_kind = Some(kind);
        outcome.video.error = Some(message);
        outcome.cancelled = self.cancel.is_cancelled();
        outcome
    }

    /// Count a video that stops before probing in the bars of the stages it will not reach.
    fn skip_probe_and_decode(&self) {
        self.stages.probe.skip(1);
        self.stages.decode.skip(1);
    }

    fn claimed_earlier(&self, video_id: &str, index: usize) -> bool {
        let mut claims = self.claims.lock().expect("claims lock");
        let first = claims.entry(video_id.to_string()).or_insert(index);
        if index < *first {
            *first = index;
        }
        *first < index
    }

    /// The analysis decode: per-frame records and shots, or the failure's kind and message.
    async fn analyse(self: &Arc<Self>, path: &Path, probe: &Probe, outcome: &mut VideoOutcome) -> Result<(Vec<FrameRecord>, Vec<Shot>), (FailureKind, String)> {
        let d = &self.config.decode;
        let duration = probe.duration_s.unwrap_or(0.0).max(0.0);
        let limits = Limits {
            stall: Duration::from_secs(d.stall_timeout_s),
            total: Duration::from_secs_f64(d.timeout_base_s as f64 + d.timeout_per_video_second * duration),
        };
        let size = (d.analysis_width, d.analysis_height);
        let (me, path, stream) = (self.clone(), path.to_path_buf(), probe.video.index);
        let result = self
            .stages
            .decode
            .run_blocking(move || {
                let mut detector = ShotDetector::new(me.config.shots.clone(), size.0, size.1);
                let report = decode_rgb(&me.tools, &path, stream, size, limits, me.cancel.flag(), |frame| {
                    detector.push(frame);
                    me.frames.fetch_add(1, Ordering::Relaxed);
                });
                report.map(|r| (r, detector.finish()))
            })
            .await;
        self.stages.decode.bar.set_message(format!("{} frames", self.frames.load(Ordering::Relaxed)));
        let uri = outcome.video.source_uri.clone();
        let (report, (records, shots)) = match result {
            Ok(r) => r,
            Err(DecodeError::Stopped { stopped, frames }) => {
                outcome.frames_decoded = frames;
                return Err((FailureKind::Timeout, format!("{uri}: decoding {stopped} after {frames} frames")));
            }
            Err(e) => return Err((FailureKind::DecodeFailed, format!("{uri}: {e}"))),
        };
        outcome.frames_decoded = report.frames;
        outcome.video.decoded_frames = Some(report.frames as i64);
        let first_error = report.errors.first().cloned().unwrap_or_else(|| "no error message".into());
        if report.frames == 0 {
            let message = format!("{uri}: no frame could be decoded ({} {}): {first_error}", probe.video.codec, probe.video.pix_fmt);
            return Err((FailureKind::DecodeFailed, message));
        }
        let claimed = outcome.video.container_frames.unwrap_or(0) as u64;
        let damaged = !report.clean_exit || !report.errors.is_empty() || report.frames * 100 < claimed * 98;
        if damaged && report.frames < claimed {
            outcome.video.status = VideoStatus::Partial;
            outcome.video.error_kind = Some(FailureKind::Truncated);
            outcome.video.error = Some(format!(
                "{uri}: decoded {} of the {claimed} frames the container claims; first decoder error: {first_error}",
                report.frames
            ));
            tracing::warn!(source = %uri, decoded = report.frames, claimed, "input is damaged; keeping the frames that decode");
        }
        Ok((records, shots))
    }

    fn shot_rows(&self, video_id: &str, uri: &str, shots: &[Shot], times: &FrameTimes) -> Vec<ShotRow> {
        shots
            .iter()
            .enumerate()
            .map(|(i, s)| ShotRow {
                video_id: video_id.to_string(),
                source_uri: uri.to_string(),
                shot_index: i as i64,
                start_frame: s.start as i64,
                end_frame: s.end as i64,
                num_frames: (s.end - s.start) as i64,
                start_pts: times.pts(s.start),
                end_pts: times.pts(s.end),
                transition: s.transition.as_str().to_string(),
                boundary_score: s.score,
                detector: self.detector.clone(),
            })
            .collect()
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
            detector: self.detector.clone(),
            settings_hash: self.settings_hash.clone(),
        }
    }

    /// Rows of all planned clips; the files of those not filtered are written meanwhile, and
    /// their caption frames and bucketed frames taken.
    ///
    /// # Errors
    /// When the output refuses a file.
    async fn write_clips(
        self: &Arc<Self>,
        fetched: &Fetched,
        uri: &str,
        probe: &Probe,
        times: &FrameTimes,
        planned: &[PlannedClip],
    ) -> Result<(Vec<ClipRow>, Vec<ClipFrames>, Vec<EmbedInput>), StorageFailure> {
        let mut rows: Vec<ClipRow> = planned.iter().map(|clip| self.clip_row(fetched, uri, probe.video.display_size(), times, clip)).collect();
        let wanted: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].filter_reason.is_none()).collect();
        self.stages.extract.bar.inc_length(wanted.len() as u64);
        let c = &self.config.clips;
        if !c.write_clip_files && !c.write_middle_frames && !self.config.caption.enabled() && !self.config.embed.enabled() {
            self.stages.extract.skip(wanted.len() as u64);
            return Ok((rows, Vec::new(), Vec::new()));
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
        let batches = specs.chunks(self.config.run.extract_batch).map(|batch| self.extract_batch(fetched, batch.to_vec()));
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
        Ok((rows, caption_frames, embed_inputs))
    }

    /// The bucketed frames to take for a clip's samples; samples no bucket fits go straight to
    /// `skipped` (as inputs without frames).
    fn embed_frames(&self, row: &ClipRow, clip: &PlannedClip, skipped: &mut Vec<EmbedInput>) -> Vec<EmbedFrames> {
        if !self.config.embed.enabled() {
            return Vec::new();
        }
        let shape = ClipShape { width: row.width as u32, height: row.height as u32, frames: row.num_frames as u64, fps: row.fps };
        let (video, image) = self.config.embed.buckets.assign(shape);
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
        let ext = &self.config.clips.frame_format;
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
            caption_frames: if self.config.caption.enabled() {
                self.config.caption.frame_offsets(clip.end - clip.start).into_iter().map(|o| (o, PathBuf::new())).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Write and upload the files of a batch of clips with one ffmpeg process; when the batch
    /// fails, each clip is tried alone, so one bad clip does not fail its neighbours.
    async fn extract_batch(self: &Arc<Self>, fetched: &Fetched, mut batch: Vec<ClipFiles>) -> Vec<Written> {
        let dir = match tempfile::tempdir_in(&self.scratch) {
            Ok(dir) => dir,
            Err(e) => {
                let message = format!("cannot create scratch dir in {}: {e}", self.scratch.display());
                return batch.iter().map(|_| Err(ClipFailure::Clip(message.clone()))).collect();
            }
        };
        for files in &mut batch {
            files.clip_path = dir.path().join(format!("{}.mp4", files.name));
            files.frame_path = dir.path().join(format!("{}.{}", files.name, self.config.clips.frame_format));
            for (k, (_, path)) in files.caption_frames.iter_mut().enumerate() {
                *path = dir.path().join(format!("{}-caption{k}.ppm", files.name));
            }
            // Bucket frames outlive the batch's directory: they wait in the run's scratch for
            // the embed stage, named after the batch too, since two copies of a video processed
            // at once have the same clip names.
            let batch_name = dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for (k, frames) in files.embed_frames.iter_mut().enumerate() {
                frames.path = self.scratch.join(format!("{batch_name}-{}-embed{k}.rgb", files.name));
            }
        }
        let seconds: f64 = batch.iter().map(|f| f.seconds).sum();
        let limits = Limits {
            stall: Duration::from_secs(self.config.decode.stall_timeout_s),
            total: Duration::from_secs_f64(self.config.decode.timeout_base_s as f64 + 10.0 * seconds),
        };
        let (me, source, work) = (self.clone(), fetched.path.clone(), batch.clone());
        let written = self
            .stages
            .extract
            .run_blocking_items(batch.len() as u64, move || {
                let c = &me.config.clips;
                let runner = extract::Runner { tools: &me.tools, limits, cancel: me.cancel.flag() };
                let caption_side = me.config.caption.frame_max_side;
                match runner.extract(&source, &extraction_jobs(&work, c, caption_side)) {
                    Ok(()) => vec![Ok(()); work.len()],
                    Err(e) if work.len() == 1 => vec![Err(e)],
                    Err(_) => work.iter().map(|one| runner.extract(&source, &extraction_jobs(std::slice::from_ref(one), c, caption_side))).collect(),
                }
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
        extract::upload(&self.output, key, path).await.map_err(|e| ClipFailure::Storage(StorageFailure(e)))
    }

    async fn upload(&self, files: &ClipFiles) -> Written {
        let c = &self.config.clips;
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

fn record_probe(row: &mut VideoRow, probe: &Probe, timeline: &Timeline) {
    let v = &probe.video;
    row.container = Some(probe.container.clone());
    row.codec = Some(v.codec.clone());
    row.pix_fmt = Some(v.pix_fmt.clone());
    row.width = Some(v.width as i64);
    row.height = Some(v.height as i64);
    row.rotation = Some(v.rotation);
    row.fps = v.avg_fps;
    row.variable_fps = Some(timeline.is_variable());
    row.has_audio = Some(probe.has_audio);
    row.duration_s = probe.duration_s;
    row.container_frames = Some(v.indexed_frames.unwrap_or(timeline.pts.len() as u64) as i64);
}

/// Presentation times of decoded frames, from the packet timeline (extrapolated past its end).
pub struct FrameTimes {
    pts: Vec<f64>,
    frame_duration: f64,
    start_time: f64,
}

impl FrameTimes {
    fn new(probe: &Probe, timeline: Timeline) -> Self {
        let frame_duration = timeline.frame_duration(probe.video.avg_fps);
        Self { pts: timeline.pts, frame_duration, start_time: probe.start_time }
    }

    /// PTS of frame `i`, seconds.
    pub fn pts(&self, i: u64) -> f64 {
        let i = i as usize;
        match self.pts.get(i) {
            Some(&t) => t,
            None => match self.pts.last() {
                Some(&last) => last + (i + 1 - self.pts.len()) as f64 * self.frame_duration,
                None => self.start_time + i as f64 * self.frame_duration,
            },
        }
    }

    /// An input seek that lands exactly on frame `i`: halfway between it and its predecessor,
    /// relative to the container start.
    pub fn seek(&self, i: u64, stream: u32) -> Seek {
        let time = if i == 0 { 0.0 } else { (self.pts(i - 1) + self.pts(i)) / 2.0 - self.start_time };
        Seek { time, stream }
    }
}
