//! Figures of sbipix's products: the maps of a galaxy ([`maps`]: `maps.png` and the demo's
//! `truth_vs_maps.png`), the demo's model spectra ([`seds`]) and the survey's outshining diagram
//! ([`outshining`]). Every figure is written through a temporary file renamed into place
//! ([`write_png`]), so it is complete or absent.
//!
//! The pieces the map figures share live here: a raster panel (FITS row 0 at the bottom, NaN in
//! light grey), a colour bar with ticks and the quantity and its unit, and a scale bar in arcsec
//! and kpc.

pub mod maps;
pub mod outshining;
pub mod seds;

use crate::products::map::MapSummary;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The drawing area of a figure.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// What drawing code returns: plotters' errors are not `Send`, so [`write_png`] turns them into
/// the facade's error, naming the figure.
pub type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

pub(crate) const FONT: &str = "sans-serif";
/// Pixels that were not fitted (or lie outside a synthetic galaxy).
pub(crate) const NOT_FITTED: RGBColor = RGBColor(225, 225, 225);
/// Height of a colour bar with its tick labels and its label ([`draw_colour_bar`]).
pub(crate) const COLOUR_BAR_HEIGHT: i32 = 50;

/// Draws a `size` (width, height) PNG with `draw` on a white background and writes it to `path`
/// through a temporary file in the same folder, renamed into place once complete.
pub fn write_png(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> Result<()> {
    sbipix_diagnostics::plots::register_font();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    // the encoder picks the format from the extension
    builder.prefix(".sbipix-tmp-").suffix(".png");
    // as for sbipix_io::write_atomic: readable by others unless the umask says otherwise
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(&dir).map_err(|e| Error::write(path, e))?;
    let drawn = (|| -> DrawResult {
        let root = BitMapBackend::new(tmp.path(), size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| Error::write(path, e.to_string()))?;
    tmp.persist(path).map_err(|e| Error::write(path, e.error))?;
    Ok(())
}

/// Colour maps: viridis for quantities, blue–white–red for differences around zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colours {
    Viridis,
    Diverging,
}

impl Colours {
    /// The colour at `t` ∈ [0, 1].
    pub fn at(self, t: f64) -> RGBColor {
        let t = t.clamp(0.0, 1.0);
        match self {
            Colours::Viridis => plotters::style::colors::colormaps::ViridisRGB::get_color(t),
            Colours::Diverging => {
                // ColorBrewer RdBu (5 classes), blue for negative
                const STOPS: [(f64, f64, f64); 5] =
                    [(5.0, 113.0, 176.0), (146.0, 197.0, 222.0), (247.0, 247.0, 247.0), (244.0, 165.0, 130.0), (202.0, 0.0, 32.0)];
                let x = t * 4.0;
                let i = (x.floor() as usize).min(3);
                let f = x - i as f64;
                let (a, b) = (STOPS[i], STOPS[i + 1]);
                let mix = |p: f64, q: f64| (p + f * (q - p)).round() as u8;
                RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
            }
        }
    }
}

/// A linear colour scale from `lo` to `hi` (values outside take the end colours).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourScale {
    pub lo: f64,
    pub hi: f64,
    pub colours: Colours,
}

impl ColourScale {
    /// From the 1st to the 99th percentile of the finite values of all `layers` together: one
    /// scale for panels that are compared. (0, 1) when there is no finite value.
    pub fn robust(layers: &[&[f32]]) -> Self {
        let mut v: Vec<f64> = layers.iter().flat_map(|l| l.iter()).filter(|x| x.is_finite()).map(|x| *x as f64).collect();
        if v.is_empty() {
            return Self { lo: 0.0, hi: 1.0, colours: Colours::Viridis };
        }
        v.sort_by(f64::total_cmp);
        let (lo, hi) = (sbipix_stats::quantile_sorted(&v, 0.01), sbipix_stats::quantile_sorted(&v, 0.99));
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
        Self { lo, hi, colours: Colours::Viridis }
    }

    /// Symmetric about zero, to the 98th percentile of |value|: for differences.
    pub fn symmetric(layer: &[f32]) -> Self {
        let mut v: Vec<f64> = layer.iter().filter(|x| x.is_finite()).map(|x| x.abs() as f64).collect();
        v.sort_by(f64::total_cmp);
        let m = if v.is_empty() { 1.0 } else { sbipix_stats::quantile_sorted(&v, 0.98) };
        let m = if m > 0.0 { m } else { 1.0 };
        Self { lo: -m, hi: m, colours: Colours::Diverging }
    }

    fn colour(&self, v: f32) -> RGBColor {
        if v.is_finite() { self.colours.at((v as f64 - self.lo) / (self.hi - self.lo)) } else { NOT_FITTED }
    }
}

/// The physical size of a map's pixels: arcsec from the WCS, kpc per arcsec at the redshift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelScale {
    pub arcsec_per_pixel: f64,
    pub kpc_per_arcsec: Option<f64>,
}

impl PixelScale {
    /// From a map summary (the pixel scale and the pixel area in kpc² it records); None without
    /// a WCS.
    pub fn of_summary(s: &MapSummary) -> Option<Self> {
        let arcsec = s.pixel_scale_arcsec.filter(|a| a.is_finite() && *a > 0.0)?;
        let kpc = s.pixel_area_kpc2.filter(|a| a.is_finite() && *a > 0.0).map(|a| a.sqrt() / arcsec);
        Some(Self { arcsec_per_pixel: arcsec, kpc_per_arcsec: kpc })
    }
}

/// Title and colour-bar label (quantity and unit, the unit from [`sbipix_sim::theta::unit_of`])
/// of a parameter: `("stellar mass", "M* [log10 M☉]")`.
pub fn describe(name: &str) -> (String, String) {
    let (title, symbol) = match name {
        "log_mstar" => ("stellar mass", "M*"),
        "log_mass_formed" => ("mass formed", "M formed"),
        "log_sfr_100myr" => ("SFR over 100 Myr", "SFR₁₀₀"),
        "log_sfr_10myr" => ("SFR over 10 Myr", "SFR₁₀"),
        "log_sfr_inst" => ("instantaneous SFR", "SFR"),
        "mass_weighted_age_gyr" => ("mass-weighted age", "age"),
        "logzsol" => ("metallicity", "Z"),
        "av_mag" => ("dust attenuation", "A_V"),
        "logu" => ("ionisation parameter", "U"),
        "log_tau_gyr" => ("SFH timescale", "τ"),
        "onset_fraction" => ("onset of star formation", "t_onset"),
        "log_age_fraction" => ("time since the onset", "t_age/t_univ"),
        "eta" => ("extra dust of young stars", "η"),
        other => (other, other),
    };
    let unit = sbipix_sim::theta::unit_of(name).replace("Msun", "M☉").replace("Zsun", "Z☉");
    let label = if unit.is_empty() { symbol.to_string() } else { format!("{symbol} [{unit}]") };
    (title.to_string(), label)
}

/// The largest font size ≤ `size` (and ≥ 9) at which `text` is at most `width` pixels wide.
pub(crate) fn fitted_font(area: &Area, text: &str, width: i32, size: u32) -> u32 {
    let mut s = size;
    while s > 9 {
        match area.estimate_text_size(text, &(FONT, s).into_text_style(area)) {
            Ok((w, _)) if w as i32 > width => s -= 1,
            _ => break,
        }
    }
    s
}

/// Draws `text` centred on `x` with its top at `y`, shrunk to fit `width`.
pub(crate) fn centred_text(area: &Area, text: &str, (x, y): (i32, i32), width: i32, size: u32, colour: &RGBColor) -> DrawResult {
    let s = fitted_font(area, text, width, size);
    let style = (FONT, s).into_text_style(area).color(colour).pos(Pos::new(HPos::Center, VPos::Top));
    area.draw_text(text, &style, (x, y))?;
    Ok(())
}

/// Draws `data` ([y][x], FITS row 0 at the bottom) with its top-left corner at `origin`, `scale`
/// screen pixels per map pixel, framed. Every screen pixel samples its map pixel, so a map larger
/// than the panel costs no more than the panel.
pub(crate) fn draw_raster(
    area: &Area,
    data: &[f32],
    (ny, nx): (usize, usize),
    origin: (i32, i32),
    scale: f64,
    cs: &ColourScale,
) -> DrawResult {
    let (w, h) = ((nx as f64 * scale).round() as i32, (ny as f64 * scale).round() as i32);
    for j in 0..h {
        let y = ny - 1 - ((j as f64 / scale) as usize).min(ny - 1);
        for i in 0..w {
            let x = ((i as f64 / scale) as usize).min(nx - 1);
            area.draw_pixel((origin.0 + i, origin.1 + j), &cs.colour(data[y * nx + x]))?;
        }
    }
    area.draw(&Rectangle::new([(origin.0 - 1, origin.1 - 1), (origin.0 + w, origin.1 + h)], BLACK.mix(0.5)))?;
    Ok(())
}

/// Ticks for [lo, hi]: as many round values as fit in `max_n` (the smallest step of 1, 2, 2.5 or
/// 5 × 10^k that gives at most `max_n`), and the number of decimals that shows them.
pub(crate) fn nice_ticks(lo: f64, hi: f64, max_n: usize) -> (Vec<f64>, usize) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (vec![lo], 2);
    }
    let max_n = max_n.max(2);
    let mag = 10f64.powf((span / max_n as f64).log10().floor());
    let count = |step: f64| (hi / step + 1e-9).floor() - (lo / step - 1e-9).ceil() + 1.0;
    let step =
        [1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0].iter().map(|m| m * mag).find(|s| count(*s) <= max_n as f64).unwrap_or(100.0 * mag);
    let mut decimals = (-step.log10().floor()).max(0.0) as usize;
    if (step * 10f64.powi(decimals as i32) - 2.5).abs() < 1e-9 {
        decimals += 1;
    }
    let first = (lo / step - 1e-9).ceil();
    let ticks = (0..=max_n)
        .map(|k| (first + k as f64) * step)
        .filter(|v| *v <= hi + step * 1e-9)
        .map(|v| {
            let p = 10f64.powi(decimals as i32);
            (v * p).round() / p + 0.0 // + 0.0: no "−0"
        })
        .collect();
    (ticks, decimals)
}

/// A number with a typographic minus sign, and no sign on a value that rounds to zero.
pub(crate) fn signed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s.replace('-', "−")
    }
}

/// A horizontal colour bar `width` wide with its top-left corner at `origin`: the gradient, round
/// ticks with their values, and `label` (quantity and unit) centred below;
/// [`COLOUR_BAR_HEIGHT`] tall in all.
pub(crate) fn draw_colour_bar(area: &Area, origin: (i32, i32), width: i32, cs: &ColourScale, label: &str) -> DrawResult {
    const BAR: i32 = 10;
    let (x0, y0) = origin;
    for i in 0..width {
        let c = cs.colours.at(i as f64 / (width - 1).max(1) as f64);
        area.draw(&PathElement::new(vec![(x0 + i, y0), (x0 + i, y0 + BAR - 1)], c))?;
    }
    area.draw(&Rectangle::new([(x0 - 1, y0 - 1), (x0 + width, y0 + BAR)], BLACK.mix(0.5)))?;
    let (ticks, decimals) = nice_ticks(cs.lo, cs.hi, (width / 50).clamp(2, 6) as usize);
    let style = (FONT, 12).into_text_style(area).pos(Pos::new(HPos::Center, VPos::Top));
    for v in ticks {
        let x = x0 + ((v - cs.lo) / (cs.hi - cs.lo) * (width - 1) as f64).round() as i32;
        area.draw(&PathElement::new(vec![(x, y0 + BAR), (x, y0 + BAR + 3)], BLACK))?;
        area.draw_text(&signed(v, decimals), &style, (x, y0 + BAR + 4))?;
    }
    centred_text(area, label, (x0 + width / 2, y0 + BAR + 20), width + 30, 13, &BLACK)
}

/// A scale bar in the lower left corner of the image at `origin` (`size` in screen pixels,
/// `scale` screen pixels per map pixel): a round number of arcsec about a quarter of the image
/// wide, labelled with its length in kpc when known, on a pale box so that it reads on any map.
pub(crate) fn draw_scale_bar(area: &Area, origin: (i32, i32), size: (i32, i32), scale: f64, ps: &PixelScale) -> DrawResult {
    const NICE_ARCSEC: [f64; 16] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
    let width_arcsec = size.0 as f64 / scale * ps.arcsec_per_pixel;
    let arcsec = NICE_ARCSEC.iter().rev().find(|a| **a <= 0.3 * width_arcsec).copied().unwrap_or(NICE_ARCSEC[0]);
    let len = (arcsec / ps.arcsec_per_pixel * scale).round() as i32;
    let mut label = format!("{}″", arcsec);
    if let Some(k) = ps.kpc_per_arcsec {
        let kpc = arcsec * k;
        let d = if kpc >= 10.0 {
            0
        } else if kpc >= 1.0 {
            1
        } else {
            2
        };
        label += &format!(" = {kpc:.d$} kpc");
    }
    let style = (FONT, 12).into_text_style(area);
    let (tw, th) = area.estimate_text_size(&label, &style)?;
    let (bw, bh) = (len.max(tw as i32) + 8, th as i32 + 14);
    let (bx, by) = (origin.0 + 4, origin.1 + size.1 - 4 - bh);
    area.draw(&Rectangle::new([(bx, by), (bx + bw, by + bh)], WHITE.mix(0.8).filled()))?;
    area.draw_text(&label, &style.color(&BLACK), (bx + 4, by + 2))?;
    let y = by + bh - 6;
    area.draw(&Rectangle::new([(bx + 4, y), (bx + 4 + len, y + 2)], BLACK.filled()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        let (t, d) = nice_ticks(-0.83, 0.21, 5);
        assert_eq!(t, vec![-0.75, -0.5, -0.25, 0.0]);
        assert_eq!(d, 2);
        let (t, d) = nice_ticks(5.52, 6.78, 6);
        assert_eq!(t, vec![5.6, 5.8, 6.0, 6.2, 6.4, 6.6]);
        assert_eq!(d, 1);
        let (t, d) = nice_ticks(-6.83, -1.72, 5);
        assert_eq!(t, vec![-6.0, -5.0, -4.0, -3.0, -2.0]);
        assert_eq!(d, 0);
        assert_eq!(signed(-0.5, 1), "−0.5");
        assert_eq!(signed(-1e-17, 1), "0.0");
    }

    #[test]
    fn shared_scale_covers_both_layers() {
        let a: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let b: Vec<f32> = (0..100).map(|i| 1.0 + i as f32 / 100.0).chain([f32::NAN]).collect();
        let s = ColourScale::robust(&[&a, &b]);
        assert!(s.lo < 0.05 && s.hi > 1.9, "{s:?}");
        let d = ColourScale::symmetric(&[-0.2, 0.1, f32::NAN]);
        assert!((d.lo + d.hi).abs() < 1e-12 && d.hi > 0.1);
    }

    #[test]
    fn labels_carry_units() {
        assert_eq!(describe("log_mstar").1, "M* [log10 M☉]");
        assert_eq!(describe("av_mag"), ("dust attenuation".to_string(), "A_V [mag]".to_string()));
        assert_eq!(describe("new_param").1, "new_param");
    }
}
