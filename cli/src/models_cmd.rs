//! `clipline models list` and `clipline models pull ID`: the catalogue and the caches.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use clipline_core::cache::cache_dir;
use clipline_models as models;
use indicatif::MultiProgress;

#[derive(Subcommand)]
pub enum ModelsCmd {
    /// The known models, their sources and whether they are in the cache.
    List,
    /// Download a known model into the cache (a hub model into the Hugging Face cache) (resumes an interrupted pull; checks every file's
    /// checksum). HF_ENDPOINT and HF_TOKEN are honoured.
    Pull {
        /// The model's id (see `clipline models list`) or its hub repository.
        id: String,
        /// Use the cache only (also HF_HUB_OFFLINE=1): succeed when the model is there.
        #[arg(long)]
        offline: bool,
    },
}

/// Run a `models` command.
///
/// # Errors
/// When the model is unknown or cannot be pulled.
pub async fn models(command: ModelsCmd, progress: &MultiProgress) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCmd::List => {
            let cache = cache_dir();
            for m in models::CATALOGUE {
                let state = m.installed(&cache).map_or("not pulled".to_string(), |d| format!("in {}", d.display()));
                println!("{:<26} {:<13} {} [{state}]", m.id, format!("{:?}", m.role), m.about);
            }
        }
        ModelsCmd::Pull { id, offline } => {
            let model = models::known(&id).with_context(|| {
                let ids: Vec<&str> = models::CATALOGUE.iter().map(|m| m.id).collect();
                format!("unknown model {id:?}; known: {}", ids.join(", "))
            })?;
            let bar = progress.add(indicatif::ProgressBar::new(0));
            let dir = models::pull(model, &cache_dir(), offline || models::offline_from_env(), &bar).await?;
            bar.finish_and_clear();
            println!("{}: {}", model.id, model.entry(&dir).display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
