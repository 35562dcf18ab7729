//! The work list of a partitioned run (`clipline plan`): every input with its size, the commit
//! chunk it belongs to and the partition that processes it.
//!
//! Chunks are cut from the sorted inputs exactly as a single `clipline run` cuts them, and whole
//! chunks go to partitions; so every partition writes the same parts, shards and markers that a
//! single run would, and the committed result is the same. The list is Parquet so that it can be
//! queried like the manifests; the [`PlanInfo`] beside it is written last and names it.

use serde::{Deserialize, Serialize};

use crate::table;

/// Directory of the plan under the output root.
pub const PLAN_DIR: &str = "plan";
/// The work list.
pub const WORK_LIST: &str = "plan/work.parquet";
/// The plan's summary, written after the work list.
pub const PLAN_INFO: &str = "plan/plan.json";

table! {
    /// One input of a partitioned run.
    pub struct WorkRow in "plan" {
        /// The input's normalised URI, as it is read (with any credentials an HTTP URL carries;
        /// the manifests record it masked).
        pub uri: String,
        /// Its size in bytes, when it could be known without reading it.
        pub size_bytes: Option<i64>,
        /// Index of its commit chunk among all chunks (in input order).
        pub chunk: i64,
        /// The partition that processes it (0 to partitions - 1).
        pub partition: i64,
    }
}

/// What a plan is: written to [`PLAN_INFO`] after the work list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    /// Number of partitions.
    pub partitions: u32,
    /// Inputs per commit chunk.
    pub commit_every: u32,
    /// Settings fingerprint of the config the plan was made with; partitions must match it.
    pub settings_hash: String,
    /// Inputs in the work list.
    pub inputs: u64,
    /// Their known bytes.
    pub bytes: u64,
    /// Content hash of the work list file, so a half-replaced plan is noticed.
    pub work_list_hash: String,
}
