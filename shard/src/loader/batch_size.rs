//! Per-bucket batch sizes: the most specific key that matches a bucket wins.
//!
//! A bucket `240p-33f-16:9` looks for its full name, then `240p-33f`, then `240p`, then
//! `default`. Open-Sora's bucket configs taught that batch sizes must follow the token count
//! of a shape (an image batch can be 30x a long-video batch), and that a bucket nobody sized
//! silently trains on nothing; here a bucket without any matching key is an error, not a zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Batch size per bucket key (`default`, a resolution, `resolution-framesf`, or a full name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchSizes(pub BTreeMap<String, usize>);

impl BatchSizes {
    /// The batch size of `bucket`, or `None` when no key matches it.
    pub fn of(&self, bucket: &str) -> Option<usize> {
        let mut parts = bucket.splitn(3, '-');
        let resolution = parts.next().unwrap_or_default();
        let frames = parts.next();
        let candidates = [Some(bucket.to_string()), frames.map(|f| format!("{resolution}-{f}")), Some(resolution.to_string()), Some("default".to_string())];
        candidates.into_iter().flatten().find_map(|key| self.0.get(&key).copied())
    }

    /// Keys whose batch size is zero (a config mistake: such a bucket could never be batched).
    pub fn zero_keys(&self) -> Vec<&str> {
        self.0.iter().filter(|(_, n)| **n == 0).map(|(k, _)| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_key_wins() {
        let sizes = BatchSizes([("default", 4), ("240p", 8), ("240p-1f", 64), ("240p-33f-16:9", 3)].into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        assert_eq!(sizes.of("240p-33f-16:9"), Some(3));
        assert_eq!(sizes.of("240p-33f-9:16"), Some(8));
        assert_eq!(sizes.of("240p-1f-1:1"), Some(64));
        assert_eq!(sizes.of("480p-17f-1:1"), Some(4));
        let no_default = BatchSizes([("240p".to_string(), 8)].into_iter().collect());
        assert_eq!(no_default.of("480p-17f-1:1"), None);
    }
}
