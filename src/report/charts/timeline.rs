//! Per-entity timeline: events and distinct accounts per day, with departure, revocation and
//! first-anomaly instants as labelled vertical lines.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, FONT, SIZE, date_mesh, draw_legend, legend_line};
use crate::normalize::schema::DAY_MS;
use crate::rank::Ranked;
use crate::report::series::EntitySeries;
use crate::report::{ReportData, marks_of};

pub fn draw(
    path: &Path,
    title: &str,
    s: &EntitySeries,
    row: &Ranked,
    data: &ReportData,
) -> DrawResult {
    let marks = marks_of(row);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 26))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2 - 20);
    // The whole export's span, so "nothing before this date" is visible too.
    let (mut lo, mut hi) = match data.info.time_range {
        Some((a, b)) => (
            data.time.local_ms(a).div_euclid(DAY_MS) as f64,
            data.time.local_ms(b).div_euclid(DAY_MS) as f64 + 1.0,
        ),
        None => (
            s.days.first().map_or(0, |d| d.0) as f64,
            s.days.last().map_or(0, |d| d.0) as f64 + 1.0,
        ),
    };
    for (_, at) in &marks {
        let d = data.time.local_ms(*at) as f64 / DAY_MS as f64;
        lo = lo.min(d - 1.0);
        hi = hi.max(d + 1.0);
    }
    let panels = [
        (top, "events per day", true, BLUE),
        (bottom, "distinct accounts per day", false, RED),
    ];
    for (area, label, events, color) in panels {
        let values: Vec<(f64, f64)> = s
            .days
            .iter()
            .map(|d| {
                (
                    d.0 as f64 + 0.5,
                    if events { d.1 as f64 } else { d.2 as f64 },
                )
            })
            .collect();
        let ymax = values.iter().map(|v| v.1).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0.0..ymax)?;
        date_mesh(&mut chart, data, label)?;
        chart
            .draw_series(LineSeries::new(values, color.stroke_width(2)))?
            .label(label)
            .legend(legend_line(color.to_rgba(), 2));
        for (i, (name, at)) in marks.iter().enumerate() {
            let x = data.time.local_ms(*at) as f64 / DAY_MS as f64;
            let mark_color = Palette99::pick(i + 3).to_rgba();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, ymax)],
                    mark_color.stroke_width(2),
                )))?
                .label(name.clone())
                .legend(legend_line(mark_color, 2));
        }
        draw_legend(&mut chart)?;
    }
    root.present()?;
    Ok(())
}
