//! PNG charts with plotters. Text is drawn with DejaVu Sans embedded in the binary (the `dejavu`
//! crate) through `ab_glyph`, so charts render the same on a machine without any system fonts.
//! Each chart has a title, labelled axes with units and dates, and a legend.

mod cumulative;
mod heatmap;
mod overview;
mod timeline;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::CoordTranslate;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{ReportData, write_error};
use crate::error::Result;

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1200, 720);

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A written chart: what it shows and where (relative to the report directory).
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub path: PathBuf,
}

fn register_font() -> std::result::Result<(), String> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "embedded font rejected".to_string())
    })
    .clone()
}

/// Writes every chart into `dir` (the report's `charts/`) and lists them in reading order.
pub fn write_all(dir: &Path, data: &ReportData) -> Result<Vec<Chart>> {
    register_font().map_err(|e| write_error(dir, e))?;
    let mut charts = Vec::new();
    let mut draw = |name: String, title: String, f: &dyn Fn(&Path) -> DrawResult| -> Result<()> {
        let path = dir.join(&name);
        f(&path).map_err(|e| write_error(&path, e))?;
        charts.push(Chart {
            title,
            path: PathBuf::from("charts").join(name),
        });
        Ok(())
    };
    draw("overview.png".into(), "Findings overview".into(), &|p| {
        overview::draw(p, data)
    })?;
    let cumulative_title = "Cumulative distinct accounts of the top entities".to_string();
    if data.charts.series.iter().any(|s| !s.cumulative.is_empty()) {
        draw("cumulative.png".into(), cumulative_title.clone(), &|p| {
            cumulative::draw(p, &cumulative_title, data)
        })?;
    }
    if let Some(h) = &data.charts.heatmap {
        let title = format!(
            "Hour × day activity of {} {}",
            h.entity.kind.name(),
            h.entity.id
        );
        draw("heatmap-top.png".into(), title.clone(), &|p| {
            heatmap::draw(p, &title, h)
        })?;
    }
    for (i, row) in data.leads().take(super::series::CHARTED).enumerate() {
        let Some(series) = data.charts.series.iter().find(|s| s.entity == row.entity) else {
            continue;
        };
        if series.days.is_empty() {
            continue;
        }
        let name = format!("timeline-{:02}-{}.png", i + 1, file_safe(&row.entity.id));
        let title = format!(
            "Incident {}: {} {} — daily activity",
            row.incident,
            row.entity.kind.name(),
            row.entity.id
        );
        draw(name, title.clone(), &|p| {
            timeline::draw(p, &title, series, row, data)
        })?;
    }
    Ok(charts)
}

/// A line of `width` px in `color` for a legend entry.
fn legend_line(color: RGBAColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
}

/// The legend box every line chart uses, upper left.
fn draw_legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}

/// Mesh of a chart whose x axis is local days (as f64, see [`TimeParser::local_ms`]) and whose y axis counts something.
fn date_mesh<'a, DB>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    data: &ReportData,
    y_desc: &str,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
{
    chart
        .configure_mesh()
        .x_desc(format!("date ({})", data.time.tz))
        .y_desc(y_desc)
        .x_label_formatter(&|x| data.time.format_day(x.floor() as i64))
        .y_label_formatter(&whole)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .x_labels(8)
        .draw()?;
    Ok(())
}

/// Axis label for counts: whole numbers only (fractional ticks of a small range stay blank).
fn whole(x: &f64) -> String {
    if x.fract().abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
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

/// Shortens long ids so legends stay readable.
fn short(id: &str) -> String {
    if id.chars().count() > 32 {
        format!("{}…", id.chars().take(31).collect::<String>())
    } else {
        id.to_string()
    }
}
