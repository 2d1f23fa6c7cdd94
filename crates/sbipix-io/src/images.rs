//! Images of one galaxy: a FITS cube or one FITS file per band (σ or inverse-variance maps, or an
//! empty-sky cutout per band), converted to µJy per pixel, with the input WCS; cutouts and
//! segmentation maps.

use crate::arrays::{CardValue, FluxUnit, Wcs, parse_unit, read_cube, read_fits_image, read_wcs};
use crate::error::{IoError, Result};
use std::path::Path;

/// Images of one galaxy in µJy per pixel: flux and 1σ error per band, `[band][y][x]`; an error
/// that is 0 or NaN marks a pixel without that band.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub source: String,
    pub bands: Vec<String>,
    pub ny: usize,
    pub nx: usize,
    pub flux: Vec<f64>,
    pub err: Vec<f64>,
    pub wcs: Wcs,
    /// From a `REDSHIFT` header keyword, if any.
    pub redshift: Option<f64>,
}

/// The factor that turns values in `unit` (else the file's `bunit`, else µJy, which is logged)
/// into µJy per pixel; `what` names the file in messages. MJy/sr needs the pixel solid angle.
pub fn unit_factor(unit: Option<&str>, bunit: Option<&str>, pixar_sr: Option<f64>, what: &str, log: &dyn Fn(&str)) -> Result<f64> {
    let Some(name) = unit.or(bunit) else {
        log(&format!("sbipix: {what}: no BUNIT and no --unit: assuming µJy per pixel"));
        return Ok(1.0);
    };
    match parse_unit(name) {
        Some(FluxUnit::Factor(f)) => Ok(f),
        Some(FluxUnit::MJyPerSr) => match pixar_sr {
            Some(sr) => Ok(1e12 * sr),
            None => Err(IoError::Image { path: what.into(), reason: "unit MJy/sr needs the PIXAR_SR keyword (pixel solid angle)".into() }),
        },
        None => Err(IoError::Image {
            path: what.into(),
            reason: format!("unknown flux unit `{name}` (uJy, nJy, 10nJy, 10.0*nanoJansky, mJy, Jy, MJy/sr)"),
        }),
    }
}

impl ImageSet {
    /// Pixel-major flux and error rows (µJy, [pixels × bands] in `bands` order; a band the
    /// images lack, or a pixel whose flux or σ is not a usable number, gets flux 0 and error 0 —
    /// no coverage), the layout `sbipix_sim::survey::learn` reads.
    pub fn pixel_rows(&self, bands: &[String]) -> (Vec<f64>, Vec<f64>) {
        let (nb, np) = (bands.len(), self.ny * self.nx);
        let (mut f, mut e) = (vec![0.0; np * nb], vec![0.0; np * nb]);
        for (j, name) in bands.iter().enumerate() {
            let Some(b) = self.bands.iter().position(|x| x == name) else { continue };
            for p in 0..np {
                let (x, s) = (self.flux[b * np + p], self.err[b * np + p]);
                if x.is_finite() && s.is_finite() && s > 0.0 {
                    f[p * nb + j] = x;
                    e[p * nb + j] = s;
                }
            }
        }
        (f, e)
    }

    /// A FITS cube with FLUX and ERR HDUs (band, y, x) and BAND0… keywords.
    pub fn from_cube(path: &Path, unit: Option<&str>, log: &dyn Fn(&str)) -> Result<Self> {
        let c = read_cube(path)?;
        let k = unit_factor(unit, c.bunit.as_deref(), None, &path.display().to_string(), log)?;
        let wcs = read_wcs(path, "FLUX").unwrap_or_default();
        let redshift = read_key_f64(path, "REDSHIFT");
        Ok(Self {
            source: path.display().to_string(),
            bands: c.bands,
            ny: c.ny,
            nx: c.nx,
            flux: c.flux.iter().map(|v| v * k).collect(),
            err: c.err.iter().map(|v| v * k).collect(),
            wcs,
            redshift,
        })
    }

    /// The sub-image x0..x0+nx, y0..y0+ny (0-based pixels), with CRPIX shifted so the WCS stays
    /// right.
    pub fn crop(&self, x0: usize, y0: usize, nx: usize, ny: usize) -> Result<Self> {
        if nx == 0 || ny == 0 || x0 + nx > self.nx || y0 + ny > self.ny {
            return Err(IoError::Image {
                path: self.source.clone().into(),
                reason: format!("cutout x {x0}..{}, y {y0}..{} lies outside the {}×{} image", x0 + nx, y0 + ny, self.nx, self.ny),
            });
        }
        let nb = self.bands.len();
        let mut flux = Vec::with_capacity(nb * nx * ny);
        let mut err = Vec::with_capacity(nb * nx * ny);
        for b in 0..nb {
            for y in y0..y0 + ny {
                let row = b * self.ny * self.nx + y * self.nx;
                flux.extend_from_slice(&self.flux[row + x0..row + x0 + nx]);
                err.extend_from_slice(&self.err[row + x0..row + x0 + nx]);
            }
        }
        let wcs = self
            .wcs
            .iter()
            .map(|(k, v)| match (k.as_str(), v) {
                ("CRPIX1", CardValue::Num(c)) => (k.clone(), CardValue::Num(c - x0 as f64)),
                ("CRPIX2", CardValue::Num(c)) => (k.clone(), CardValue::Num(c - y0 as f64)),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        Ok(Self {
            source: format!("{}[{x0}:{}, {y0}:{}]", self.source, x0 + nx, y0 + ny),
            bands: self.bands.clone(),
            ny,
            nx,
            flux,
            err,
            wcs,
            redshift: self.redshift,
        })
    }

    /// One image per band with σ maps (or inverse-variance maps with `weights`).
    pub fn from_images(
        images: &[std::path::PathBuf],
        errors: &[std::path::PathBuf],
        bands: &[String],
        weights: bool,
        unit: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<Self> {
        if images.is_empty() || images.len() != errors.len() || images.len() != bands.len() {
            return Err(IoError::Image {
                path: "images".into(),
                reason: format!("{} images, {} error maps, {} band names: one of each per band", images.len(), errors.len(), bands.len()),
            });
        }
        let mut flux = Vec::new();
        let mut err = Vec::new();
        let (mut ny, mut nx) = (0, 0);
        let wcs0 = read_wcs(&images[0], "").unwrap_or_default();
        for (b, (ip, ep)) in images.iter().zip(errors).enumerate() {
            let w = read_wcs(ip, "").unwrap_or_default();
            if let Some(k) = wcs_mismatch(&wcs0, &w) {
                return Err(IoError::Image {
                    path: ip.clone(),
                    reason: format!(
                        "its WCS differs from {}'s ({k}): the images must be on one pixel grid (PSF-matched, aligned)",
                        images[0].display()
                    ),
                });
            }
            let im = read_fits_image(ip, "")?;
            let er = read_fits_image(ep, "")?;
            if b == 0 {
                (ny, nx) = (im.ny, im.nx);
            }
            for (p, what) in [(&im, ip), (&er, ep)] {
                if (p.ny, p.nx) != (ny, nx) {
                    return Err(IoError::Image {
                        path: what.to_path_buf(),
                        reason: format!("{}×{} pixels, the first image has {ny}×{nx}", p.ny, p.nx),
                    });
                }
            }
            let k = unit_factor(unit, im.bunit.as_deref(), im.pixar_sr, &ip.display().to_string(), log)?;
            flux.extend(im.data.iter().map(|v| v * k));
            err.extend(er.data.iter().map(|&v| if weights { if v > 0.0 { k / v.sqrt() } else { 0.0 } } else { v * k }));
        }
        Ok(Self {
            source: images[0].display().to_string(),
            bands: bands.to_vec(),
            ny,
            nx,
            flux,
            err,
            wcs: wcs0,
            redshift: read_key_f64(&images[0], "REDSHIFT"),
        })
    }

    /// One image per band without error maps: σ of each band estimated from an empty-sky cutout
    /// (1.4826 × median absolute deviation of its finite pixels, in the image's units), uniform
    /// over the image (background-limited; the sources' own Poisson noise is not included).
    pub fn from_images_with_background(
        images: &[std::path::PathBuf],
        backgrounds: &[std::path::PathBuf],
        bands: &[String],
        unit: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<Self> {
        if images.is_empty() || images.len() != backgrounds.len() || images.len() != bands.len() {
            return Err(IoError::Image {
                path: "images".into(),
                reason: format!(
                    "{} images, {} background cutouts, {} band names: one of each per band",
                    images.len(),
                    backgrounds.len(),
                    bands.len()
                ),
            });
        }
        let wcs0 = read_wcs(&images[0], "").unwrap_or_default();
        let (mut flux, mut err) = (Vec::new(), Vec::new());
        let (mut ny, mut nx) = (0, 0);
        for (b, (ip, bp)) in images.iter().zip(backgrounds).enumerate() {
            if let Some(k) = wcs_mismatch(&wcs0, &read_wcs(ip, "").unwrap_or_default()) {
                return Err(IoError::Image { path: ip.clone(), reason: format!("its WCS differs from {}'s ({k})", images[0].display()) });
            }
            let im = read_fits_image(ip, "")?;
            let bg = read_fits_image(bp, "")?;
            if b == 0 {
                (ny, nx) = (im.ny, im.nx);
            } else if (im.ny, im.nx) != (ny, nx) {
                return Err(IoError::Image {
                    path: ip.clone(),
                    reason: format!("{}×{} pixels, the first image has {ny}×{nx}", im.ny, im.nx),
                });
            }
            if unit.is_none() && im.bunit.as_deref().map(parse_unit) != bg.bunit.as_deref().map(parse_unit) {
                // a silent µJy guess for one file against a stated unit for the other would scale
                // the S/N by the ratio of the units
                return Err(IoError::Image {
                    path: ip.clone(),
                    reason: format!(
                        "BUNIT {} but its background cutout {} has BUNIT {}: give --unit (the unit of both)",
                        im.bunit.as_deref().unwrap_or("(none)"),
                        bp.display(),
                        bg.bunit.as_deref().unwrap_or("(none)")
                    ),
                });
            }
            let k = unit_factor(unit, im.bunit.as_deref(), im.pixar_sr, &ip.display().to_string(), log)?;
            let mut v: Vec<f64> = bg.data.iter().cloned().filter(|x| x.is_finite() && *x != 0.0).collect();
            if v.len() < 100 {
                return Err(IoError::Image { path: bp.clone(), reason: format!("only {} usable background pixels", v.len()) });
            }
            let med = sbipix_stats::percentile(&mut v, 0.5);
            let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
            // --unit (which states the unit of every given file), else the cutout's own BUNIT
            let kb = unit_factor(unit, bg.bunit.as_deref(), bg.pixar_sr, &bp.display().to_string(), log)?;
            let sigma = 1.4826 * sbipix_stats::percentile(&mut dev, 0.5) * kb;
            log(&format!("sbipix: {}: σ = {sigma:.3e} µJy per pixel from {} ({} pixels)", bands[b], bp.display(), v.len()));
            flux.extend(im.data.iter().map(|x| x * k));
            err.extend(im.data.iter().map(|x| if x.is_finite() { sigma } else { f64::NAN }));
        }
        Ok(Self {
            source: images[0].display().to_string(),
            bands: bands.to_vec(),
            ny,
            nx,
            flux,
            err,
            wcs: wcs0,
            redshift: read_key_f64(&images[0], "REDSHIFT"),
        })
    }

    /// Checks the data: negative errors are an error naming the band and pixel.
    pub fn check(&self) -> Result<()> {
        let npix = self.ny * self.nx;
        if self.flux.len() != self.bands.len() * npix || self.err.len() != self.flux.len() {
            return Err(IoError::Image {
                path: self.source.clone().into(),
                reason: format!("{} bands but {} values for {}×{} pixels", self.bands.len(), self.flux.len(), self.ny, self.nx),
            });
        }
        for (b, band) in self.bands.iter().enumerate() {
            if let Some(p) = (0..npix).find(|&p| self.err[b * npix + p] < 0.0) {
                return Err(IoError::Image {
                    path: self.source.clone().into(),
                    reason: format!(
                        "band {band}: negative error {} at pixel (x = {}, y = {})",
                        self.err[b * npix + p],
                        p % self.nx,
                        p / self.nx
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The first WCS keyword whose value differs between two images (numbers to 1e-9 relative).
fn wcs_mismatch(a: &Wcs, b: &Wcs) -> Option<String> {
    for (k, va) in a {
        if let Some((_, vb)) = b.iter().find(|(kb, _)| kb == k) {
            let same = match (va, vb) {
                (CardValue::Num(x), CardValue::Num(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300),
                (CardValue::Text(x), CardValue::Text(y)) => x == y,
                _ => false,
            };
            if !same && k != "DATE-OBS" && k != "MJD-OBS" {
                return Some(k.clone());
            }
        }
    }
    None
}

fn read_key_f64(path: &Path, key: &str) -> Option<f64> {
    let mut f = fitsio::FitsFile::open(path).ok()?;
    let n = f.iter().count();
    for i in 0..n {
        let h = f.hdu(i).ok()?;
        if let Ok(v) = h.read_key::<f64>(&mut f, key) {
            return Some(v);
        }
    }
    None
}

/// A segmentation map for the map's segmentation option: read from `path` (its first image),
/// cut to `cutout` (x0, y0, nx, ny) when the images are a cutout of a larger field, and checked to
/// have the images' shape (ny, nx) and a pixel with `id`.
pub fn read_segmentation(path: &Path, id: f64, cutout: Option<(usize, usize, usize, usize)>, ny: usize, nx: usize) -> Result<Vec<f64>> {
    let s = read_fits_image(path, "")?;
    let data = match cutout {
        Some((x0, y0, cnx, cny)) => {
            if x0 + cnx > s.nx || y0 + cny > s.ny {
                return Err(IoError::Image {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the cutout x {x0}..{}, y {y0}..{} lies outside the {}×{} segmentation map",
                        x0 + cnx,
                        y0 + cny,
                        s.nx,
                        s.ny
                    ),
                });
            }
            (y0..y0 + cny).flat_map(|y| s.data[y * s.nx + x0..y * s.nx + x0 + cnx].to_vec()).collect()
        }
        None => s.data,
    };
    let (sny, snx) = cutout.map_or((s.ny, s.nx), |c| (c.3, c.2));
    if (sny, snx) != (ny, nx) {
        return Err(IoError::Image {
            path: path.to_path_buf(), reason: format!("segmentation map is {sny}×{snx}, the images {ny}×{nx}")
        });
    }
    if !data.contains(&id) {
        return Err(IoError::Image { path: path.to_path_buf(), reason: format!("segmentation map has no pixel with id {id}") });
    }
    Ok(data)
}
