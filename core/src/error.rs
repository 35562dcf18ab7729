//! The error type of the shared crate: every variant names the object, file or table it is about,
//! so a message read in a log of a million-video run still says where to look.

use std::fmt;

/// An error and its causes on one line, each part said once: object_store nests each layer's
/// text inside the next (a failed S3 call repeats its request line at every layer), so the plain
/// chain says the same thing four times before the root cause. For an `anyhow::Error`, pass
/// `error.as_ref()`.
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        for part in e.to_string().split(": ") {
            if !kept.iter().any(|k| k == part) {
                kept.push(part.to_string());
            }
        }
        next = e.source();
    }
    kept.join(": ")
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in storage or manifest handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A storage URI or key that clipline does not accept.
    #[error("invalid storage location {uri:?}: {reason}")]
    InvalidLocation {
        /// The URI or key as given.
        uri: String,
        /// Why it was refused.
        reason: String,
    },
    /// An object-store call failed.
    #[error("storage error at {uri}: {source}")]
    Storage {
        /// The full URI of the object or prefix.
        uri: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// An object-store call did not answer in time.
    #[error("storage call at {uri} timed out after {seconds} s")]
    Timeout {
        /// The full URI of the object or prefix.
        uri: String,
        /// The limit that was exceeded.
        seconds: u64,
    },
    /// A local file could not be written.
    #[error("cannot write {uri}: {source}")]
    Io {
        /// The full URI of the object.
        uri: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A conditional create found the object already there.
    #[error("{uri} already exists")]
    AlreadyExists {
        /// The full URI of the object.
        uri: String,
    },
    /// A Parquet file could not be encoded or decoded.
    #[error("parquet error in {what}: {message}")]
    Parquet {
        /// The table or file concerned.
        what: String,
        /// The decoder's or encoder's message.
        message: String,
    },
    /// A manifest does not have the columns clipline expects.
    #[error("manifest table {table}: {message}")]
    Schema {
        /// The table concerned.
        table: String,
        /// What does not match.
        message: String,
    },
}

impl Error {
    /// Whether the object asked for does not exist (as opposed to the store failing).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Storage { source: object_store::Error::NotFound { .. }, .. })
    }

    pub(crate) fn parquet(what: impl Into<String>, err: impl fmt::Display) -> Self {
        Error::Parquet { what: what.into(), message: err.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[test]
    fn a_nested_storage_error_says_each_part_once() {
        let request = "Error performing GET http://h/b in 1s, after 5 retries - HTTP error";
        let root = anyhow::anyhow!("tcp connect error: Connection refused (os error 111)");
        let error = root.context(format!("{request}: tcp connect error")).context(format!("Generic S3 error: {request}")).context("storage error at s3://b/out");
        assert_eq!(error_line(error.as_ref()), format!("storage error at s3://b/out: Generic S3 error: {request}: tcp connect error: Connection refused (os error 111)"));
    }
}
