//! The survey's `outshining.png`: Δ log M* (resolved − integrated) against the resolved log M*.

use super::{DrawResult, FONT, signed, write_png};
use crate::Result;
use crate::products::population::running_median;
use plotters::prelude::*;
use std::path::Path;

/// Writes `outshining.png` for `pts` = (resolved log M*, resolved − integrated log M*) per galaxy,
/// with the running median; galaxies beyond the vertical axis (|Δ| > 3 dex, or the largest |Δ|)
/// are drawn as triangles at its edge.
pub fn outshining_png(path: &Path, pts: &[(f64, f64)]) -> Result<()> {
    write_png(path, (760, 540), |root| draw(root, pts))
}

fn draw(root: &super::Area, pts: &[(f64, f64)]) -> DrawResult {
    let (mut x0, mut x1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    if !x0.is_finite() {
        (x0, x1) = (6.0, 11.0);
    }
    let ymax = pts.iter().map(|p| p.1.abs()).fold(0.5f64, f64::max).min(3.0);
    let (xr, yr) = ((x0 - 0.2)..(x1 + 0.2), (-ymax - 0.1)..(ymax + 0.1));
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Outshining: resolved − integrated stellar mass ({} galaxies)", pts.len()), (FONT, 19))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(62)
        .build_cartesian_2d(xr.clone(), yr)?;
    chart
        .configure_mesh()
        .x_desc("resolved M*: sum over the fitted pixels [log10 M☉]")
        .y_desc("ΔM* = resolved − integrated [dex]")
        .x_label_formatter(&|v| signed(*v, 1))
        .y_label_formatter(&|v| signed(*v, 1))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(vec![(xr.start, 0.0), (xr.end, 0.0)], BLACK.mix(0.5))))?;
    let inside = pts.iter().filter(|p| p.1.abs() <= ymax);
    chart
        .draw_series(inside.map(|p| Circle::new(*p, 3, BLUE.mix(0.5).filled())))?
        .label("galaxy")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, BLUE.mix(0.5).filled()));
    let beyond: Vec<(f64, f64)> = pts.iter().filter(|p| p.1.abs() > ymax).map(|p| (p.0, p.1.clamp(-ymax, ymax))).collect();
    if !beyond.is_empty() {
        chart
            .draw_series(beyond.iter().map(|p| TriangleMarker::new(*p, 5, BLUE.filled())))?
            .label(format!("beyond ±{ymax:.0} dex (at the edge)"))
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, BLUE.filled()));
    }
    let med = running_median(pts, 8);
    if med.len() >= 2 {
        chart
            .draw_series(LineSeries::new(med.iter().cloned(), RED.stroke_width(3)))?
            .label("running median")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
