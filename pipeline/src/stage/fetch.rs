//! The fetch stage: an input read or downloaded to a local file and hashed, and claimed by its
//! content, so that a later copy of the same bytes skips the work (the committer writes its
//! `duplicate` row).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::RunContext;
use crate::sources::{FetchError, Fetched, Fetcher, Source};

/// What fetching an input gave.
pub enum Fetch {
    /// The first input (in input order, so far) with these bytes: it is processed.
    First(Fetched),
    /// A copy of an earlier input's bytes: it is not processed.
    Copy(Fetched),
}

/// The fetch stage.
pub struct FetchStage {
    ctx: Arc<RunContext>,
    fetcher: Fetcher,
    /// Lowest input index seen for each content hash.
    claims: Mutex<HashMap<String, usize>>,
}

impl FetchStage {
    /// A stage fetching with `fetcher`.
    pub fn new(ctx: Arc<RunContext>, fetcher: Fetcher) -> Self {
        Self { ctx, fetcher, claims: Mutex::new(HashMap::new()) }
    }

    /// Fetch input number `index` (its position in the sorted input list) and claim its bytes.
    ///
    /// # Errors
    /// See [`FetchError`].
    pub async fn run(&self, index: usize, source: &Source) -> Result<Fetch, FetchError> {
        let fetched = self.ctx.stages.fetch.run(self.fetcher.fetch(source)).await?;
        Ok(if self.claimed_earlier(&fetched.video_id, index) { Fetch::Copy(fetched) } else { Fetch::First(fetched) })
    }

    fn claimed_earlier(&self, video_id: &str, index: usize) -> bool {
        let mut claims = self.claims.lock().expect("claims lock");
        let first = claims.entry(video_id.to_string()).or_insert(index);
        if index < *first {
            *first = index;
        }
        *first < index
    }
}
