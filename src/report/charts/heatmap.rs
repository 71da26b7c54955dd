//! Hour-of-day × day heat map of the top entity: an insider's own working hours, a script's
//! round-the-clock grid and a night-time burst each have their own shape.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, FONT, SIZE};
use crate::normalize::time::day_text;
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
    // Colour scale with its unit.
    let steps = 10;
    let legend = legend.margin(80, 80, 10, 30);
    let (_, lh) = legend.dim_in_pixel();
    for i in 0..steps {
        let frac = 1.0 - i as f64 / steps as f64;
        let y0 = (lh as i32 * i) / steps;
        let y1 = (lh as i32 * (i + 1)) / steps;
        legend.draw(&Rectangle::new([(0, y0), (30, y1)], shade(frac).filled()))?;
    }
    legend.draw(&Text::new(
        format!("{max:.0} events/h"),
        (35, 0),
        (FONT, 13),
    ))?;
    legend.draw(&Text::new("0", (35, lh as i32 - 14), (FONT, 13)))?;
    root.present()?;
    Ok(())
}

/// White → dark red.
fn shade(f: f64) -> RGBColor {
    let f = f.clamp(0.0, 1.0).sqrt();
    RGBColor(
        255 - (f * 100.0) as u8,
        255 - (f * 235.0) as u8,
        255 - (f * 235.0) as u8,
    )
}
