//! The filter that needs the model stages' results: a clip whose caption frames hold more text
//! than `filters.max_text_area` is filtered, and its samples are never embedded (its caption row
//! stays, with the score). The filters that need only the analysis (length, motion, static) are
//! settled by the clip planner ([`crate::clips`]).

use clipline_core::manifest::{CaptionRow, ClipRow, ClipStatus};

use crate::embed::EmbedInput;

/// Mark the `ok` clips whose caption found more text than `max` filtered, and drop their
/// samples from `embed_inputs`.
pub fn text_area(clips: &mut [ClipRow], captions: &[CaptionRow], embed_inputs: &mut Vec<EmbedInput>, max: f64) {
    for caption in captions {
        let Some(area) = caption.text_area.filter(|&a| a > max) else { continue };
        if let Some(clip) = clips.iter_mut().find(|c| c.clip_id == caption.clip_id && c.status == ClipStatus::Ok) {
            clip.status = ClipStatus::Filtered;
            clip.filter_reason = Some(format!("too much text: text_area {area:.3} > filters.max_text_area {max}"));
            embed_inputs.retain(|input| input.clip_id != caption.clip_id);
        }
    }
}
