//! The report's one HTML page: sections with charts and tables, then the contact sheet.
//!
//! Plain HTML and inline CSS, no external resources. A small inline script counts the images
//! that loaded and shows a warning when any did not (a chart or frame missing from the
//! directory); it records the count on `<body data-images="loaded/total">`, which the tests
//! read from headless Chromium.

use std::fmt::Write;

use clipline_sql::output::display_value;
use clipline_sql::polars::prelude::AnyValue;

use super::contact_sheet::SheetClip;
use super::{Outcome, Section};

/// Rows of a result shown under its chart.
const SHOWN_ROWS: usize = 25;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1200px}\
h2{margin-top:2em;border-bottom:1px solid #ccc}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}td.n{text-align:right}\
.note{color:#777}.warn{background:#fee;border:1px solid #c00;padding:8px;display:none}\
.sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}\
.sheet figure{margin:0;font-size:12px}.sheet img{width:100%}.id{color:#777;word-break:break-all}";

const SCRIPT: &str = "window.addEventListener('load',function(){var i=document.images,n=0;\
for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}\
document.body.dataset.images=n+'/'+i.length;\
if(n<i.length){var w=document.getElementById('broken');w.style.display='block';\
w.textContent=(i.length-n)+' of '+i.length+' images did not load: copy the whole report directory.';}});";

/// The whole page.
pub fn render(outputs: &[String], sections: &[Section], sheet: &[SheetClip]) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>clipline report</title><style>{STYLE}</style>\
         <script>{SCRIPT}</script></head><body><h1>clipline report</h1><div id=\"broken\" class=\"warn\"></div>\
         <p class=\"note\">{} · clipline {}</p><ul>",
        escape(&outputs.join(", ")),
        env!("CARGO_PKG_VERSION")
    );
    for s in sections {
        let _ = write!(html, "<li><a href=\"#{0}\">{0}</a>: {1}</li>", s.query.name, escape(&s.query.question));
    }
    html.push_str("<li><a href=\"#contact-sheet\">contact sheet</a></li></ul>");
    for s in sections {
        section(&mut html, s);
    }
    contact_sheet(&mut html, sheet);
    html.push_str("</body></html>\n");
    html
}

fn section(html: &mut String, s: &Section) {
    let _ = write!(html, "<h2 id=\"{0}\">{0}</h2><p>{1}</p>", s.query.name, escape(&s.query.question));
    match &s.outcome {
        Outcome::Skipped(why) => {
            let _ = write!(html, "<p class=\"note\">Skipped: {}.</p>", escape(why));
        }
        Outcome::Failed(why) => {
            let _ = write!(html, "<p class=\"warn\" style=\"display:block\">Failed: {}</p>", escape(why));
        }
        Outcome::Result { frame, chart } => {
            if let Some(chart) = chart {
                let _ = write!(html, "<p><img src=\"{chart}\" alt=\"chart of {}\" width=\"720\" height=\"360\"></p>", s.query.name);
            }
            table(html, frame);
        }
    }
    let _ = write!(html, "<details><summary>SQL (clipline sql {})</summary><pre>{}</pre></details>", s.query.name, escape(s.query.sql));
}

fn table(html: &mut String, frame: &clipline_sql::polars::prelude::DataFrame) {
    if frame.height() == 0 {
        html.push_str("<p class=\"note\">No rows.</p>");
        return;
    }
    html.push_str("<table><tr>");
    for c in frame.columns() {
        let _ = write!(html, "<th>{}</th>", escape(c.name()));
    }
    html.push_str("</tr>");
    for i in 0..frame.height().min(SHOWN_ROWS) {
        html.push_str("<tr>");
        for c in frame.columns() {
            let class = if c.dtype().is_primitive_numeric() { " class=\"n\"" } else { "" };
            let _ = write!(html, "<td{class}>{}</td>", escape(&display_value(&c.get(i).unwrap_or(AnyValue::Null))));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    if frame.height() > SHOWN_ROWS {
        let _ = write!(html, "<p class=\"note\">{} rows, first {SHOWN_ROWS} shown.</p>", frame.height());
    }
}

fn contact_sheet(html: &mut String, sheet: &[SheetClip]) {
    html.push_str("<h2 id=\"contact-sheet\">contact sheet</h2>");
    if sheet.is_empty() {
        html.push_str("<p class=\"note\">No kept clip has a middle frame.</p>");
        return;
    }
    let _ = write!(html, "<p>{} kept clips' middle frames, with their captions.</p><div class=\"sheet\">", sheet.len());
    for clip in sheet {
        html.push_str("<figure>");
        match &clip.frame {
            Ok(src) => {
                let _ = write!(html, "<img src=\"{}\" alt=\"middle frame of {}\">", escape(src), escape(&clip.clip_id));
            }
            Err(why) => {
                let _ = write!(html, "<p class=\"note\">frame unavailable: {}</p>", escape(why));
            }
        }
        let caption = if clip.caption.is_empty() { "(no caption)" } else { clip.caption.as_str() };
        let source = clip.source_uri.rsplit('/').next().unwrap_or(&clip.source_uri);
        let _ = write!(
            html,
            "<figcaption><b>{}</b><br>{} · {} s<br><span class=\"id\">{}</span></figcaption></figure>",
            escape(caption),
            escape(source),
            escape(&clip.duration_s),
            escape(&clip.clip_id)
        );
    }
    html.push_str("</div>");
}

/// Text safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_data_is_escaped() {
        assert_eq!(escape("<script>\"a&b\""), "&lt;script&gt;&quot;a&amp;b&quot;");
        let clip = SheetClip {
            clip_id: "v-1".into(),
            source_uri: "file:///in/<b>.mp4".into(),
            duration_s: "2.0".into(),
            caption: "a <red> circle".into(),
            frame: Err("gone".into()),
        };
        let html = render(&["file:///out".into()], &[], &[clip]);
        assert!(html.contains("a &lt;red&gt; circle") && html.contains("&lt;b&gt;.mp4") && html.contains("frame unavailable: gone"));
    }
}
