//! Per-entity timeline: events and distinct accounts per day, with departure, revocation and
//! first-anomaly instants as labelled vertical lines.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, FONT, SIZE, date_mesh, draw_legend, legend_line};
use crate::normalize::TimeParser;
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
    let marks = same_day_together(marks_of(row), data.time);
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
            let mark_color = MARKS[i % MARKS.len()].to_rgba();
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

/// Mark colours: distinct from each other and from the two series (blue, red), dark enough on
/// white (Okabe–Ito's orange, bluish green, reddish purple, sky blue, vermilion, yellow-brown).
const MARKS: [RGBColor; 6] = [
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(160, 130, 0),
];

/// Marks on the same local day drawn as one line with one combined label: two lines a few hours
/// apart on a months-wide axis are one pixel column, and the second hid the first (a first late
/// use and a first never-issued token on the same date).
fn same_day_together(marks: Vec<(String, i64)>, time: &TimeParser) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for (name, at) in marks {
        let day = time.local_ms(at).div_euclid(DAY_MS);
        match out.last_mut() {
            Some((label, first)) if time.local_ms(*first).div_euclid(DAY_MS) == day => {
                label.push_str(" · ");
                label.push_str(&name);
            }
            _ => out.push((name, at)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same local day: one line, both labels; the next day: a line of its own.
    #[test]
    fn marks_on_one_day_share_a_line() {
        let time = TimeParser::new(chrono_tz::America::New_York);
        let day = 1_746_000_000_000; // 2025-04-30T08:00:00Z, 04:00 in New York
        let marks = vec![
            ("first late use".to_string(), day),
            ("first never-issued token".to_string(), day + 3_600_000),
            ("revoked".to_string(), day + 20 * 3_600_000),
        ];
        let got = same_day_together(marks, &time);
        assert_eq!(
            got,
            vec![
                ("first late use · first never-issued token".to_string(), day),
                ("revoked".to_string(), day + 20 * 3_600_000),
            ]
        );
    }
}
