//! `maps.png` (posterior medians of a galaxy's key parameters, its S/N and posterior-predictive
//! check) and the demo's `truth_vs_maps.png` (true maps, recovered maps on the same colour
//! scale, and their difference).

use super::{
    Area, COLOUR_BAR_HEIGHT, ColourScale, DrawResult, PixelScale, centred_text, describe, draw_colour_bar, draw_raster, draw_scale_bar,
    write_png,
};
use crate::Result;
use crate::products::map::{GalaxyMaps, MapSummary};
use crate::products::synthetic::SyntheticGalaxy;
use plotters::prelude::*;
use std::path::Path;

/// The parameters the figures show, in this order, when the model infers them.
const KEY_PARAMETERS: [&str; 5] = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"];
/// Height of a figure's two header lines.
const HEADER: i32 = 46;
const GREY_TEXT: RGBColor = RGBColor(90, 90, 90);

/// One panel of `maps.png`: a map with its own colour scale and colour bar.
struct Panel<'a> {
    title: String,
    data: std::borrow::Cow<'a, [f32]>,
    label: String,
}

/// Writes `maps.png` of `m` (`ny` × `nx` pixels): for each key parameter the posterior median
/// with a colour bar (quantity, unit), the S/N of the selection and, when checked, the
/// posterior-predictive reduced χ²; a scale bar in arcsec and kpc when the WCS gives the pixel
/// scale; a header with the source, redshift, selection and draws.
pub fn maps_png(path: &Path, ny: usize, nx: usize, m: &GalaxyMaps) -> Result<()> {
    let mut panels: Vec<Panel> = KEY_PARAMETERS
        .iter()
        .filter_map(|w| {
            let j = m.params.iter().position(|n| n == w)?;
            let (title, label) = describe(w);
            Some(Panel { title: format!("{title}: posterior median"), data: m.percentiles[j][1].as_slice().into(), label })
        })
        .collect();
    let s = &m.summary;
    let snr_label = if s.snr_bands.is_empty() {
        "mean S/N of the selection bands".to_string()
    } else {
        format!("mean S/N in {}", s.snr_bands.join(", "))
    };
    panels.push(Panel { title: "signal-to-noise".into(), data: m.snr.as_slice().into(), label: snr_label });
    if s.ppc_median_chi2_reduced.is_some() {
        let log_chi2: Vec<f32> = m.chi2.iter().map(|c| if *c > 0.0 { c.log10() } else { f32::NAN }).collect();
        panels.push(Panel {
            title: "posterior-predictive check".into(),
            data: log_chi2.into(),
            label: "log10 reduced χ² of the median model".into(),
        });
    }
    let cols = if panels.len() > 6 { 4 } else { 3 };
    let rows = panels.len().div_ceil(cols);
    let cell_w = 300i32;
    let max_img = (cell_w - 30) as f64;
    let scale = (max_img / nx as f64).min(max_img / ny as f64);
    let img = ((nx as f64 * scale).round() as i32, (ny as f64 * scale).round() as i32);
    let cell_h = 26 + img.1 + 10 + COLOUR_BAR_HEIGHT + 8;
    let size = ((cell_w * cols as i32) as u32, (HEADER + cell_h * rows as i32) as u32);
    let pixel_scale = PixelScale::of_summary(s);
    write_png(path, size, |root| {
        header(root, size.0 as i32, &map_title(s), &map_subtitle(s, pixel_scale.is_some()))?;
        for (k, p) in panels.iter().enumerate() {
            let (cx, cy) = ((k % cols) as i32 * cell_w, HEADER + (k / cols) as i32 * cell_h);
            centred_text(root, &p.title, (cx + cell_w / 2, cy + 4), cell_w - 12, 15, &BLACK)?;
            let origin = (cx + (cell_w - img.0) / 2, cy + 26);
            let cs = ColourScale::robust(&[&p.data]);
            draw_raster(root, &p.data, (ny, nx), origin, scale, &cs)?;
            if let Some(ps) = &pixel_scale {
                draw_scale_bar(root, origin, img, scale, ps)?;
            }
            draw_colour_bar(root, (cx + 25, origin.1 + img.1 + 10), cell_w - 50, &cs, &p.label)?;
        }
        Ok(())
    })
}

/// Writes the demo's `truth_vs_maps.png`: one column per key parameter, rows the true map, the
/// posterior median on the same colour scale (one colour bar for both), and median − true on a
/// symmetric scale; scale bars in arcsec and kpc.
pub fn truth_vs_maps_png(path: &Path, g: &SyntheticGalaxy, m: &GalaxyMaps) -> Result<()> {
    let (ny, nx) = (g.images.ny, g.images.nx);
    let columns: Vec<(&str, Vec<f32>, &[f32])> = KEY_PARAMETERS
        .iter()
        .filter_map(|w| {
            let k = g.truth_names.iter().position(|n| n == w)?;
            let j = m.params.iter().position(|n| n == w)?;
            Some((*w, g.truth[k].iter().map(|v| *v as f32).collect(), m.percentiles[j][1].as_slice()))
        })
        .collect();
    let (label_w, cell_w) = (86i32, 250i32);
    let max_img = (cell_w - 30) as f64;
    let scale = (max_img / nx as f64).min(max_img / ny as f64);
    let img = ((nx as f64 * scale).round() as i32, (ny as f64 * scale).round() as i32);
    // header, column titles, then: true, median, colour bar, difference, colour bar
    let top = HEADER + 26;
    let rows_y = [top, top + img.1 + 8, top + 2 * img.1 + 8 + 12 + COLOUR_BAR_HEIGHT];
    let height = rows_y[2] + img.1 + 12 + COLOUR_BAR_HEIGHT + 6;
    let size = ((label_w + cell_w * columns.len().max(1) as i32) as u32, height as u32);
    let s = &m.summary;
    let pixel_scale = PixelScale::of_summary(s);
    write_png(path, size, |root| {
        let title = format!(
            "synthetic galaxy at z = {}: true maps and sbipix's posterior medians ({} pixels fitted)",
            short(s.redshift),
            s.n_pixels
        );
        let sub = format!(
            "grey: outside the galaxy or not fitted (S/N ≤ {}); the true and median maps of a quantity share one colour scale",
            s.snr_min.map(short).unwrap_or_else(|| "the cut".into())
        );
        header(root, size.0 as i32, &title, &sub)?;
        for (r, text) in [(0, "true"), (1, "posterior\nmedian"), (2, "median\n− true")] {
            row_label(root, text, rows_y[r] + img.1 / 2, label_w)?;
        }
        for (c, (name, truth, median)) in columns.iter().enumerate() {
            let cx = label_w + c as i32 * cell_w;
            let (title, label) = describe(name);
            centred_text(root, &title, (cx + cell_w / 2, HEADER + 4), cell_w - 12, 15, &BLACK)?;
            let x0 = cx + (cell_w - img.0) / 2;
            let cs = ColourScale::robust(&[truth, median]);
            let diff: Vec<f32> = truth.iter().zip(median.iter()).map(|(t, v)| v - t).collect();
            let ds = ColourScale::symmetric(&diff);
            for (r, data, cs) in [(0, &truth[..], &cs), (1, median, &cs), (2, &diff[..], &ds)] {
                draw_raster(root, data, (ny, nx), (x0, rows_y[r]), scale, cs)?;
                if let Some(ps) = &pixel_scale {
                    draw_scale_bar(root, (x0, rows_y[r]), img, scale, ps)?;
                }
            }
            let bar_w = cell_w - 50;
            draw_colour_bar(root, (cx + 25, rows_y[1] + img.1 + 8), bar_w, &cs, &label)?;
            let diff_label = difference_label(&label);
            draw_colour_bar(root, (cx + 25, rows_y[2] + img.1 + 8), bar_w, &ds, &diff_label)?;
        }
        Ok(())
    })
}

/// The figure's title and, in grey below it, what the colours mean.
fn header(root: &Area, width: i32, title: &str, sub: &str) -> DrawResult {
    centred_text(root, title, (width / 2, 6), width - 20, 17, &BLACK)?;
    centred_text(root, sub, (width / 2, 27), width - 20, 13, &GREY_TEXT)
}

/// A row label of up to two lines, centred vertically on `y` in the left margin.
fn row_label(root: &Area, text: &str, y: i32, width: i32) -> DrawResult {
    let lines: Vec<&str> = text.lines().collect();
    let y0 = y - 9 * lines.len() as i32;
    for (i, l) in lines.iter().enumerate() {
        centred_text(root, l, (width / 2, y0 + 18 * i as i32), width - 8, 15, &BLACK)?;
    }
    Ok(())
}

/// "cube.fits · z = 3 · 682 of 21450 pixels fitted (S/N > 5) · 500 draws per pixel".
fn map_title(s: &MapSummary) -> String {
    let source = Path::new(&s.source).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| s.source.clone());
    let mut t = format!("{source} · z = {} · {} of {} pixels fitted", short(s.redshift), s.n_pixels, s.n_pixels_total);
    if let Some(cut) = s.snr_min {
        t += &format!(" (S/N > {})", short(cut));
    }
    if let Some(n) = s.n_draws {
        t += &format!(" · {n} posterior draws per pixel");
    }
    if s.refinement.is_some() {
        t += " · refined by the likelihood";
    }
    t
}

fn map_subtitle(s: &MapSummary, has_scale: bool) -> String {
    let mut t = "grey: not fitted; colour scales from the 1st to the 99th percentile of each map".to_string();
    if !has_scale {
        t += "; pixel scale unknown (no WCS)";
    }
    if s.bands_missing.is_empty() { t } else { format!("{t}; missing bands: {}", s.bands_missing.join(" ")) }
}

/// "M* [log10 M☉]" → "ΔM* [dex]", "A_V [mag]" → "ΔA_V [mag]".
fn difference_label(label: &str) -> String {
    match label.split_once(" [") {
        Some((symbol, unit)) if unit.starts_with("log10") => format!("Δ{symbol} [dex]"),
        Some((symbol, unit)) => format!("Δ{symbol} [{unit}"),
        None => format!("Δ{label}"),
    }
}

/// A number with at most 4 decimals and no trailing zeros: 1.9861000000000004 → "1.9861", 3.0 → "3".
fn short(v: f64) -> String {
    let t = format!("{v:.4}");
    if t.contains('.') { t.trim_end_matches('0').trim_end_matches('.').to_string() } else { t }
}

#[cfg(test)]
mod tests {
    use super::{difference_label, short};

    #[test]
    fn header_numbers_and_difference_units() {
        assert_eq!(short(1.9861000000000004), "1.9861");
        assert_eq!((short(3.0), short(4.33), short(7.5)), ("3".into(), "4.33".into(), "7.5".into()));
        assert_eq!(difference_label("M* [log10 M☉]"), "ΔM* [dex]");
        assert_eq!(difference_label("A_V [mag]"), "ΔA_V [mag]");
    }
}
