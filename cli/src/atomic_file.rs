//! Local files that appear whole or not at all: written beside their final path and renamed
//! into place, so a reader (a browser on the report, a script on a query result) never sees
//! half of one.

use std::fs::File;
use std::path::Path;

use anyhow::Context;

/// Create `path` with the bytes `fill` writes.
///
/// # Errors
/// When the directory cannot be written, or `fill` fails.
pub fn write_atomically(path: &Path, fill: impl FnOnce(&mut File) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut staged = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    fill(staged.as_file_mut()).with_context(|| format!("cannot write {}", path.display()))?;
    staged.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
