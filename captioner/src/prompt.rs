//! Prompts and the answers they reserve.
//!
//! The default prompt (`configs/prompts/describe.txt`, built into the binary) asks for the
//! scene, motion and style in at most six sentences, and reserves three exact answers for clips
//! that cannot be described; those answers become the caption's flags, which filters and SQL
//! use (`list_contains(flags, 'no_movement')`).

/// The default prompt.
pub const DEFAULT_PROMPT: &str = include_str!("../../configs/prompts/describe.txt");

/// The reserved answers and their flags.
pub const RESERVED_ANSWERS: [(&str, &str); 3] =
    [("not enough information", "not_enough_information"), ("single image", "single_image"), ("no movement", "no_movement")];

/// The flags of a caption: a reserved answer, alone (case, surrounding space, quotes and a
/// final full stop aside).
pub fn flags(caption: &str) -> Vec<String> {
    let answer = caption.trim().trim_matches(['\'', '"']).trim_end_matches('.').trim().to_lowercase();
    RESERVED_ANSWERS.iter().filter(|(text, _)| answer == *text).map(|(_, flag)| flag.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_answers_become_flags() {
        assert_eq!(flags("No movement."), vec!["no_movement"]);
        assert_eq!(flags("  'Single image' "), vec!["single_image"]);
        assert_eq!(flags("Not enough information"), vec!["not_enough_information"]);
        assert!(flags("No movement of the camera, but a red ball rolls.").is_empty());
    }

    #[test]
    fn the_default_prompt_names_the_reserved_answers() {
        for (answer, _) in RESERVED_ANSWERS {
            assert!(DEFAULT_PROMPT.to_lowercase().contains(&format!("'{answer}'")), "{answer}");
        }
    }
}
