//! Overview: how many entities per severity and per detector, and the top entities by score.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, FONT, SIZE, short, whole};
use crate::rank::Severity;
use crate::report::{ReportData, palette};

const TOP: usize = 10;

pub fn draw(path: &Path, data: &ReportData) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled("Findings overview", (FONT, 26))?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let (sev_area, det_area) = left.split_vertically((SIZE.1 - 40) / 2);

    let severities: Vec<Bar> = Severity::ALL
        .iter()
        .rev()
        .map(|s| {
            (
                s.name().to_string(),
                data.ranked.iter().filter(|r| r.severity == *s).count() as f64,
                sev_color(*s),
            )
        })
        .collect();
    bars(&sev_area, "entities by severity", "entities", &severities)?;
    let mut per_detector: BTreeMap<&str, f64> = BTreeMap::new();
    for r in data.ranked {
        for d in &r.detectors {
            *per_detector.entry(d).or_default() += 1.0;
        }
    }
    // Detectors are not ranked: one neutral colour.
    let detectors: Vec<Bar> = per_detector
        .into_iter()
        .map(|(k, v)| (k.to_string(), v, RGBColor(49, 104, 142)))
        .collect();
    bars(&det_area, "entities by detector", "entities", &detectors)?;
    // Each incident's bar in its severity's colour, so the score and its reading go together.
    let top: Vec<Bar> = data
        .leads()
        .take(TOP)
        .map(|r| {
            (
                format!(
                    "#{} {} ({})",
                    r.incident,
                    short(&r.entity.id),
                    r.severity.name()
                ),
                r.score,
                sev_color(r.severity),
            )
        })
        .collect();
    bars(
        &right,
        &format!("top {TOP} incidents by score"),
        "score (0–100)",
        &top,
    )?;
    root.present()?;
    Ok(())
}

/// A labelled bar and its colour.
type Bar = (String, f64, RGBColor);

fn sev_color(s: Severity) -> RGBColor {
    let (r, g, b) = palette::severity(s);
    RGBColor(r, g, b)
}

/// Horizontal bars, one per label, top to bottom in the given order, labels centred on bars.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    unit: &str,
    values: &[Bar],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let n = values.len().max(1) as i32;
    let max = values.iter().map(|v| v.1).fold(1.0, f64::max) * 1.15;
    let labels: Vec<String> = values.iter().map(|v| v.0.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(190)
        .build_cartesian_2d(0.0..max, (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(unit)
        .y_labels(n as usize)
        .x_label_formatter(&whole)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels
                .get((n - 1 - *i) as usize)
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        })
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, (_, v, color))| {
        let y = n - 1 - i as i32;
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(y)),
                (*v, SegmentValue::Exact(y + 1)),
            ],
            color.filled(),
        );
        bar.set_margin(6, 6, 0, 0);
        bar
    }))?;
    Ok(())
}
