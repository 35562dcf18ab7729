//! The statuses of manifest rows and the kinds of failure, as enums in Rust and as the same
//! strings on disk.
//!
//! A status compared as a string is a typo waiting to happen (`"filterd"` compiles), and the set
//! of statuses a row can have is part of the data contract (`docs/MANIFESTS.md`). So each table's
//! status is an enum; the Parquet column (and a commit marker's JSON) stays a plain string holding
//! exactly the words it always held, so SQL, pandas and older readers see no change. Reading a word that is not one of
//! the statuses is an error naming it.

use std::fmt;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::DataType;

use super::Column;

/// Declare a status enum, its words on disk, and its [`Column`] encoding as a string column.
macro_rules! status {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// Every status, in the order they are reported.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the manifest.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(word: &str) -> Result<Self, String> {
                match word {
                    $($word => Ok($name::$variant),)+
                    other => Err(format!("{other:?} is not a {} (expected one of {})", stringify!($name), [$($word),+].join(", "))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Column for $name {
            const NULLABLE: bool = false;
            fn data_type() -> DataType {
                DataType::Utf8
            }
            fn to_array(values: Vec<Self>) -> ArrayRef {
                Arc::new(StringArray::from_iter_values(values.into_iter().map($name::as_str)))
            }
            fn from_array(array: &ArrayRef) -> Result<Vec<Self>, String> {
                let words = array.as_any().downcast_ref::<StringArray>().ok_or_else(|| format!("expected Utf8, found {}", array.data_type()))?;
                if words.null_count() > 0 {
                    return Err("unexpected null".into());
                }
                words.iter().map(|w| w.unwrap_or_default().parse()).collect()
            }
        }

        impl Column for Option<$name> {
            const NULLABLE: bool = true;
            fn data_type() -> DataType {
                DataType::Utf8
            }
            fn to_array(values: Vec<Self>) -> ArrayRef {
                Arc::new(values.into_iter().map(|v| v.map($name::as_str)).collect::<StringArray>())
            }
            fn from_array(array: &ArrayRef) -> Result<Vec<Self>, String> {
                let words = array.as_any().downcast_ref::<StringArray>().ok_or_else(|| format!("expected Utf8, found {}", array.data_type()))?;
                words.iter().map(|w| w.map(str::parse).transpose()).collect()
            }
        }
    };
}

status!(
    /// What became of an input (`videos.status`).
    VideoStatus {
        /// Processed.
        Ok => "ok",
        /// Processed as far as it decodes (truncated).
        Partial => "partial",
        /// Nothing to cut (no shot long enough).
        Skipped => "skipped",
        /// Not processed; `error_kind` says why.
        Failed => "failed",
        /// The same bytes as an earlier input, which was processed instead.
        Duplicate => "duplicate",
    }
);

status!(
    /// What became of a clip (`clips.status`).
    ClipStatus {
        /// Kept.
        Ok => "ok",
        /// Dropped by a filter; `filter_reason` says which.
        Filtered => "filtered",
        /// Its file could not be written.
        Failed => "failed",
    }
);

status!(
    /// Whether a clip got its caption (`captions.status`).
    CaptionStatus {
        /// Captioned.
        Ok => "ok",
        /// The model failed on it; `error` says how.
        Failed => "failed",
    }
);

status!(
    /// What became of a latent sample (`samples.status`).
    SampleStatus {
        /// Encoded and stored in a shard.
        Ok => "ok",
        /// Not encoded (no bucket fits the clip).
        Skipped => "skipped",
        /// Encoding or storing failed; `error` says how.
        Failed => "failed",
    }
);

status!(
    /// How a run ended (`runs.status`).
    RunStatus {
        /// Every input committed, none failed.
        Completed => "completed",
        /// Every input committed, some failed (see the `videos` table).
        CompletedWithFailures => "completed_with_failures",
        /// Stopped by Ctrl-C; started again, it resumes.
        Interrupted => "interrupted",
    }
);

status!(
    /// Why an input failed, was cut short or skipped (`videos.error_kind`).
    FailureKind {
        /// The input is 0 bytes.
        Empty => "empty",
        /// No such file.
        NotFound => "not_found",
        /// The file exists but cannot be read.
        ReadError => "read_error",
        /// A remote input could not be fetched (network, HTTP, object store).
        Unreachable => "unreachable",
        /// Over `sources.max_download_mib` or `decode.max_dimension`.
        TooLarge => "too_large",
        /// ffprobe does not recognise it as media.
        NotVideo => "not_video",
        /// Media without a video stream.
        NoVideoStream => "no_video_stream",
        /// ffprobe failed for another reason.
        ProbeFailed => "probe_failed",
        /// No frame could be decoded.
        DecodeFailed => "decode_failed",
        /// ffprobe or ffmpeg stalled or ran past its time limit.
        Timeout => "timeout",
        /// Decoded only in part (`status = partial`).
        Truncated => "truncated",
        /// ffmpeg or ffprobe ran out of the memory `decode.max_memory_mib` allows.
        MemoryLimit => "memory_limit",
        /// The shot-detection model (TransNetV2) failed on it.
        DetectFailed => "detect_failed",
        /// No shot long enough for a clip (`status = skipped`).
        NoClips => "no_clips",
        /// The same bytes as an earlier input (`status = duplicate`).
        Duplicate => "duplicate",
        /// The local spool for a remote input could not be written.
        Spool => "spool",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_words_and_unknown_words_are_named() {
        for status in VideoStatus::ALL {
            assert_eq!(status.as_str().parse::<VideoStatus>(), Ok(*status));
        }
        let column = ClipStatus::to_array(vec![ClipStatus::Ok, ClipStatus::Filtered]);
        assert_eq!(ClipStatus::from_array(&column).unwrap(), [ClipStatus::Ok, ClipStatus::Filtered]);
        let kinds = Option::<FailureKind>::to_array(vec![None, Some(FailureKind::NoClips)]);
        assert_eq!(Option::<FailureKind>::from_array(&kinds).unwrap(), [None, Some(FailureKind::NoClips)]);
        let err = "filterd".parse::<ClipStatus>().unwrap_err();
        assert!(err.contains("\"filterd\"") && err.contains("ok, filtered, failed"), "{err}");
    }
}
