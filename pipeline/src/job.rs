//! What a job reads and writes, from its config: the output opened and the inputs listed. Shared
//! by `clipline run` ([`crate::run`]) and `clipline plan` ([`crate::plan_cmd`]).

use anyhow::Context;
use clipline_core::storage::Store;

use crate::config::Config;
use crate::sources::{discover, Source};

/// The configured output (`run.output` or `--output`), opened.
///
/// # Errors
/// When none is given or it cannot be opened.
pub fn open_output(config: &Config) -> anyhow::Result<Store> {
    let uri = config.run.output.as_deref().context("no output given: pass --output URI or set run.output in the config")?;
    Store::open(uri).with_context(|| format!("cannot open output {uri}"))
}

/// The configured inputs (`run.inputs` or `--input`), expanded into sources in input order.
///
/// # Errors
/// When none are given or they cannot be listed.
pub async fn discover_inputs(config: &Config) -> anyhow::Result<Vec<Source>> {
    anyhow::ensure!(!config.run.inputs.is_empty(), "no inputs given: pass --input URI (files, directories, globs, s3:// prefixes or URLs)");
    Ok(discover(&config.run.inputs, &config.sources).await?)
}
