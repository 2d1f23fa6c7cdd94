//! The PNG panel of a galaxy's maps.

use crate::products::map::GalaxyMaps;
use plotters::prelude::*;
use std::path::Path;

/// Median maps of the key parameters, the S/N and (when checked) the posterior-predictive
/// reduced χ²; viridis, NaN in light grey.
pub fn panel(path: &Path, ny: usize, nx: usize, m: &GalaxyMaps) -> Result<(), Box<dyn std::error::Error>> {
    sbipix_diagnostics::plots::register_font();
    let wanted = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"];
    let mut panels: Vec<(String, &[f32])> = wanted
        .iter()
        .filter_map(|w| m.params.iter().position(|n| n == w).map(|j| (format!("{w} (median)"), m.percentiles[j][1].as_slice())))
        .collect();
    panels.push(("S/N".into(), m.snr.as_slice()));
    if m.summary.ppc_median_chi2_reduced.is_some() {
        panels.push(("PPC reduced χ²".into(), m.chi2.as_slice()));
    }
    let cols = 3;
    let rows = panels.len().div_ceil(cols);
    let cell = 300u32;
    let scale = (cell as f64 - 40.0) / nx.max(ny) as f64;
    let cell_h = (ny as f64 * scale) as u32 + 40;
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (cell * cols as u32, cell_h * rows as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        for (k, area) in root.split_evenly((rows, cols)).iter().enumerate().take(panels.len()) {
            let (title, data) = &panels[k];
            let finite: Vec<f32> = data.iter().cloned().filter(|v| v.is_finite()).collect();
            let mut s = finite.clone();
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (lo, hi) = if s.is_empty() { (0.0, 1.0) } else { (s[s.len() / 100], s[s.len() - 1 - s.len() / 100]) };
            let hi = if hi > lo { hi } else { lo + 1.0 };
            area.draw_text(&format!("{title}: {lo:.2} … {hi:.2}"), &("sans-serif", 14).into_text_style(area), (8, 4))?;
            for y in 0..ny {
                for x in 0..nx {
                    let v = data[y * nx + x];
                    let col = if v.is_finite() {
                        let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0) as f64;
                        plotters::style::colors::colormaps::ViridisRGB::get_color(t)
                    } else {
                        RGBColor(225, 225, 225)
                    };
                    // FITS convention: row 0 at the bottom
                    let (px, py) = (20 + (x as f64 * scale) as i32, 24 + ((ny - 1 - y) as f64 * scale) as i32);
                    area.draw(&Rectangle::new([(px, py), (px + scale.ceil() as i32, py + scale.ceil() as i32)], col.filled()))?;
                }
            }
        }
        root.present()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
