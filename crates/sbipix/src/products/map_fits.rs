//! `maps.fits`, `maps.png` and `summary.json` of a mapped galaxy.

use super::map::GalaxyMaps;
use crate::{Error, Result};
use sbipix_io::ImageSet;
use sbipix_io::arrays::{CardValue, OutImage, write_image_fits};
use std::path::Path;

/// One output layer: HDU name, image `[y][x]`, BUNIT, comment.
pub struct MapLayer {
    pub name: String,
    pub data: Vec<f32>,
    pub bunit: String,
    pub comment: String,
}

/// The output layers in `maps.fits` order (the same names in the Python API): `<PARAM>_P16/_P50/_P84`,
/// surface densities when the pixel scale is known, `SNR`, `MASK`, `PPC_CHI2` when checked.
pub fn map_layers(m: &GalaxyMaps) -> Vec<MapLayer> {
    let unit_of = |n: &str| sbipix_sim::theta::unit_of(n).to_string();
    let layer = |name: String, data: Vec<f32>, bunit: String, comment: &str| MapLayer { name, data, bunit, comment: comment.to_string() };
    let mut out = Vec::new();
    for (j, name) in m.params.iter().enumerate() {
        for (q, tag) in ["P16", "P50", "P84"].iter().enumerate() {
            out.push(layer(format!("{}_{tag}", name.to_uppercase()), m.percentiles[j][q].clone(), unit_of(name), ""));
        }
    }
    if let Some(area) = m.summary.pixel_area_kpc2 {
        for (name, label, unit) in
            [("log_mstar", "LOG_SIGMA_MSTAR", "log10 Msun/kpc2"), ("log_sfr_100myr", "LOG_SIGMA_SFR_100MYR", "log10 Msun/yr/kpc2")]
        {
            if let Some(j) = m.params.iter().position(|n| n == name) {
                for (q, tag) in ["P16", "P50", "P84"].iter().enumerate() {
                    out.push(layer(
                        format!("{label}_{tag}"),
                        m.percentiles[j][q].iter().map(|v| v - area.log10() as f32).collect(),
                        unit.to_string(),
                        "",
                    ));
                }
            }
        }
    }
    out.push(layer("SNR".into(), m.snr.clone(), String::new(), "mean f/sigma over the selection bands"));
    out.push(layer("MASK".into(), m.mask.clone(), String::new(), "1 = fitted"));
    if let Some(r) = &m.refined {
        out.push(layer("REFINED".into(), r.clone(), String::new(), "1 = likelihood-refined posterior, 0 = network's"));
    }
    if m.summary.ppc_median_chi2_reduced.is_some() {
        out.push(layer("PPC_CHI2".into(), m.chi2.clone(), String::new(), "reduced chi2 of the posterior-predictive median"));
    }
    out
}

/// Writes `maps.fits` (the [`map_layers`], all with the input WCS), `maps.png` and
/// `summary.json` into `out`.
pub fn write_maps(out: &Path, img: &ImageSet, m: &GalaxyMaps) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
    let layers = map_layers(m);
    let images: Vec<OutImage> = layers
        .iter()
        .map(|l| OutImage { name: l.name.clone(), data: &l.data, bunit: l.bunit.clone(), comment: l.comment.clone() })
        .collect();
    let primary = vec![
        ("REDSHIFT".to_string(), CardValue::Num(m.summary.redshift)),
        ("NPIXFIT".to_string(), CardValue::Num(m.summary.n_pixels as f64)),
        ("ORIGIN".to_string(), CardValue::Text(format!("sbipix {}", env!("CARGO_PKG_VERSION")))),
    ];
    write_image_fits(&out.join("maps.fits"), img.ny, img.nx, &images, &img.wcs, &primary)?;
    crate::products::plots::panel(&out.join("maps.png"), img.ny, img.nx, m)
        .map_err(|e| Error::write(out.join("maps.png"), e.to_string()))?; // plotters' errors are not Send
    sbipix_io::write_atomic(&out.join("summary.json"), |w| Ok(w.write_all(serde_json::to_string_pretty(&m.summary)?.as_bytes())?))?;
    Ok(())
}
