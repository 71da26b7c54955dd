//! PNG charts with plotters. Text is drawn with DejaVu Sans embedded in the binary (the `dejavu`
//! crate) through `ab_glyph`, so charts render the same on a machine without any system fonts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{ReportData, marks_of, write_error};
use crate::detect::Entity;
use crate::error::Result;
use crate::normalize::schema::DAY_MS;

/// Daily activity of one entity: `(utc_day, events, distinct_accounts)`.
#[derive(Debug, Clone)]
pub struct EntitySeries {
    pub entity: Entity,
    pub days: Vec<(i64, u64, u64)>,
}

/// How many of the top rows get a timeline chart.
pub const TIMELINES: usize = 5;
const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1200, 720);

fn register_font() -> std::result::Result<(), String> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "embedded font rejected".to_string())
    })
    .clone()
}

/// Writes the charts and returns their paths relative to the report directory.
pub fn write_all(dir: &Path, data: &ReportData) -> Result<Vec<(Entity, PathBuf)>> {
    register_font().map_err(|e| write_error(dir, e))?;
    let mut written = Vec::new();
    for (i, row) in data.shown().take(TIMELINES).enumerate() {
        let Some(series) = data.series.iter().find(|s| s.entity == row.entity) else {
            continue;
        };
        if series.days.is_empty() {
            continue;
        }
        let name = format!("timeline-{:02}-{}.png", i + 1, file_safe(&row.entity.id));
        let path = dir.join(&name);
        let title = format!(
            "#{} {} {} — daily activity",
            row.rank,
            row.entity.kind.name(),
            row.entity.id
        );
        timeline(&path, &title, series, &marks_of(row), data).map_err(|e| write_error(&path, e))?;
        written.push((row.entity.clone(), PathBuf::from("charts").join(name)));
    }
    Ok(written)
}

fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Two panels sharing the date axis: events per day above, distinct accounts per day below, with
/// the departure / revocation instants drawn as labelled vertical lines on both.
fn timeline(
    path: &Path,
    title: &str,
    s: &EntitySeries,
    marks: &[(String, i64)],
    data: &ReportData,
) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 26))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2 - 20);
    // The whole export's span, so "nothing before this date" is visible too.
    let (mut lo, mut hi) = match data.info.time_range {
        Some((a, b)) => (
            a.div_euclid(DAY_MS) as f64,
            b.div_euclid(DAY_MS) as f64 + 1.0,
        ),
        None => (
            s.days.first().map_or(0, |d| d.0) as f64,
            s.days.last().map_or(0, |d| d.0) as f64 + 1.0,
        ),
    };
    for (_, at) in marks {
        let d = *at as f64 / DAY_MS as f64;
        lo = lo.min(d - 1.0);
        hi = hi.max(d + 1.0);
    }
    let panels = [
        (top, "events per day", 1usize, BLUE),
        (bottom, "distinct accounts per day", 2usize, RED),
    ];
    for (area, label, which, color) in panels {
        let values: Vec<(f64, f64)> = s
            .days
            .iter()
            .map(|d| {
                (
                    d.0 as f64 + 0.5,
                    if which == 1 { d.1 as f64 } else { d.2 as f64 },
                )
            })
            .collect();
        let ymax = values.iter().map(|v| v.1).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc("date (UTC)")
            .y_desc(label)
            .x_label_formatter(&|x| data.time.format_date((*x * DAY_MS as f64) as i64))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .x_labels(8)
            .draw()?;
        chart
            .draw_series(LineSeries::new(values, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        for (i, (name, at)) in marks.iter().enumerate() {
            let x = *at as f64 / DAY_MS as f64;
            let mark_color = Palette99::pick(i + 3).to_rgba();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, ymax)],
                    mark_color.stroke_width(2),
                )))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], mark_color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
