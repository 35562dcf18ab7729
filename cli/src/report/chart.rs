//! Bar charts as SVG, drawn with plotters: one bar per label, stacked by series, with a legend
//! when there is more than one series.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// What a chart shows: `labels[i]`'s bar is the stack of every series' `values[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    /// One per bar, in order.
    pub labels: Vec<String>,
    /// (series name, one value per label).
    pub series: Vec<(String, Vec<f64>)>,
}

impl Bars {
    /// Group rows of (label, series, value) into bars, keeping the order labels first appear in;
    /// values of repeated (label, series) pairs add up.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String, f64)>) -> Self {
        let mut bars = Bars { labels: Vec::new(), series: Vec::new() };
        for (label, series, value) in rows {
            let i = bars.labels.iter().position(|l| *l == label).unwrap_or_else(|| {
                bars.labels.push(label);
                bars.series.iter_mut().for_each(|(_, v)| v.push(0.0));
                bars.labels.len() - 1
            });
            let s = bars.series.iter().position(|(name, _)| *name == series).unwrap_or_else(|| {
                bars.series.push((series, vec![0.0; bars.labels.len()]));
                bars.series.len() - 1
            });
            bars.series[s].1[i] += value;
        }
        bars
    }

    fn stack_top(&self) -> f64 {
        (0..self.labels.len()).map(|i| self.series.iter().map(|(_, v)| v[i]).sum::<f64>()).fold(0.0, f64::max)
    }
}

/// Chart size in pixels.
const SIZE: (u32, u32) = (720, 360);
/// Longest label drawn under a bar.
const MAX_LABEL: usize = 16;

/// Draw `bars` as an SVG document titled `title`, with axis descriptions.
///
/// # Errors
/// When plotters cannot lay the chart out.
pub fn bar_chart_svg(bars: &Bars, title: &str, x_desc: &str, y_desc: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        // A segmented range over 0..=last has one segment per bar.
        let last = bars.labels.len().saturating_sub(1).max(1) as i32;
        let top = (bars.stack_top() * 1.1).max(1.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d((0..last).into_segmented(), 0.0..top)
            .map_err(|e| e.to_string())?;
        let label_of = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => bars.labels.get(*i as usize).map(|l| short(l)).unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.labels.len().min(24))
            .x_label_formatter(&label_of)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        let mut base = vec![0.0; bars.labels.len()];
        for (s, (name, values)) in bars.series.iter().enumerate() {
            let color = Palette99::pick(s).to_rgba();
            let bar = |i: usize, style: ShapeStyle| {
                let x = i as i32;
                Rectangle::new([(SegmentValue::Exact(x), base[i]), (SegmentValue::Exact(x + 1), base[i] + values[i])], style)
            };
            let fills: Vec<_> = (0..values.len()).map(|i| bar(i, color.filled())).collect();
            // A white outline keeps neighbouring bars and stacked series apart.
            let outlines: Vec<_> = (0..values.len()).map(|i| bar(i, WHITE.stroke_width(2))).collect();
            let series = chart.draw_series(fills).map_err(|e| e.to_string())?;
            if bars.series.len() > 1 {
                series.label(name.as_str()).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
            }
            chart.draw_series(outlines).map_err(|e| e.to_string())?;
            base.iter_mut().zip(values).for_each(|(b, v)| *b += v);
        }
        if bars.series.len() > 1 {
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A label short enough to sit under a bar: a URI's file name, cut to [`MAX_LABEL`] characters.
fn short(label: &str) -> String {
    let name = if label.contains("://") { label.rsplit('/').next().unwrap_or(label) } else { label };
    if name.chars().count() > MAX_LABEL {
        format!("{}…", name.chars().take(MAX_LABEL - 1).collect::<String>())
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_into_stacked_bars_in_first_seen_order() {
        let rows = [("2", "ok", 3.0), ("0", "ok", 1.0), ("2", "filtered", 2.0), ("2", "ok", 1.0)];
        let bars = Bars::from_rows(rows.map(|(l, s, v)| (l.to_string(), s.to_string(), v)));
        assert_eq!(bars.labels, ["2", "0"]);
        assert_eq!(bars.series, [("ok".to_string(), vec![4.0, 1.0]), ("filtered".to_string(), vec![2.0, 0.0])]);
        assert_eq!(bars.stack_top(), 6.0);
    }

    #[test]
    fn the_svg_has_the_title_labels_and_one_rectangle_per_bar_and_series() {
        let bars = Bars { labels: vec!["file:///v/a.mp4".into(), "b".into()], series: vec![("ok".into(), vec![3.0, 1.0]), ("filtered".into(), vec![1.0, 0.0])] };
        let svg = bar_chart_svg(&bars, "Clips per source", "source", "clips").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Clips per source") && svg.contains("a.mp4") && !svg.contains("file:///v"), "{svg}");
        assert!(svg.contains("filtered"), "a legend for two series");
        assert!(svg.matches("<rect").count() >= 4, "{svg}");
    }
}
