//! One video through the per-video stages ([`crate::stage`]): fetch → probe → analysis decode
//! with shot detection and scores → clip plan and filters → clip files, middle frames, caption
//! frames and bucketed frames → its manifest rows (captions and samples are added by the model
//! stages after it).
//!
//! Nothing that goes wrong with an input fails the run: it becomes its `videos` row's status and
//! reason, and a clip whose files cannot be made keeps its row with status `failed`. Only the
//! output refusing a clip's files ([`StorageFailure`]) stops the run: the output is unusable, so
//! the run ends there instead of recording failed clips (what is committed stays; started again,
//! it resumes). That failure travels back with the video as a value.

use std::sync::Arc;

use clipline_core::manifest::{CaptionRow, ClipRow, FailureKind, ShotRow, VideoRow, VideoStatus};

use crate::caption::ClipFrames;
use crate::clips;
use crate::embed::{EmbedInput, Embedded};
use crate::sources::{Fetcher, Source};
use crate::detect::transnet::TransNetStage;
use crate::stage::analyse::AnalyseStage;
pub use crate::stage::extract::StorageFailure;
use crate::stage::extract::{ExtractStage, Extracted};
use crate::stage::fetch::{Fetch, FetchStage};
use crate::stage::probe::ProbeStage;
use crate::stage::{RunContext, VideoFailure};
use crate::tools::ran_out_of_memory;

/// What processing one input produced: its rows, and the frames the model stages take.
#[derive(Debug)]
pub struct VideoResult {
    /// The `videos` row.
    pub video: VideoRow,
    /// Its shots.
    pub shots: Vec<ShotRow>,
    /// Its clips.
    pub clips: Vec<ClipRow>,
    /// Sampled frames of its clips, for the caption stage (taken by it).
    pub caption_frames: Vec<ClipFrames>,
    /// Its captions (given by the caption stage).
    pub captions: Vec<CaptionRow>,
    /// Bucketed frames of its clips, for the embed stage (taken by it).
    pub embed_inputs: Vec<EmbedInput>,
    /// Its samples (given by the embed stage).
    pub samples: Vec<Embedded>,
    /// Frames decoded for it.
    pub frames_decoded: u64,
    /// Whether the run was cancelled while it was processed (its rows are incomplete).
    pub cancelled: bool,
}

/// The per-video stages of a run.
pub struct Ingest {
    ctx: Arc<RunContext>,
    fetch: FetchStage,
    probe: ProbeStage,
    analyse: Arc<AnalyseStage>,
    extract: Arc<ExtractStage>,
}

impl Ingest {
    /// The stages of a run, fetching with `fetcher` and running TransNetV2 through `transnet`
    /// when `detect.method` asks for it.
    pub fn new(ctx: Arc<RunContext>, fetcher: Fetcher, transnet: Option<Arc<TransNetStage>>) -> Self {
        Self {
            fetch: FetchStage::new(ctx.clone(), fetcher),
            probe: ProbeStage::new(ctx.clone()),
            analyse: Arc::new(AnalyseStage::new(ctx.clone(), transnet)),
            extract: Arc::new(ExtractStage::new(ctx.clone())),
            ctx,
        }
    }

    /// Process input number `index` (its position in the sorted input list).
    ///
    /// # Errors
    /// When the output refuses one of its clips' files.
    pub async fn process(self: Arc<Self>, index: usize, source: Source) -> Result<VideoResult, StorageFailure> {
        let uri = source.uri();
        let mut outcome = VideoResult {
            video: VideoRow::unprocessed(&uri, &self.ctx.settings_hash),
            shots: vec![],
            clips: vec![],
            caption_frames: vec![],
            captions: vec![],
            embed_inputs: vec![],
            samples: vec![],
            frames_decoded: 0,
            cancelled: false,
        };
        let fetched = match self.fetch.run(index, &source).await {
            Ok(Fetch::First(fetched)) => fetched,
            Ok(Fetch::Copy(fetched)) => {
                outcome.video.video_id = Some(fetched.video_id);
                outcome.video.size_bytes = Some(fetched.size as i64);
                outcome.video.status = VideoStatus::Duplicate;
                self.skip_probe_and_decode();
                return Ok(outcome);
            }
            Err(e) => {
                outcome.video.size_bytes = e.size.map(|s| s as i64);
                self.skip_probe_and_decode();
                return Ok(self.fail(outcome, VideoFailure::new(e.kind, e.message)));
            }
        };
        outcome.video.video_id = Some(fetched.video_id.clone());
        outcome.video.size_bytes = Some(fetched.size as i64);

        let probed = match self.probe.run(&fetched, &uri).await {
            Ok(probed) => probed,
            Err(failure) => {
                self.ctx.stages.decode.skip(1);
                return Ok(self.fail(outcome, failure));
            }
        };
        probed.record(&mut outcome.video);

        let analysed = match self.analyse.run(&fetched.path, &probed, &uri).await {
            Ok(analysed) => analysed,
            Err(failure) => return Ok(self.fail(outcome, failure)),
        };
        outcome.frames_decoded = analysed.frames;
        outcome.video.decoded_frames = Some(analysed.frames as i64);
        if let Some(damage) = analysed.damage {
            outcome.video.status = VideoStatus::Partial;
            outcome.video.error_kind = Some(FailureKind::Truncated);
            outcome.video.error = Some(damage);
        }
        let (records, shots) = (&analysed.records, &analysed.shots);
        outcome.shots = self.analyse.shot_rows(&fetched.video_id, &uri, shots, &probed.times);
        outcome.video.shots = shots.len() as i64;

        let config = &self.ctx.config;
        let planned = clips::plan(shots, records, &config.clips, &config.filters);
        let Extracted { clips, caption_frames, embed_inputs } = self.extract.run(&fetched, &uri, &probed, &planned).await?;
        (outcome.clips, outcome.caption_frames, outcome.embed_inputs) = (clips, caption_frames, embed_inputs);
        outcome.video.clips = outcome.clips.len() as i64;
        if outcome.video.status == VideoStatus::Ok && outcome.clips.is_empty() {
            outcome.video.status = VideoStatus::Skipped;
            outcome.video.error_kind = Some(FailureKind::NoClips);
            outcome.video.error = Some(format!("{uri}: no shot of at least {} frames ({} frames, {} shots)", config.clips.min_frames, records.len(), shots.len()));
        }
        outcome.cancelled = self.ctx.cancel.is_cancelled();
        Ok(outcome)
    }

    /// The outcome of a video that goes no further: a `failed` row saying why.
    fn fail(&self, mut outcome: VideoResult, failure: VideoFailure) -> VideoResult {
        let VideoFailure { kind, message, frames_decoded, decoded_frames } = failure;
        outcome.frames_decoded = frames_decoded;
        if let Some(frames) = decoded_frames {
            outcome.video.decoded_frames = Some(frames as i64);
        }
        let limit = self.ctx.config.decode.max_memory_mib;
        let (kind, message) = if limit > 0 && ran_out_of_memory(&message) {
            (FailureKind::MemoryLimit, format!("{message} (ffmpeg and ffprobe run with at most decode.max_memory_mib = {limit} MiB; raise it if inputs like this are expected)"))
        } else {
            (kind, message)
        };
        tracing::warn!(source = %outcome.video.source_uri, kind = kind.as_str(), "{message}");
        outcome.video.status = VideoStatus::Failed;
        outcome.video.error_kind = Some(kind);
        outcome.video.error = Some(message);
        outcome.cancelled = self.ctx.cancel.is_cancelled();
        outcome
    }

    /// Count a video that stops before probing in the bars of the stages it will not reach.
    fn skip_probe_and_decode(&self) {
        self.ctx.stages.probe.skip(1);
        self.ctx.stages.decode.skip(1);
    }
}
