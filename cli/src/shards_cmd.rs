//! `clipline shards verify OUTPUT`: every committed shard and sample checked.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use clipline_core::storage::Store;
use clipline_shard::output::verify_output;
use indicatif::MultiProgress;

#[derive(Subcommand)]
pub enum ShardsCmd {
    /// Read every committed shard, check every checksum and every sample's manifest row; exits
    /// non-zero naming each bad shard and sample.
    Verify {
        /// The output root (a path, file://, s3://bucket/prefix).
        output: String,
    },
}

/// Run a `shards` command; fails (exit 1) when a shard or sample is bad.
///
/// # Errors
/// When the output cannot be opened or its manifests read.
pub async fn shards(command: ShardsCmd, progress: &MultiProgress) -> anyhow::Result<ExitCode> {
    match command {
        ShardsCmd::Verify { output } => {
            let store = Store::open(&output).with_context(|| format!("cannot open {output}"))?;
            let bar = clipline_pipeline::runtime::stage_bar(progress, "verify", "shards");
            let verification = verify_output(&store, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await?;
            bar.finish_and_clear();
            println!("{verification}");
            Ok(if verification.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
