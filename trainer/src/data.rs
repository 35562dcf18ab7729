//! The data side of a run: the dataset opened from its manifests, the samples selected and
//! planned into batches, the model's data-dependent sizes, and the held-out samples.

use std::collections::HashSet;
use std::sync::Arc;

use clipline_core::manifest::SampleRow;
use clipline_core::storage::Store;
use clipline_shard::loader::{DataConfig, Plan};
use clipline_shard::{Dataset, Sample, SampleDecoder};
use tokio::runtime::Handle;

use crate::model::DataShape;

/// What a run reads.
pub struct RunData {
    /// The dataset.
    pub dataset: Arc<Dataset>,
    /// Its training samples in batches.
    pub plan: Arc<Plan>,
    /// Latent channels and text width.
    pub shape: DataShape,
    /// Held-out samples.
    pub validation: Vec<Sample>,
}

/// Open the dataset at `uri` and plan it by `config`.
///
/// # Errors
/// When the manifests cannot be read, the selection is empty, samples disagree on latent
/// channels or text width, or a held-out sample cannot be read.
pub fn open(uri: &str, config: &DataConfig, runtime: &Handle) -> anyhow::Result<RunData> {
    let store = Store::open(uri)?;
    let dataset = Arc::new(runtime.block_on(Dataset::open(store))?);
    let selection = config.select(dataset.rows());
    let ids: HashSet<&str> = selection.train.iter().map(|s| s.id.as_str()).chain(selection.validation.iter().map(String::as_str)).collect();
    let chosen: Vec<&SampleRow> = dataset.rows().iter().filter(|r| ids.contains(r.sample_id.as_str())).collect();
    let shape = data_shape(&chosen, uri)?;
    let plan = Arc::new(Plan::new(config.seed, selection.train, &config.batch_size));
    let mut decoder = SampleDecoder::new()?;
    let validation = selection.validation.iter().map(|id| runtime.block_on(dataset.read(id, &mut decoder))).collect::<Result<Vec<_>, _>>()?;
    Ok(RunData { dataset, plan, shape, validation })
}

/// The channels and text width every selected sample shares.
fn data_shape(rows: &[&SampleRow], uri: &str) -> anyhow::Result<DataShape> {
    let first = rows.first().ok_or_else(|| anyhow::anyhow!("{uri} has no ok samples matching [data] (kinds, min_frames, min_height); run the pipeline with an [embed] section first"))?;
    let shape_of = |r: &SampleRow| -> anyhow::Result<DataShape> {
        let channels = *r.latent_shape.get(1).ok_or_else(|| anyhow::anyhow!("sample {}: latent_shape {:?} is not [T, C, H, W]", r.sample_id, r.latent_shape))?;
        Ok(DataShape { channels: channels as usize, text_width: r.text_shape.get(1).map_or(0, |w| *w as usize) })
    };
    let shape = shape_of(first)?;
    for r in rows {
        let other = shape_of(r)?;
        if other != shape {
            anyhow::bail!("samples disagree: {} has {other:?}, {} has {shape:?}; train on the output of one VAE and text encoder", r.sample_id, first.sample_id);
        }
    }
    Ok(shape)
}
