//! `maps.fits`, `maps.png` and `summary.json` of a mapped galaxy.

use super::map::GalaxyMaps;
use crate::{Error, Result};
use sbipix_io::ImageSet;
use sbipix_io::arrays::{OutImage, write_image_fits};
use std::path::Path;

/// One output layer: HDU name, image `[y][x]`, BUNIT, comment.
pub struct MapLayer {
    pub name: String,
    pub data: Vec<f32>,
    pub bunit: String,
    pub comment: String,
}

/// The output layers in `maps.fits` order (the same names in the Python API): `<PARAM>_P16/_P50/_P84`,
/// surface densities when the pixel scale is known, `SNR`, `MASK`, `PPC_CHI2` when checked, `OOD`
/// when the model has its survey.
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
    if let Some(o) = &m.ood {
        out.push(layer("OOD".into(), o.clone(), String::new(), "outside the training: 1 noise, 2 bands, 4 colours (bits)"));
    }
    out
}

/// Writes `maps.fits` (the [`map_layers`], all with the input WCS, and in the primary header how
/// the maps were made: [`provenance_keywords`]), `maps.png` and `summary.json` into `out`, as one
/// set: all three are written into a temporary folder inside `out` and renamed into place only
/// when all are complete (`summary.json` last). An error leaves `out` as it was; a crash leaves
/// no half-written file (at worst, during the three renames, some new files beside old ones).
/// Other files in `out` are left alone.
pub fn write_maps(out: &Path, img: &ImageSet, m: &GalaxyMaps) -> Result<()> {
    sbipix_io::write_files_atomic(out, &["maps.fits", "maps.png", "summary.json"], |d| -> Result<()> {
        let layers = map_layers(m);
        let images: Vec<OutImage> = layers
            .iter()
            .map(|l| OutImage { name: l.name.clone(), data: &l.data, bunit: l.bunit.clone(), comment: l.comment.clone() })
            .collect();
        let fits = d.join("maps.fits");
        write_image_fits(&fits, img.ny, img.nx, &images, &img.wcs, &[])?;
        write_primary_keywords(&fits, &provenance_keywords(m))?;
        crate::products::plots::maps::maps_png(&d.join("maps.png"), img.ny, img.nx, m)?;
        let json = serde_json::to_string_pretty(&m.summary).map_err(|e| Error::write(d.join("summary.json"), e))?;
        crate::error::write_file(&d.join("summary.json"), json)
    })
}

/// A primary-header keyword of `maps.fits`: name (≤ 8 characters), value, comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyword {
    pub name: &'static str,
    pub value: KeywordValue,
    pub comment: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeywordValue {
    Int(i64),
    Real(f64),
    Text(String),
}

/// What the primary header of `maps.fits` records about the run: redshift, pixels fitted, sbipix
/// version, seed, draws, S/N cut and bands, segmentation id, the model ("default" or its path, and
/// its weights' SHA-256), the integrated error floor and the refinement settings.
pub fn provenance_keywords(m: &GalaxyMaps) -> Vec<Keyword> {
    use KeywordValue::{Int, Real, Text};
    let s = &m.summary;
    let k = |name, value, comment| Keyword { name, value, comment };
    let mut out = vec![
        k(
            "REDSHIFT",
            Real(s.redshift),
            if s.photo_z.is_some() { "photometric redshift: median of p(z)" } else { "redshift the maps were fitted at" },
        ),
        k("NPIXFIT", Int(s.n_pixels as i64), "pixels fitted (MASK = 1)"),
        k("ORIGIN", Text(format!("sbipix {}", env!("CARGO_PKG_VERSION"))), "software that made this file"),
        k("SBIPIXV", Text(s.sbipix_version.clone().unwrap_or_default()), "sbipix version"),
    ];
    if let Some(pz) = &s.photo_z {
        let p = &pz.posterior;
        out.push(k("ZPHOT", Int(1), "1 = redshift photometric, maps marginalised over p(z)"));
        out.push(k("ZPHOT16", Real(p.percentiles[0]), "p(z): 16th percentile"));
        out.push(k("ZPHOT84", Real(p.percentiles[2]), "p(z): 84th percentile"));
        out.push(k("ZMODE", Real(p.z_mode), "p(z): mode"));
        out.push(k("ZODDS", Real(p.odds), "p(z): probability within 0.1(1+z) of the mode"));
        if let Some((z2, q2)) = p.second {
            out.push(k("ZSECOND", Real(z2), "p(z): second peak"));
            out.push(k("ZSECPROB", Real(q2), "p(z): probability of the second peak"));
        }
        out.push(k("ZFLAGS", Text(fits_text(&p.flag_string())), "p(z) flags (docs/photo-z.md)"));
        out.push(k(
            "ZDRAWS",
            Text(fits_text(&pz.z_draws.iter().map(|z| format!("{z:.4}")).collect::<Vec<_>>().join(" "))),
            "redshifts of the draws",
        ));
    }
    if let Some(seed) = s.seed {
        // FITS integers are signed 64-bit: larger seeds as text
        out.push(k("SEED", i64::try_from(seed).map(Int).unwrap_or(Text(seed.to_string())), "seed of the posterior draws"));
    }
    if let Some(n) = s.n_draws {
        out.push(k("NDRAWS", Int(n as i64), "posterior draws per pixel"));
    }
    if let Some(cut) = s.snr_min {
        out.push(k("SNRMIN", Real(cut), "fitted: mean f/sigma over SNRBANDS above this"));
    }
    if !s.snr_bands.is_empty() {
        out.push(k("SNRBANDS", Text(fits_text(&s.snr_bands.join(" "))), "bands of the S/N selection"));
    }
    if let Some(id) = s.segmentation_id {
        out.push(k("SEGID", Real(id), "segmentation id of the fitted pixels"));
    }
    let model = if s.model_is_default == Some(true) { "default".to_string() } else { fits_text(&s.model) };
    out.push(k("MODEL", Text(model), "posterior model: 'default' or its folder"));
    if let Some(sha) = &s.model_weights_sha256 {
        out.push(k("MODELSHA", Text(sha.chars().take(16).collect()), "sha256 of weights.safetensors, 16 hex digits"));
    }
    if let Some(f) = s.integrated_error_floor {
        out.push(k("INTFLOOR", Real(f), "fractional error floor of the integrated fit"));
    }
    out.push(k("REFINE", Int(s.refinement.is_some() as i64), "1 = posteriors refined by the likelihood"));
    if let Some(r) = &s.refinement {
        out.push(k("RSTARTS", Int(r.settings.starts as i64), "refinement: mode searches per pixel"));
        out.push(k("RPROPOSE", Int(r.settings.proposals as i64), "refinement: importance draws per round"));
        out.push(k("SYSERR", Real(r.settings.sys_frac), "refinement: systematic error, fraction of flux"));
    }
    out
}

/// ASCII (FITS headers allow nothing else) and at most 68 characters, the longest string value a
/// card holds: a longer text keeps its end, after "...".
fn fits_text(t: &str) -> String {
    let ascii: String = t.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect();
    if ascii.len() <= 68 { ascii } else { format!("...{}", &ascii[ascii.len() - 65..]) }
}

/// Appends `keywords` to the primary header of the FITS file at `path`.
fn write_primary_keywords(path: &Path, keywords: &[Keyword]) -> Result<()> {
    let fe = |e: fitsio::errors::Error| Error::write(path, e);
    let mut f = fitsio::FitsFile::edit(path).map_err(fe)?;
    let h = f.primary_hdu().map_err(fe)?;
    for kw in keywords {
        match &kw.value {
            KeywordValue::Int(v) => h.write_key(&mut f, kw.name, (*v, kw.comment)),
            KeywordValue::Real(v) => h.write_key(&mut f, kw.name, (*v, kw.comment)),
            KeywordValue::Text(v) => h.write_key(&mut f, kw.name, (v.as_str(), kw.comment)),
        }
        .map_err(fe)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fits_text;

    #[test]
    fn header_text_is_ascii_and_fits_a_card() {
        assert_eq!(fits_text("models/m2"), "models/m2");
        assert_eq!(fits_text("modèle"), "mod?le");
        let long = format!("/very/long/{}/model-7", "x".repeat(80));
        let t = fits_text(&long);
        assert_eq!(t.len(), 68);
        assert!(t.starts_with("...") && t.ends_with("/model-7"), "{t}");
    }
}
