//! Figures of the diagnostics (PNG, headless, embedded DejaVu font).

use crate::Tarp;
use plotters::prelude::*;
use std::path::Path;

type PResult = Result<(), Box<dyn std::error::Error>>;

/// Registers the embedded font once.
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Writes through a temporary file and renames, so a figure is complete or absent.
fn atomic_png(path: &Path, size: (u32, u32), draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> PResult) -> PResult {
    register_font();
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn grid(n: usize) -> (usize, usize) {
    let cols = (n as f64).sqrt().ceil() as usize;
    (n.div_ceil(cols), cols)
}

/// Posterior median against truth for each parameter, coloured by the density of points.
pub fn truth_vs_median(path: &Path, names: &[String], truth: &[Vec<f64>], median: &[Vec<f64>]) -> PResult {
    let (rows, cols) = grid(names.len());
    atomic_png(path, (380 * cols as u32, 360 * rows as u32), |root| {
        let areas = root.split_evenly((rows, cols));
        for (k, area) in areas.iter().enumerate().take(names.len()) {
            let (t, m) = (&truth[k], &median[k]);
            let lo = t.iter().chain(m).cloned().fold(f64::INFINITY, f64::min);
            let hi = t.iter().chain(m).cloned().fold(f64::NEG_INFINITY, f64::max);
            let pad = 0.02 * (hi - lo).max(1e-9);
            let (lo, hi) = (lo - pad, hi + pad);
            let mut chart = ChartBuilder::on(area)
                .caption(&names[k], ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(lo..hi, lo..hi)?;
            chart
                .configure_mesh()
                .x_desc("truth")
                .y_desc("posterior median")
                .label_style(("sans-serif", 12))
                .axis_desc_style(("sans-serif", 13))
                .light_line_style(WHITE)
                .draw()?;
            // 2-D histogram for the colours
            let nb = 60;
            let cell = |v: f64| (((v - lo) / (hi - lo) * nb as f64) as usize).min(nb - 1);
            let mut counts = vec![0u32; nb * nb];
            for (a, b) in t.iter().zip(m) {
                counts[cell(*a) * nb + cell(*b)] += 1;
            }
            let cmax = counts.iter().cloned().max().unwrap_or(1).max(1) as f64;
            chart.draw_series(t.iter().zip(m).map(|(a, b)| {
                let c = counts[cell(*a) * nb + cell(*b)] as f64;
                let x = ((c.ln_1p()) / cmax.ln_1p()).clamp(0.0, 1.0);
                let col = plotters::style::colors::colormaps::ViridisRGB::get_color(x);
                Circle::new((*a, *b), 2, col.filled())
            }))?;
            chart.draw_series(LineSeries::new(vec![(lo, lo), (hi, hi)], RED.stroke_width(1)))?;
        }
        Ok(())
    })
}

/// Expected coverage: fraction of truths inside the central α interval, against α.
pub fn coverage_curve(path: &Path, names: &[String], levels: &[f64], cov: &[Vec<f64>]) -> PResult {
    atomic_png(path, (720, 620), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("expected coverage", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("credibility level")
            .y_desc("fraction of truths inside")
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        chart.draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.stroke_width(1)))?;
        for (k, name) in names.iter().enumerate() {
            let c = Palette99::pick(k).to_rgba();
            chart
                .draw_series(LineSeries::new(levels.iter().cloned().zip(cov[k].iter().cloned()), c.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
        Ok(())
    })
}

/// SBC rank histograms (20 bins) with the ±2σ band of a uniform histogram.
pub fn sbc_histograms(path: &Path, names: &[String], ranks: &[Vec<usize>], n_draws: usize) -> PResult {
    let (rows, cols) = grid(names.len());
    atomic_png(path, (360 * cols as u32, 300 * rows as u32), |root| {
        for (k, area) in root.split_evenly((rows, cols)).iter().enumerate().take(names.len()) {
            let nb = 20;
            let mut h = vec![0usize; nb];
            for &r in &ranks[k] {
                h[(r * nb / (n_draws + 1)).min(nb - 1)] += 1;
            }
            let n = ranks[k].len() as f64;
            let expect = n / nb as f64;
            let sd = (expect * (1.0 - 1.0 / nb as f64)).sqrt();
            let ymax = (h.iter().cloned().max().unwrap_or(1) as f64).max(expect + 3.0 * sd) * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(&names[k], ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..1.0, 0.0..ymax)?;
            chart.configure_mesh().x_desc("rank / n").label_style(("sans-serif", 11)).axis_desc_style(("sans-serif", 12)).draw()?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, expect - 2.0 * sd), (1.0, expect + 2.0 * sd)],
                RGBColor(200, 200, 200).mix(0.6).filled(),
            )))?;
            chart.draw_series(h.iter().enumerate().map(|(i, &c)| {
                Rectangle::new([(i as f64 / nb as f64, 0.0), ((i + 1) as f64 / nb as f64, c as f64)], BLUE.mix(0.6).filled())
            }))?;
        }
        Ok(())
    })
}

/// TARP expected coverage probability against credibility level.
pub fn tarp_curve(path: &Path, t: &Tarp) -> PResult {
    atomic_png(path, (640, 600), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("TARP (max |ECP − α| = {:.3})", t.max_deviation), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("credibility level α")
            .y_desc("expected coverage")
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        chart.draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.stroke_width(1)))?;
        chart.draw_series(LineSeries::new(t.alpha.iter().cloned().zip(t.ecp.iter().cloned()), BLUE.stroke_width(3)))?;
        Ok(())
    })
}
