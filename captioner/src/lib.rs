//! The captioning stage (ONNX vision-language models): not built yet; see issue 3 and `../shared/DESIGN.md`.
