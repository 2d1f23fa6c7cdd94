//! The demo's `seds.png`: model spectra of example galaxies and their photometry in the model's
//! bands.

use super::{FONT, write_png};
use crate::Result;
use plotters::prelude::*;
use plotters::style::full_palette::{GREEN_800, ORANGE_800, PURPLE};
use sbipix_sps::SpsModel;
use std::path::Path;

/// One galaxy of the figure: its spectrum and its photometry through the model's bands.
pub struct SedCurve {
    pub label: String,
    pub redshift: f64,
    /// Rest-frame wavelengths (Å) of the spectrum.
    pub rest_wavelength_aa: Vec<f64>,
    /// f_ν (µJy) at λ_obs = λ_rest (1+z).
    pub fnu_ujy: Vec<f64>,
    /// Flux (µJy) in each of the model's bands, in the model's order.
    pub photometry_ujy: Vec<f64>,
}

/// Writes the spectra and photometry (dots at the bands' pivot wavelengths) of `curves`, f_ν in
/// µJy against the observed wavelength in µm, both logarithmic.
pub fn seds_png(path: &Path, model: &SpsModel, curves: &[SedCurve]) -> Result<()> {
    write_png(path, (1100, 700), |root| {
        let (xmin, xmax) = (0.3f64, 5.5f64);
        let mut chart = ChartBuilder::on(root)
            .caption("sbipix demo: model spectra and 19-band JADES photometry", (FONT, 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((xmin..xmax).log_scale(), (1e-4f64..1e3f64).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("observed wavelength (µm)")
            .y_desc("f_ν (µJy)")
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .draw()?;
        let colours = [BLUE, GREEN_800, RED, ORANGE_800, PURPLE];
        let pivots: Vec<f64> = model.filters().map(|f| f.pivot_wavelength_aa() / 1e4).collect();
        for (k, c) in curves.iter().enumerate() {
            let colour = colours[k % colours.len()];
            let pts = c.rest_wavelength_aa.iter().zip(&c.fnu_ujy).filter_map(|(w, f)| {
                let x = w * (1.0 + c.redshift) / 1e4;
                (x > xmin && x < xmax && *f > 1e-4).then_some((x, f.min(1e3)))
            });
            chart
                .draw_series(LineSeries::new(pts, colour.mix(0.6).stroke_width(1)))?
                .label(format!("{} (z = {})", c.label, c.redshift))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3)));
            chart.draw_series(
                pivots.iter().zip(&c.photometry_ujy).filter(|(_, f)| **f > 1e-4).map(|(x, f)| Circle::new((*x, *f), 5, colour.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 16))
            .draw()?;
        Ok(())
    })
}
