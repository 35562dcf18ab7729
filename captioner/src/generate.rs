//! Choosing the next token: repetition penalty, then greedy (the default, deterministic) or
//! seeded sampling with temperature and top-k. Each sequence has its own random stream, seeded
//! from the run's seed and the clip, so a caption does not depend on what it was batched with.

use clipline_core::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// Generation settings (`[caption.generation]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    /// Most tokens generated per caption.
    pub max_new_tokens: usize,
    /// HF-style repetition penalty on tokens already in the sequence (1.0: off).
    pub repetition_penalty: f32,
    /// 0: greedy; above 0, sample with this temperature.
    pub temperature: f32,
    /// When sampling, keep only the k most likely tokens (0: all).
    pub top_k: usize,
    /// Seed of the sampling streams.
    pub seed: u64,
    /// Extra strings that end a caption when generated as one token (the model's own end
    /// tokens always do).
    pub stop_tokens: Vec<String>,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self { max_new_tokens: 96, repetition_penalty: 1.0, temperature: 0.0, top_k: 0, seed: 0, stop_tokens: Vec::new() }
    }
}

impl GenerationSettings {
    /// These settings with `max_new_tokens` cut to `room`, the positions the model has left
    /// after the prompt (a GPT-2 decoder has a fixed number of learned positions, and running
    /// past them fails).
    pub fn within(&self, room: Option<usize>) -> GenerationSettings {
        let max_new_tokens = room.map_or(self.max_new_tokens, |r| self.max_new_tokens.min(r));
        GenerationSettings { max_new_tokens, ..self.clone() }
    }
}

/// Picks tokens for one sequence.
pub struct Sampler {
    stream: SplitMix64,
}

impl Sampler {
    /// A sampler whose stream is fixed by the settings' seed and the clip's key.
    pub fn new(seed: u64, key: &str) -> Self {
        Self { stream: SplitMix64::keyed(seed, key) }
    }

    /// The next token given this step's `logits` and the tokens so far (prompt included).
    pub fn pick(&mut self, logits: &mut [f32], previous: &[u32], settings: &GenerationSettings) -> u32 {
        if settings.repetition_penalty != 1.0 {
            apply_repetition_penalty(logits, previous, settings.repetition_penalty);
        }
        if settings.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        if settings.top_k > 0 {
            order.truncate(settings.top_k);
        }
        let top = logits[order[0] as usize];
        let weights: Vec<f32> = order.iter().map(|&t| ((logits[t as usize] - top) / settings.temperature).exp()).collect();
        let mut target = self.stream.next_f32() * weights.iter().sum::<f32>();
        for (&token, w) in order.iter().zip(&weights) {
            target -= w;
            if target <= 0.0 {
                return token;
            }
        }
        order[order.len() - 1]
    }
}

/// Penalise tokens already present: positive logits divided, negative multiplied.
pub fn apply_repetition_penalty(logits: &mut [f32], previous: &[u32], penalty: f32) {
    let mut seen = vec![false; logits.len()];
    for &t in previous {
        if let Some(s) = seen.get_mut(t as usize)
            && !*s
        {
            *s = true;
            let l = &mut logits[t as usize];
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}

/// Index of the largest logit (the first one on ties, as numpy and torch do).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The logits of the last position of each sequence, `[batch, vocab]`, from a decoder's
/// `[batch, positions, vocab]` output; and `vocab`.
pub fn last_position_logits(dims: &[usize], logits: &[f32]) -> (Vec<f32>, usize) {
    let vocab = *dims.last().unwrap_or(&0);
    let per_sequence = vocab * dims.get(1).copied().unwrap_or(1);
    let last = logits.chunks(per_sequence.max(1)).flat_map(|seq| &seq[seq.len() - vocab..]).copied().collect();
    (last, vocab)
}

/// Sequences of a batch being generated together.
pub struct Batch {
    /// Tokens generated so far, per sequence.
    pub generated: Vec<Vec<u32>>,
    /// Whether each sequence has ended.
    pub done: Vec<bool>,
    /// Whether each ended at an end token (not the limit).
    pub stopped: Vec<bool>,
    samplers: Vec<Sampler>,
}

impl Batch {
    /// A batch whose sequences are keyed (for sampling) by `keys`.
    pub fn new(keys: &[&str], seed: u64) -> Self {
        let n = keys.len();
        Self {
            generated: vec![Vec::new(); n],
            done: vec![false; n],
            stopped: vec![false; n],
            samplers: keys.iter().map(|k| Sampler::new(seed, k)).collect(),
        }
    }

    /// Take one step: `logits` holds `vocab` logits per sequence; `prompts` are the tokens
    /// each sequence started from (for the repetition penalty). Returns the tokens to feed
    /// next (`pad` for ended sequences).
    pub fn step(&mut self, logits: &mut [f32], vocab: usize, prompts: &[Vec<u32>], stop: &[u32], pad: u32, settings: &GenerationSettings) -> Vec<u32> {
        let mut next = Vec::with_capacity(self.done.len());
        for (i, row) in logits.chunks_mut(vocab).enumerate() {
            if self.done[i] {
                next.push(pad);
                continue;
            }
            let history: Vec<u32> = if settings.repetition_penalty == 1.0 {
                Vec::new()
            } else {
                prompts.get(i).into_iter().flatten().chain(&self.generated[i]).copied().collect()
            };
            let token = self.samplers[i].pick(row, &history, settings);
            if stop.contains(&token) {
                self.done[i] = true;
                self.stopped[i] = true;
                next.push(pad);
                continue;
            }
            self.generated[i].push(token);
            if self.generated[i].len() >= settings.max_new_tokens {
                self.done[i] = true;
            }
            next.push(token);
        }
        next
    }

    /// Whether every sequence has ended.
    pub fn finished(&self) -> bool {
        self.done.iter().all(|&d| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.9, 0.9, -1.0]), 1);
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down() {
        let mut logits = vec![2.0, -1.0, 1.0];
        apply_repetition_penalty(&mut logits, &[0, 1, 0], 2.0);
        assert_eq!(logits, vec![1.0, -2.0, 1.0]);
    }

    #[test]
    fn sampling_is_seeded_per_sequence() {
        let settings = GenerationSettings { temperature: 1.0, ..GenerationSettings::default() };
        let draw = |key: &str| {
            let mut s = Sampler::new(5, key);
            (0..20).map(|_| s.pick(&mut [0.0; 8], &[], &settings)).collect::<Vec<_>>()
        };
        assert_eq!(draw("clip-a"), draw("clip-a"));
        assert_ne!(draw("clip-a"), draw("clip-b"));
        assert!(draw("clip-a").iter().any(|&t| t != draw("clip-a")[0]));
    }

    #[test]
    fn batches_stop_per_sequence_and_at_the_limit() {
        let settings = GenerationSettings { max_new_tokens: 3, ..GenerationSettings::default() };
        let mut batch = Batch::new(&["a", "b"], 0);
        let mut logits = vec![0.0, 1.0, 0.0, /* second: stop token 2 */ 0.0, 0.0, 1.0];
        assert_eq!(batch.step(&mut logits, 3, &[], &[2], 0, &settings), vec![1, 0]);
        assert!(batch.done[1] && batch.stopped[1] && !batch.done[0]);
        for _ in 0..2 {
            batch.step(&mut [0.0, 1.0, 0.0, 0.0, 0.0, 1.0], 3, &[], &[2], 0, &settings);
        }
        assert!(batch.finished());
        assert_eq!(batch.generated[0], vec![1, 1, 1]);
        assert!(!batch.stopped[0]);
    }
}
