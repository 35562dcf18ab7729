//! The tables: `videos`, `shots`, `clips`, `captions`, `samples`, `shards`, `runs`. Column meanings and units are in
//! `docs/MANIFESTS.md`; keep the two in step.

use super::{CaptionStatus, ClipStatus, FailureKind, RunStatus, SampleStatus, Timestamp, VideoStatus};
use crate::table;

table! {
    /// One row per input source, whatever became of it.
    pub struct VideoRow in "videos" {
        /// Content hash of the bytes (absent when they could not be read).
        pub video_id: Option<String>,
        /// The input as given (normalised URI).
        pub source_uri: String,
        /// `ok`, `partial`, `skipped`, `failed` or `duplicate`.
        pub status: VideoStatus,
        /// Machine-readable reason class for anything but `ok`.
        pub error_kind: Option<FailureKind>,
        /// Human-readable reason, naming the problem.
        pub error: Option<String>,
        /// For duplicates: the source whose bytes were processed.
        pub duplicate_of: Option<String>,
        /// Size of the input in bytes.
        pub size_bytes: Option<i64>,
        /// Container format(s) as ffprobe names them.
        pub container: Option<String>,
        /// Video codec.
        pub codec: Option<String>,
        /// Pixel format of the video stream.
        pub pix_fmt: Option<String>,
        /// Coded width in pixels (before rotation).
        pub width: Option<i64>,
        /// Coded height in pixels (before rotation).
        pub height: Option<i64>,
        /// Display rotation in degrees.
        pub rotation: Option<i64>,
        /// Average frame rate (frames per second).
        pub fps: Option<f64>,
        /// Whether frame durations vary.
        pub variable_fps: Option<bool>,
        /// Whether an audio stream is present.
        pub has_audio: Option<bool>,
        /// Duration claimed by the container, in seconds.
        pub duration_s: Option<f64>,
        /// Frame count claimed by the container (video packets).
        pub container_frames: Option<i64>,
        /// Frames actually decoded.
        pub decoded_frames: Option<i64>,
        /// Shots detected.
        pub shots: i64,
        /// Clips cut (any status).
        pub clips: i64,
        /// Hash of the ingest settings that produced the row.
        pub settings_hash: String,
    }
}

impl VideoRow {
    /// A row for a source about which nothing is known yet: status `ok`, every property null.
    pub fn unprocessed(source_uri: &str, settings_hash: &str) -> Self {
        Self {
            video_id: None,
            source_uri: source_uri.to_string(),
            status: VideoStatus::Ok,
            error_kind: None,
            error: None,
            duplicate_of: None,
            size_bytes: None,
            container: None,
            codec: None,
            pix_fmt: None,
            width: None,
            height: None,
            rotation: None,
            fps: None,
            variable_fps: None,
            has_audio: None,
            duration_s: None,
            container_frames: None,
            decoded_frames: None,
            shots: 0,
            clips: 0,
            settings_hash: settings_hash.to_string(),
        }
    }
}

table! {
    /// One row per detected shot, short ones included.
    pub struct ShotRow in "shots" {
        /// The video.
        pub video_id: String,
        /// The input as given.
        pub source_uri: String,
        /// 0-based index of the shot in its video.
        pub shot_index: i64,
        /// First decoded frame of the shot.
        pub start_frame: i64,
        /// Decoded frame after the last one (exclusive).
        pub end_frame: i64,
        /// `end_frame - start_frame`.
        pub num_frames: i64,
        /// Presentation time of the first frame, seconds.
        pub start_pts: f64,
        /// Presentation time just after the last frame, seconds.
        pub end_pts: f64,
        /// How the shot begins: `start` (the video's first frame), `cut` (a hard cut), `gradual`
        /// (a dissolve or wipe, found by TransNetV2) or `fade` (through blank frames).
        pub transition: String,
        /// Detector confidence of the boundary that opens the shot (0 for `start`): the adaptive
        /// ratio for the adaptive detector's cuts, TransNetV2's probability for its transitions.
        pub boundary_score: f64,
        /// Detector and its settings.
        pub detector: String,
        /// First frame of the transition that opens the shot. The frames from here to
        /// `transition_end_frame` belong to no shot and so to no clip; none for `start` and
        /// `cut` (both equal `start_frame`).
        pub transition_start_frame: i64,
        /// Frame after the transition's last: the shot's `start_frame`.
        pub transition_end_frame: i64,
    }
}

table! {
    /// One row per clip: a frame range of a shot, 15–200 frames by default.
    pub struct ClipRow in "clips" {
        /// `<video_id>-<start_frame>-<end_frame>`.
        pub clip_id: String,
        /// The video.
        pub video_id: String,
        /// The input as given.
        pub source_uri: String,
        /// The shot the clip comes from.
        pub shot_index: i64,
        /// 0-based index of the clip within its shot.
        pub clip_index: i64,
        /// First decoded frame.
        pub start_frame: i64,
        /// Decoded frame after the last one (exclusive).
        pub end_frame: i64,
        /// `end_frame - start_frame`.
        pub num_frames: i64,
        /// Presentation time of the first frame, seconds.
        pub start_pts: f64,
        /// Presentation time just after the last frame, seconds.
        pub end_pts: f64,
        /// `end_pts - start_pts`, seconds.
        pub duration_s: f64,
        /// Average frame rate of the clip.
        pub fps: f64,
        /// Display width in pixels (after rotation).
        pub width: i64,
        /// Display height in pixels (after rotation).
        pub height: i64,
        /// `width / height`.
        pub aspect: f64,
        /// Mean absolute luma difference between consecutive frames, 0–255.
        pub motion: f64,
        /// Mean luma, 0–255.
        pub brightness: f64,
        /// Mean variance of the Laplacian of luma at analysis resolution.
        pub sharpness: f64,
        /// 64-bit DCT perceptual hash of the middle frame, hex.
        pub phash: String,
        /// Whether motion is below the static threshold.
        pub is_static: bool,
        /// `ok`, `filtered` or `failed`.
        pub status: ClipStatus,
        /// For `filtered`: which filter and the value that tripped it.
        pub filter_reason: Option<String>,
        /// URI of the re-encoded clip file, when written.
        pub clip_uri: Option<String>,
        /// URI of the middle-frame image, when written.
        pub frame_uri: Option<String>,
        /// Detector and its settings.
        pub detector: String,
        /// Hash of the ingest settings that produced the row.
        pub settings_hash: String,
    }
}

table! {
    /// One row per invocation of `clipline run`.
    pub struct RunRow in "runs" {
        /// Unique id of the invocation.
        pub run_id: String,
        /// When it started (UTC).
        pub started_at: Timestamp,
        /// When it ended (UTC).
        pub finished_at: Timestamp,
        /// `completed`, `completed_with_failures` or `interrupted`.
        pub status: RunStatus,
        /// Inputs discovered.
        pub inputs: i64,
        /// Inputs already committed by earlier runs and skipped.
        pub inputs_resumed: i64,
        /// Inputs processed by this run with status ok or partial.
        pub videos_ok: i64,
        /// Inputs processed by this run that failed.
        pub videos_failed: i64,
        /// Clips this run committed.
        pub clips: i64,
        /// Frames this run decoded.
        pub frames_decoded: i64,
        /// Wall time, seconds.
        pub wall_s: f64,
        /// Hash of the ingest settings.
        pub settings_hash: String,
        /// The effective configuration, as TOML.
        pub config: String,
        /// clipline version.
        pub version: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{decode, encode, Table};

    fn shot(i: i64) -> ShotRow {
        ShotRow {
            video_id: "v".into(),
            source_uri: "file:///x.mp4".into(),
            shot_index: i,
            start_frame: i * 10,
            end_frame: i * 10 + 10,
            num_frames: 10,
            start_pts: i as f64,
            end_pts: i as f64 + 0.4,
            transition: "cut".into(),
            boundary_score: 4.5,
            detector: "d".into(),
            transition_start_frame: i * 10,
            transition_end_frame: i * 10,
        }
    }

    #[test]
    fn rows_round_trip_through_parquet() {
        let rows: Vec<ShotRow> = (0..5).map(shot).collect();
        let bytes = encode(&rows).unwrap();
        assert_eq!(decode::<ShotRow>(bytes, "shots").unwrap(), rows);
    }

    #[test]
    fn nullable_columns_keep_their_nulls() {
        let row = VideoRow {
            status: VideoStatus::Failed,
            error_kind: Some(FailureKind::Unreachable),
            error: Some("connection refused".into()),
            has_audio: Some(false),
            ..VideoRow::unprocessed("https://x/y.mp4", "s")
        };
        let back = decode::<VideoRow>(encode(std::slice::from_ref(&row)).unwrap(), "videos").unwrap();
        assert_eq!(back, vec![row]);
        assert!(VideoRow::schema().field_with_name("video_id").unwrap().is_nullable());
    }

    #[test]
    fn a_file_of_another_table_is_refused_naming_the_column() {
        let bytes = encode(&[shot(0)]).unwrap();
        let err = decode::<ClipRow>(bytes, "clips/part-1.parquet").unwrap_err().to_string();
        assert!(err.contains("clip_id"), "{err}");
    }
}

table! {
    /// One row per (clip, captioning model, prompt): the caption, or why there is none.
    pub struct CaptionRow in "captions" {
        /// The clip captioned.
        pub clip_id: String,
        /// The model: its name and a hash of its files (`name@hash`).
        pub model_id: String,
        /// Hash of everything else that decides the caption: prompt template, frame positions,
        /// generation settings.
        pub prompt_hash: String,
        /// `ok` or `failed`.
        pub status: CaptionStatus,
        /// The caption (empty when failed).
        pub caption: String,
        /// Answers the prompt reserves for clips that cannot be described:
        /// `not_enough_information`, `single_image`, `no_movement`.
        pub flags: Vec<String>,
        /// Tokens generated.
        pub tokens: i64,
        /// Whether generation stopped at the token limit instead of an end token.
        pub truncated: bool,
        /// Share of the sampled frames' area covered by text (PP-OCR detection), 0 to 1; absent
        /// when text detection is off.
        pub text_area: Option<f64>,
        /// Frames shown to the model, as positions in the clip (0 to 1).
        pub frame_positions: String,
        /// Wall time of the batch the clip was in, divided by its size, milliseconds.
        pub latency_ms: f64,
        /// Why captioning failed.
        pub error: Option<String>,
        /// When the caption was made.
        pub created_at: Timestamp,
    }
}

table! {
    /// One row per sample the embed stage made or tried to make: a clip's frames at one bucket
    /// (or its middle frame as an image), encoded, with where its bytes are.
    pub struct SampleRow in "samples" {
        /// Hash of the clip, the kind, the bucket and the encoders' settings.
        pub sample_id: String,
        /// The clip it was made from.
        pub clip_id: String,
        /// `video` (frames sampled in time) or `image` (the middle frame).
        pub kind: String,
        /// `ok`, `skipped` (no bucket fits the clip) or `failed`.
        pub status: SampleStatus,
        /// Bucket name, `<resolution>-<frames>f-<aspect>` (e.g. `240p-33f-16:9`); empty when skipped.
        pub bucket: String,
        /// Frames encoded.
        pub frames: i64,
        /// Frame height after resize and centre crop, pixels.
        pub height: i64,
        /// Frame width, pixels.
        pub width: i64,
        /// Source frames between two encoded frames.
        pub frame_stride: i64,
        /// Shard file name (under `shards/`).
        pub shard: Option<String>,
        /// Byte offset of the sample's zstd frame in the shard.
        pub offset: Option<i64>,
        /// Its length in bytes.
        pub length: Option<i64>,
        /// Length of the decompressed sample record, bytes.
        pub raw_length: Option<i64>,
        /// First 8 bytes of the BLAKE3 hash of the compressed frame, as a little-endian u64 in hex.
        pub checksum: Option<String>,
        /// Shape of the `latent` tensor.
        pub latent_shape: Vec<i64>,
        /// Shape of the `text` tensor (tokens × width; empty when there is no text embedding).
        pub text_shape: Vec<i64>,
        /// Element type of the tensors (`bf16`).
        pub dtype: String,
        /// The VAE: `name@hash` of its files.
        pub vae_id: String,
        /// The text encoder, `name@hash`; empty when none.
        pub text_encoder_id: String,
        /// Hash of the embedding settings (buckets, latent mode and seed, text length, format).
        pub embed_hash: String,
        /// Why there is no sample.
        pub error: Option<String>,
        /// When it was made.
        pub created_at: Timestamp,
    }
}

table! {
    /// One row per shard file.
    pub struct ShardRow in "shards" {
        /// File name under `shards/`, derived from the content.
        pub shard: String,
        /// Samples in it.
        pub samples: i64,
        /// File size, bytes.
        pub bytes: i64,
        /// Decompressed size of its sample records, bytes.
        pub raw_bytes: i64,
        /// Size of its compressed index, bytes.
        pub index_bytes: i64,
        /// zstd level the samples were compressed at.
        pub zstd_level: i64,
        /// When it was written.
        pub created_at: Timestamp,
    }
}
