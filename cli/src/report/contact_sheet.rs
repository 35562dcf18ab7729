//! The report's contact sheet: kept clips' middle frames with their captions, copied into the
//! report so that it stays viewable without access to the output.
//!
//! Clips are taken in `clip_id` order, which starts with the content hash of their video, so
//! the sheet is a deterministic spread over sources rather than the first video's clips.

use std::path::Path;

use anyhow::Context;
use clipline_core::storage::Store;
use clipline_sql::Session;

/// One clip on the sheet.
#[derive(Debug, Clone)]
pub struct SheetClip {
    /// The clip.
    pub clip_id: String,
    /// Its source.
    pub source_uri: String,
    /// Seconds.
    pub duration_s: String,
    /// Its caption (empty when not captioned).
    pub caption: String,
    /// `frames/<clip_id>.jpg`, or why the frame could not be copied.
    pub frame: Result<String, String>,
}

/// Pick up to `count` clips, copy their frames into `frames_dir`.
///
/// # Errors
/// When the query fails or the directory cannot be created (a missing frame is shown as such).
pub fn build(session: &mut Session, count: usize, frames_dir: &Path, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<SheetClip>> {
    if !session.catalog().has("clips") || count == 0 {
        return Ok(Vec::new());
    }
    // One caption per clip (several models or prompts may have captioned it).
    let (caption, join) = if session.catalog().has("captions") {
        ("t.caption", "LEFT JOIN (SELECT clip_id, min(caption) AS caption FROM captions WHERE status = 'ok' GROUP BY clip_id) AS t ON c.clip_id = t.clip_id")
    } else {
        ("''", "")
    };
    let sql = format!(
        "SELECT c.clip_id, c.source_uri, c.duration_s, c.frame_uri, {caption} AS caption FROM clips AS c {join} \
         WHERE c.status = 'ok' AND c.frame_uri IS NOT NULL ORDER BY c.clip_id LIMIT {count}"
    );
    let frame = session.run(&sql, "the contact sheet's query")?;
    std::fs::create_dir_all(frames_dir).with_context(|| format!("cannot create {}", frames_dir.display()))?;
    let column = |name: &str| super::strings(&frame, name);
    let (ids, sources, durations, uris, captions) = (column("clip_id")?, column("source_uri")?, column("duration_s")?, column("frame_uri")?, column("caption")?);
    let outputs: Vec<Store> = session.catalog().outputs().iter().filter_map(|o| Store::open(o).ok()).collect();
    let mut sheet = Vec::new();
    for i in 0..frame.height() {
        let file = format!("{}.jpg", ids[i]);
        let copied = runtime.block_on(fetch(&outputs, &uris[i])).and_then(|bytes| {
            std::fs::write(frames_dir.join(&file), bytes).map_err(|e| format!("cannot write {file}: {e}"))
        });
        sheet.push(SheetClip {
            clip_id: ids[i].clone(),
            source_uri: sources[i].clone(),
            duration_s: durations[i].clone(),
            caption: captions[i].clone(),
            frame: copied.map(|()| format!("frames/{file}")),
        });
    }
    Ok(sheet)
}

/// Read a frame through the output store whose root its URI is under.
async fn fetch(outputs: &[Store], uri: &str) -> Result<bytes::Bytes, String> {
    let (store, key) = outputs
        .iter()
        .find_map(|s| Some((s, uri.strip_prefix(s.uri())?.strip_prefix('/')?)))
        .ok_or_else(|| format!("{uri} is not under the outputs read"))?;
    store.get(key).await.map_err(|e| e.to_string())
}
