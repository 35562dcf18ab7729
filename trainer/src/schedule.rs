//! Learning-rate schedules, as a pure function of the step so a resumed run follows the same curve.

use serde::{Deserialize, Serialize};

/// The shape of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Linear warm-up, then cosine decay to `min_lr_ratio` of the peak.
    WarmupCosine,
    /// Linear warm-up, then the peak.
    WarmupConstant,
    /// One cycle: from the peak / 25 up to the peak over the warm-up, then cosine down to
    /// `min_lr_ratio` of the peak.
    OneCycle,
}

/// `[schedule]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Its shape.
    pub kind: ScheduleKind,
    /// Warm-up steps.
    pub warmup_steps: u64,
    /// The final learning rate as a fraction of the peak (cosine shapes).
    pub min_lr_ratio: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { kind: ScheduleKind::WarmupCosine, warmup_steps: 100, min_lr_ratio: 0.1 }
    }
}

impl ScheduleConfig {
    /// Check it fits a run of `steps`.
    ///
    /// # Errors
    /// When the warm-up is longer than the run or the ratio is out of range.
    pub fn check(&self, steps: u64) -> Result<(), String> {
        if self.warmup_steps > steps || !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Err(format!("schedule.warmup_steps {} must not exceed train.steps {steps}, and min_lr_ratio must be in [0, 1]", self.warmup_steps));
        }
        Ok(())
    }

    /// The learning rate at `step` (0-based) of `steps`, peaking at `peak`.
    pub fn lr(&self, peak: f64, step: u64, steps: u64) -> f64 {
        let warmup = self.warmup_steps;
        let floor = peak * self.min_lr_ratio;
        if step < warmup {
            let rise = (step + 1) as f64 / warmup as f64;
            return match self.kind {
                ScheduleKind::OneCycle => peak / 25.0 + (peak - peak / 25.0) * rise,
                _ => peak * rise,
            };
        }
        match self.kind {
            ScheduleKind::WarmupConstant => peak,
            ScheduleKind::WarmupCosine | ScheduleKind::OneCycle => {
                let span = steps.saturating_sub(warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).min(1.0);
                floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_rise_then_hold_or_decay() {
        let cosine = ScheduleConfig { kind: ScheduleKind::WarmupCosine, warmup_steps: 10, min_lr_ratio: 0.1 };
        assert!((cosine.lr(1.0, 0, 100) - 0.1).abs() < 1e-12);
        assert!((cosine.lr(1.0, 9, 100) - 1.0).abs() < 1e-12);
        assert!((cosine.lr(1.0, 10, 100) - 1.0).abs() < 1e-12);
        assert!((cosine.lr(1.0, 100, 100) - 0.1).abs() < 1e-12);
        assert!(cosine.lr(1.0, 50, 100) < cosine.lr(1.0, 30, 100));
        let constant = ScheduleConfig { kind: ScheduleKind::WarmupConstant, ..cosine.clone() };
        assert_eq!(constant.lr(1.0, 90, 100), 1.0);
        let cycle = ScheduleConfig { kind: ScheduleKind::OneCycle, ..cosine };
        assert!((cycle.lr(1.0, 0, 100) - (0.04 + 0.96 * 0.1)).abs() < 1e-12);
        assert!((cycle.lr(1.0, 100, 100) - 0.1).abs() < 1e-12);
    }
}
