//! The pipeline configuration: one TOML file, every field documented and defaulted, unknown
//! fields refused (a typo must not silently fall back to a default in a million-video run).
//!
//! `configs/pipeline.toml` is the annotated reference; it parses to exactly [`Config::default`]
//! (a test guards that). Each section is the config of one stage and [`Config::settings_hash`]
//! fingerprints the sections that change outputs, which every manifest row records.

use serde::{Deserialize, Serialize};

use crate::caption::CaptionConfig;
use crate::embed::EmbedConfig;
use clipline_shard::sink::ShardsConfig;
use crate::detect::{DetectConfig, DetectorConfig};

/// Everything `clipline run` can be told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Inputs, output and runtime knobs (not part of the settings hash).
    pub run: RunConfig,
    /// Input discovery and fetching.
    pub sources: SourcesConfig,
    /// Probing and the analysis decode.
    pub decode: DecodeConfig,
    /// Which shot detector runs: the adaptive one, TransNetV2, or both.
    pub detect: DetectConfig,
    /// The adaptive (frame-difference) shot detector.
    pub shots: DetectorConfig,
    /// Cutting shots into clips, and the per-clip files.
    pub clips: ClipsConfig,
    /// Cheap per-clip scores and the filters on them.
    pub filters: FiltersConfig,
    /// Captioning.
    pub caption: CaptionConfig,
    /// Latents and text embeddings.
    pub embed: EmbedConfig,
    /// How samples are stored.
    pub shards: ShardsConfig,
}

/// Inputs, output and concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Input URIs: files, directories, globs, `s3://` or `file://` prefixes, `http(s)://` URLs.
    pub inputs: Vec<String>,
    /// Output root URI (a path, `file://`, `s3://bucket/prefix`).
    pub output: Option<String>,
    /// Videos fetched at once.
    pub fetch_concurrency: usize,
    /// Videos decoded at once (0: one per core).
    pub decode_concurrency: usize,
    /// ffmpeg processes writing clip files and frames at once (0: one per core).
    pub extract_concurrency: usize,
    /// Clips of a video written by one ffmpeg process (one seek and decoder each).
    pub extract_batch: usize,
    /// Videos per manifest part and commit.
    pub commit_every: usize,
    /// Partitions of a planned run: the default of `clipline plan --partitions`, and the count a
    /// Kubernetes Indexed Job pod (which is told only its index) checks the plan against
    /// (0: take the plan's).
    pub partitions: u32,
    /// A partition worker whose lease heartbeat is older than this is taken to be dead, and
    /// another worker may take the partition over, seconds.
    pub lease_s: u64,
    /// Bytes of frames admitted into each model queue (caption, embed) at once, MiB; videos
    /// wait with their frames while it is full. Absent: [`DEFAULT_QUEUE_MIB`]. Left out of the
    /// recorded config when absent, so outputs of runs that never set it stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_mib: Option<u64>,
}

/// The model queues' budget when `run.queue_mib` is absent, MiB.
pub const DEFAULT_QUEUE_MIB: u64 = 512;

impl RunConfig {
    /// Each model queue's budget, bytes.
    pub fn queue_bytes(&self) -> usize {
        usize::try_from(self.queue_mib.unwrap_or(DEFAULT_QUEUE_MIB).max(1).saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            inputs: Vec::new(),
            output: None,
            fetch_concurrency: 4,
            decode_concurrency: 0,
            extract_concurrency: 0,
            extract_batch: 4,
            commit_every: 32,
            partitions: 0,
            lease_s: 120,
            queue_mib: None,
        }
    }
}

/// Input discovery and fetching of remote inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// File extensions taken when a directory or prefix is listed (lowercase, no dot).
    pub extensions: Vec<String>,
    /// Limit for one HTTP download, seconds.
    pub http_timeout_s: u64,
    /// Attempts for an HTTP download that fails with a connection error or a 5xx.
    pub http_attempts: u32,
    /// Largest input accepted from HTTP or object storage, MiB.
    pub max_download_mib: u64,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            extensions: ["mp4", "mkv", "webm", "mov", "avi", "m4v", "ts", "mpg", "mpeg", "flv", "wmv", "3gp"]
                .map(String::from)
                .to_vec(),
            http_timeout_s: 300,
            http_attempts: 3,
            max_download_mib: 8192,
        }
    }
}

/// Probing and the analysis decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Width of the frames shot detection and scores see.
    pub analysis_width: u32,
    /// Height of the frames shot detection and scores see.
    pub analysis_height: u32,
    /// Largest width or height accepted; larger inputs fail with a reason.
    pub max_dimension: u32,
    /// Limit for one ffprobe call, seconds.
    pub probe_timeout_s: u64,
    /// An ffmpeg process that produces nothing for this long is killed, seconds.
    pub stall_timeout_s: u64,
    /// Hard limit for one ffmpeg process: this many seconds plus `timeout_per_video_second`
    /// times the video's duration.
    pub timeout_base_s: u64,
    /// See `timeout_base_s`.
    pub timeout_per_video_second: f64,
    /// Data memory each ffmpeg or ffprobe process on an input may use, MiB (0: no limit).
    pub max_memory_mib: u64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            analysis_width: 128,
            analysis_height: 72,
            max_dimension: 8192,
            probe_timeout_s: 30,
            stall_timeout_s: 60,
            timeout_base_s: 120,
            timeout_per_video_second: 4.0,
            max_memory_mib: 4096,
        }
    }
}

/// Shot-to-clip cutting and the per-clip outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipsConfig {
    /// Shots shorter than this many frames give no clip.
    pub min_frames: u64,
    /// Longer shots are split into balanced pieces of at most this many frames.
    pub max_frames: u64,
    /// Write each clip as a re-encoded, frame-exact video file under `clips/`.
    pub write_clip_files: bool,
    /// ffmpeg encoder for clip files.
    pub codec: String,
    /// Constant rate factor for clip files.
    pub crf: u32,
    /// Encoder preset for clip files.
    pub preset: String,
    /// Clip files are scaled down so that no side exceeds this (0: keep the source size).
    pub max_side: u32,
    /// Write each clip's middle frame as an image under `frames/`.
    pub write_middle_frames: bool,
    /// Middle frames are scaled down so that no side exceeds this (0: keep the source size).
    pub frame_max_side: u32,
    /// Image format of middle frames: `jpg` or `png`.
    pub frame_format: String,
}

impl Default for ClipsConfig {
    fn default() -> Self {
        Self {
            min_frames: 15,
            max_frames: 200,
            write_clip_files: true,
            codec: "libx264".into(),
            crf: 20,
            preset: "veryfast".into(),
            max_side: 1280,
            write_middle_frames: true,
            frame_max_side: 1280,
            frame_format: "jpg".into(),
        }
    }
}

/// Filters over the per-clip scores. A filter marks a clip `filtered` with a reason; it never
/// drops the row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersConfig {
    /// Clips whose motion (mean absolute luma difference, 0–255) is below this are static.
    pub static_motion: f64,
    /// Mark static clips filtered.
    pub drop_static: bool,
    /// Clips darker than this mean luma (0–255) are filtered (0 disables).
    pub min_brightness: f64,
    /// Clips brighter than this mean luma are filtered (255 disables).
    pub max_brightness: f64,
    /// Clips whose sharpness is below this are filtered (0 disables).
    pub min_sharpness: f64,
    /// A clip whose middle-frame perceptual hash is within this Hamming distance of an earlier
    /// clip of the same video is a near duplicate and filtered (negative disables).
    pub near_duplicate_hamming: i32,
    /// Clips whose text-covered fraction (the captions' `text_area`, from
    /// `caption.text_detector`) is above this are filtered before embedding (1 disables).
    pub max_text_area: f64,
}

impl Default for FiltersConfig {
    fn default() -> Self {
        Self {
            static_motion: 0.5,
            drop_static: true,
            min_brightness: 0.0,
            max_brightness: 255.0,
            min_sharpness: 0.0,
            near_duplicate_hamming: -1,
            max_text_area: 1.0,
        }
    }
}

/// A configuration that cannot be used, with the file it came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or names unknown fields.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Values that parse but do not make sense together.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Read and check a TOML file.
    ///
    /// # Errors
    /// When it cannot be read or parsed, names an unknown field, or holds inconsistent values.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// Parse and check TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.into(), message: e.to_string() })?;
        config.validate().map_err(|message| ConfigError::Invalid { path: origin.into(), message })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let c = &self.clips;
        if c.min_frames == 0 || c.max_frames < c.min_frames {
            return Err(format!("clips: need 0 < min_frames <= max_frames, got {} and {}", c.min_frames, c.max_frames));
        }
        if !matches!(c.frame_format.as_str(), "jpg" | "png") {
            return Err(format!("clips.frame_format must be jpg or png, got {:?}", c.frame_format));
        }
        if self.decode.analysis_width < 16 || self.decode.analysis_height < 16 {
            return Err("decode: analysis_width and analysis_height must be at least 16".into());
        }
        if self.run.commit_every == 0 || self.run.extract_batch == 0 || self.run.lease_s < 4 {
            return Err("run.commit_every and run.extract_batch must be at least 1, and run.lease_s at least 4".into());
        }
        if self.filters.max_text_area < 1.0 && self.caption.text_detector.is_empty() {
            return Err("filters.max_text_area needs caption.text_detector (the score comes from it)".into());
        }
        self.caption.validate()?;
        self.embed.validate(self.caption.enabled())?;
        self.shards.validate()?;
        self.detect.validate()?;
        self.shots.validate()
    }

    /// The shot detector and its settings, as recorded in the `shots` and `clips` tables.
    pub fn detector(&self) -> String {
        self.detect.describe(&self.shots)
    }

    /// Fingerprint of the settings that change what the pipeline writes.
    pub fn settings_hash(&self) -> String {
        let mut parts = vec![
            serde_json::to_string(&self.decode.analysis_width).unwrap_or_default(),
            serde_json::to_string(&self.decode.analysis_height).unwrap_or_default(),
            serde_json::to_string(&self.shots).unwrap_or_default(),
            serde_json::to_string(&self.clips).unwrap_or_default(),
            serde_json::to_string(&self.filters).unwrap_or_default(),
            serde_json::to_string(&self.caption.caption_settings()).unwrap_or_default(),
            serde_json::to_string(&self.embed.sample_settings()).unwrap_or_default(),
            serde_json::to_string(&self.shards.format_settings()).unwrap_or_default(),
        ];
        // Only a method that runs the model adds a part, so adaptive runs keep their hash.
        if self.detect.method.uses_model() {
            parts.push(self.detector());
        }
        clipline_core::ids::fingerprint_parts(parts)
    }

    /// The effective configuration as TOML, recorded in the `runs` table.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Number of cores, for the `0 = one per core` defaults.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_config_equals_the_defaults() {
        let text = include_str!("../../configs/pipeline.toml");
        assert_eq!(Config::parse(text, "configs/pipeline.toml").unwrap(), Config::default());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let err = Config::parse("[clips]\nmax_frame = 100\n", "x.toml").unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("max_frame"), "{err}");
    }

    #[test]
    fn inconsistent_bounds_are_refused() {
        let err = Config::parse("[clips]\nmin_frames = 50\nmax_frames = 20\n", "x.toml").unwrap_err().to_string();
        assert!(err.contains("min_frames"), "{err}");
    }

    #[test]
    fn runtime_knobs_do_not_change_the_settings_hash() {
        let mut a = Config::default();
        let b = a.clone();
        a.run.decode_concurrency = 7;
        assert_eq!(a.settings_hash(), b.settings_hash());
        a.clips.max_frames = 100;
        assert_ne!(a.settings_hash(), b.settings_hash());
    }
}
