//! Cumulative distinct accounts of the top entities against the envelope of their kind: a scraper
//! climbs in a straight line while legitimate entities flatten out once they have met their
//! accounts.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, FONT, SIZE, date_mesh, draw_legend, legend_line, short};
use crate::normalize::schema::DAY_MS;
use crate::report::ReportData;

pub fn draw(path: &Path, title: &str, data: &ReportData) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let series: Vec<_> = data
        .charts
        .series
        .iter()
        .filter(|s| !s.cumulative.is_empty())
        .collect();
    let env = data.charts.envelope.as_ref();
    let (lo, hi) = match data.info.time_range {
        Some((a, b)) => (
            data.time.local_ms(a).div_euclid(DAY_MS) as f64,
            data.time.local_ms(b).div_euclid(DAY_MS) as f64 + 1.0,
        ),
        None => (0.0, 1.0),
    };
    let top = series
        .iter()
        .flat_map(|s| s.cumulative.iter().map(|d| d.1 as f64))
        .chain(env.into_iter().flat_map(|e| e.days.iter().map(|d| d.2)))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 26))
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    date_mesh(&mut chart, data, "distinct accounts touched so far")?;
    if let Some(env) = env {
        let band: Vec<(f64, f64)> = env
            .days
            .iter()
            .map(|d| (d.0 as f64 + 1.0, d.2))
            .chain(env.days.iter().rev().map(|d| (d.0 as f64 + 1.0, d.1)))
            .collect();
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(std::iter::once(Polygon::new(band, grey.mix(0.3).filled())))?
            .label(format!(
                "peers: median–90th percentile of {} {}s",
                env.members,
                env.kind.name()
            ))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 20, y + 6)], grey.mix(0.3).filled())
            });
    }
    // Entities with the very same curve (a key and the network it was used from) share one line.
    let mut drawn: Vec<(&Vec<(i64, u64)>, String)> = Vec::new();
    for s in &series {
        let name = format!("{} {}", s.entity.kind.name(), short(&s.entity.id));
        match drawn.iter_mut().find(|(c, _)| **c == s.cumulative) {
            Some((_, label)) => label.push_str(&format!(" = {name}")),
            None => drawn.push((&s.cumulative, name)),
        }
    }
    for (i, (cumulative, label)) in drawn.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut points: Vec<(f64, f64)> = vec![(cumulative[0].0 as f64, 0.0)];
        points.extend(cumulative.iter().map(|d| (d.0 as f64 + 1.0, d.1 as f64)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))?
            .label(label)
            .legend(legend_line(color, 3));
    }
    draw_legend(&mut chart)?;
    root.present()?;
    Ok(())
}
