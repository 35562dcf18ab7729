//! The streaming loader and the STDiT trainer: not built yet; see issue 5.
