//! Hour-of-day × day heat map of the top entity: an insider's own working hours, a script's
//! round-the-clock grid and a night-time burst each have their own shape.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, FONT, SIZE};
use crate::normalize::time::day_text;
use crate::report::palette;
use crate::report::series::Heatmap;

pub fn draw(path: &Path, title: &str, h: &Heatmap) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (lo, hi) = match (h.cells.first(), h.cells.last()) {
        (Some(a), Some(b)) => (a.0, b.0 + 1),
        _ => (0, 1),
    };
    let max = h.cells.iter().map(|c| c.2).max().unwrap_or(1).max(1) as f64;
    let (area, legend) = root.split_horizontally(SIZE.0 - 150);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, (FONT, 24))
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0i64..24i64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(format!("date ({})", h.zone))
        .y_desc(format!("hour of day ({})", h.zone))
        .x_label_formatter(&|d| day_text(*d))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .x_labels(8)
        .y_labels(12)
        .draw()?;
    chart.draw_series(h.cells.iter().map(|&(d, hr, n)| {
        let color = shade(n as f64 / max);
        Rectangle::new([(d, hr), (d + 1, hr + 1)], color.filled())
    }))?;
    // Colour scale, continuous, with ticks in events per hour (white: no event that hour).
    let legend = legend.margin(56, 80, 4, 10);
    legend.draw(&Text::new("events per hour", (0, 0), (FONT, 13)))?;
    let (_, h) = legend.dim_in_pixel();
    let (top, lh) = (24, (h as i32 - 24).max(1));
    for y in 0..lh {
        let f = 1.0 - f64::from(y) / f64::from(lh);
        let y = top + y;
        legend.draw(&Rectangle::new(
            [(0, y), (30, y + 1)],
            shade(f * f).filled(),
        ))?;
    }
    let mut ticks: Vec<i64> = [1.0, 0.75, 0.5, 0.25]
        .iter()
        .map(|p| (p * p * max).round().max(1.0) as i64)
        .collect();
    ticks.dedup();
    for n in ticks {
        let y = top + ((1.0 - (n as f64 / max).sqrt()) * f64::from(lh)) as i32;
        legend.draw(&PathElement::new(vec![(30, y), (36, y)], BLACK))?;
        legend.draw(&Text::new(n.to_string(), (40, y - 7), (FONT, 13)))?;
    }
    root.present()?;
    Ok(())
}

/// Viridis on a square-root scale (a few busy hours must not flatten the rest); the scale's
/// position `f` stands for `f² × max` events.
fn shade(f: f64) -> RGBColor {
    let (r, g, b) = palette::viridis(f.clamp(0.0, 1.0).sqrt());
    RGBColor(r, g, b)
}
