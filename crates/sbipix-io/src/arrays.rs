//! Per-pixel photometry arrays from `.npy` files and FITS images, with unit conversion to µJy.

use crate::error::{IoError, Result};
use ndarray::{Array1, Array2, Ix2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::path::Path;

/// Reads a 2-D `.npy` array of f64 or f32 (C order) as (values row-major, rows, cols).
pub fn read_npy_2d(path: &Path) -> Result<(Vec<f64>, usize, usize)> {
    let bad = |reason: String| IoError::Table { path: path.to_path_buf(), reason };
    let open = || std::fs::File::open(path).map_err(|e| IoError::io(path, e));
    let a: Array2<f64> = match Array2::<f64>::read_npy(open()?) {
        Ok(a) => a,
        Err(_) => {
            Array2::<f32>::read_npy(open()?).map_err(|e| bad(format!("not a 2-D float32/float64 .npy array: {e}")))?.mapv(|v| v as f64)
        }
    };
    let (r, c) = a.dim();
    Ok((a.as_standard_layout().iter().copied().collect(), r, c))
}

/// Reads a 1-D `.npy` array of f64 or f32.
pub fn read_npy_1d_f64(path: &Path) -> Result<Vec<f64>> {
    let open = || std::fs::File::open(path).map_err(|e| IoError::io(path, e));
    match Array1::<f64>::read_npy(open()?) {
        Ok(a) => Ok(a.to_vec()),
        Err(_) => Ok(Array1::<f32>::read_npy(open()?)
            .map_err(|e| IoError::Table { path: path.to_path_buf(), reason: format!("not a 1-D float .npy array: {e}") })?
            .iter()
            .map(|v| *v as f64)
            .collect()),
    }
}

/// Writes a row-major f32 array of shape (rows, cols) as `.npy`.
pub fn write_npy_f32(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    let a = Array2::from_shape_vec((rows, cols), data.to_vec())
        .map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })?;
    write_npy(path, &a)
}

/// Writes a 1-D f32 array as `.npy`.
pub fn write_npy_f32_1d(path: &Path, data: &[f32]) -> Result<()> {
    write_npy(path, &Array1::from(data.to_vec()))
}

/// Writes a row-major u8 array of shape (rows, cols) as `.npy`.
pub fn write_npy_u8(path: &Path, data: &[u8], rows: usize, cols: usize) -> Result<()> {
    let a = Array2::from_shape_vec((rows, cols), data.to_vec())
        .map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })?;
    write_npy(path, &a)
}

fn write_npy<T: WriteNpyExt>(path: &Path, a: &T) -> Result<()> {
    let f = std::fs::File::create(path).map_err(|e| IoError::io(path, e))?;
    let mut w = std::io::BufWriter::new(f);
    a.write_npy(&mut w).map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })?;
    use std::io::Write;
    w.flush().map_err(|e| IoError::io(path, e))
}

/// Reads a 2-D f32 `.npy` array (row-major) with its shape.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let f = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let a = ndarray::Array::<f32, Ix2>::read_npy(f).map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })?;
    let (r, c) = a.dim();
    Ok((a.as_standard_layout().iter().copied().collect(), r, c))
}

/// Flux units of images, converted to µJy per pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FluxUnit {
    /// A fixed factor to µJy.
    Factor(f64),
    /// Surface brightness in MJy/sr: needs the pixel solid angle.
    MJyPerSr,
}

/// Parses a unit name (`BUNIT` or a command-line flag): uJy, nJy, mJy, Jy, 10nJy, MJy/sr.
pub fn parse_unit(s: &str) -> Option<FluxUnit> {
    let t = s.trim().replace(' ', "").to_ascii_lowercase();
    if t == "mjy/sr" {
        // MJy/sr (surface brightness, JWST pipeline) vs mJy/sr (not supported): case decides
        return if s.trim().starts_with('M') { Some(FluxUnit::MJyPerSr) } else { None };
    }
    // an optional numeric multiplier: "10nJy", "10.0*nanoJansky" (grizli), "1e-8*Jy"
    let split = t.find(|c: char| c.is_ascii_alphabetic() && c != 'e' || c == 'µ').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num = num.trim_end_matches('*');
    let mult = if num.is_empty() { 1.0 } else { num.parse::<f64>().ok().filter(|m| m.is_finite() && *m > 0.0)? };
    let base = match unit {
        "ujy" | "µjy" | "microjy" | "microjansky" => 1.0,
        "njy" | "nanojy" | "nanojansky" => 1e-3,
        "mjy" | "millijy" | "millijansky" => 1e3,
        "jy" | "jansky" => 1e6,
        _ => return None,
    };
    Some(FluxUnit::Factor(mult * base))
}

/// A FITS image with its shape (ny, nx) and the header keys we use.
#[derive(Debug, Clone)]
pub struct FitsImage {
    pub data: Vec<f64>,
    pub ny: usize,
    pub nx: usize,
    pub bunit: Option<String>,
    pub pixar_sr: Option<f64>,
}

/// Opens a FITS file, saying plainly when it is missing or not FITS (cfitsio's own message is
/// a status code).
pub fn open_fits(path: &Path) -> Result<fitsio::FitsFile> {
    if !path.is_file() {
        let why = if path.exists() { "not a file" } else { "no such file" };
        return Err(IoError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, why)));
    }
    fitsio::FitsFile::open(path).map_err(|e| {
        let reason = match e {
            fitsio::errors::Error::Fits(f) => format!("not a readable FITS file ({}, cfitsio status {})", f.message, f.status),
            other => other.to_string(),
        };
        IoError::Fits { path: path.to_path_buf(), hdu: "0".into(), reason }
    })
}

/// Reads a 2-D image from `path` (HDU `hdu`: a name, or "" for the first image).
pub fn read_fits_image(path: &Path, hdu: &str) -> Result<FitsImage> {
    let fe = |h: &str, e: String| IoError::Fits { path: path.to_path_buf(), hdu: h.into(), reason: e };
    let mut f = open_fits(path)?;
    let h = if hdu.is_empty() { first_image(&mut f).map_err(|e| fe("*", e))? } else { f.hdu(hdu).map_err(|e| fe(hdu, e.to_string()))? };
    let label = if hdu.is_empty() { "first image".to_string() } else { hdu.to_string() };
    let shape = match &h.info {
        fitsio::hdu::HduInfo::ImageInfo { shape, .. } => shape.clone(),
        _ => return Err(fe(&label, "not an image".into())),
    };
    if shape.len() != 2 {
        return Err(fe(&label, format!("expected a 2-D image, found shape {shape:?}")));
    }
    let data: Vec<f64> = h.read_image(&mut f).map_err(|e| fe(&label, e.to_string()))?;
    let bunit: Option<String> = h.read_key(&mut f, "BUNIT").ok();
    let pixar_sr: Option<f64> = h.read_key(&mut f, "PIXAR_SR").ok();
    Ok(FitsImage { data, ny: shape[0], nx: shape[1], bunit, pixar_sr })
}

fn first_image(f: &mut fitsio::FitsFile) -> std::result::Result<fitsio::hdu::FitsHdu, String> {
    let n = f.iter().count();
    for i in 0..n {
        let h = f.hdu(i).map_err(|e| e.to_string())?;
        if let fitsio::hdu::HduInfo::ImageInfo { shape, .. } = &h.info
            && shape.len() >= 2
        {
            return Ok(h);
        }
    }
    Err("no image HDU".into())
}

/// A data cube: FLUX and ERR HDUs of shape (band, y, x), band names in the primary header as
/// BAND0, BAND1, … . Returns (bands, flux, err, ny, nx) with arrays band-major.
pub struct Cube {
    pub bands: Vec<String>,
    /// `[band][y][x]`
    pub flux: Vec<f64>,
    /// `[band][y][x]`
    pub err: Vec<f64>,
    pub ny: usize,
    pub nx: usize,
    pub bunit: Option<String>,
}

/// Reads a FLUX/ERR cube.
pub fn read_cube(path: &Path) -> Result<Cube> {
    let fe = |h: &str, e: String| IoError::Fits { path: path.to_path_buf(), hdu: h.into(), reason: e };
    let mut f = open_fits(path)?;
    let prim = f.primary_hdu().map_err(|e| fe("PRIMARY", e.to_string()))?;
    let mut bands = Vec::new();
    for i in 0.. {
        match prim.read_key::<String>(&mut f, &format!("BAND{i}")) {
            Ok(b) => bands.push(b.trim().to_string()),
            Err(_) => break,
        }
    }
    let mut read = |name: &str| -> Result<(Vec<f64>, Vec<usize>, Option<String>)> {
        let h = f.hdu(name).map_err(|e| fe(name, e.to_string()))?;
        let shape = match &h.info {
            fitsio::hdu::HduInfo::ImageInfo { shape, .. } => shape.clone(),
            _ => return Err(fe(name, "not an image".into())),
        };
        if shape.len() != 3 {
            return Err(fe(name, format!("expected shape (band, y, x), found {shape:?}")));
        }
        let data: Vec<f64> = h.read_image(&mut f).map_err(|e| fe(name, e.to_string()))?;
        let bunit: Option<String> = h.read_key(&mut f, "BUNIT").ok();
        Ok((data, shape, bunit))
    };
    let (flux, shape, bunit) = read("FLUX")?;
    let (err, eshape, _) = read("ERR")?;
    if shape != eshape {
        return Err(fe("ERR", format!("shape {eshape:?} differs from FLUX {shape:?}")));
    }
    if bands.len() != shape[0] {
        return Err(fe("PRIMARY", format!("{} BANDn keywords for {} planes", bands.len(), shape[0])));
    }
    Ok(Cube { bands, flux, err, ny: shape[1], nx: shape[2], bunit })
}

/// A header value of a WCS keyword.
#[derive(Debug, Clone, PartialEq)]
pub enum CardValue {
    Num(f64),
    Text(String),
}

/// The celestial WCS keywords of an image (axes 1 and 2), to copy into derived images.
pub type Wcs = Vec<(String, CardValue)>;

const WCS_TEXT: [&str; 6] = ["CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "RADESYS", "DATE-OBS"];
const WCS_NUM: [&str; 19] = [
    "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2",
    "CROTA2", "EQUINOX", "LONPOLE", "LATPOLE", "MJD-OBS",
];

/// Reads the WCS keywords of HDU `hdu` ("" = the first image) of `path` (missing keys skipped).
pub fn read_wcs(path: &Path, hdu: &str) -> Result<Wcs> {
    let fe = |h: &str, e: String| IoError::Fits { path: path.to_path_buf(), hdu: h.into(), reason: e };
    let mut f = open_fits(path)?;
    let h = if hdu.is_empty() { first_image(&mut f).map_err(|e| fe("*", e))? } else { f.hdu(hdu).map_err(|e| fe(hdu, e.to_string()))? };
    let mut out = Wcs::new();
    for k in WCS_TEXT {
        if let Ok(v) = h.read_key::<String>(&mut f, k) {
            out.push((k.to_string(), CardValue::Text(v.trim().to_string())));
        }
    }
    for k in WCS_NUM {
        if let Ok(v) = h.read_key::<f64>(&mut f, k) {
            out.push((k.to_string(), CardValue::Num(v)));
        }
    }
    Ok(out)
}

/// Pixel scale in arcsec from a WCS (√|det CD| or |CDELT|, degrees → arcsec), if present.
pub fn pixel_scale_arcsec(wcs: &Wcs) -> Option<f64> {
    let num = |k: &str| wcs.iter().find(|(n, _)| n == k).and_then(|(_, v)| if let CardValue::Num(x) = v { Some(*x) } else { None });
    if let (Some(a), Some(b), Some(c), Some(d)) = (num("CD1_1"), num("CD1_2"), num("CD2_1"), num("CD2_2")) {
        return Some((a * d - b * c).abs().sqrt() * 3600.0);
    }
    match (num("CDELT1"), num("CDELT2")) {
        (Some(a), Some(b)) => {
            let pc = (num("PC1_1").unwrap_or(1.0) * num("PC2_2").unwrap_or(1.0)
                - num("PC1_2").unwrap_or(0.0) * num("PC2_1").unwrap_or(0.0))
            .abs();
            Some((a * b).abs().sqrt() * pc.sqrt() * 3600.0)
        }
        _ => None,
    }
}

/// One image extension of an output file.
pub struct OutImage<'a> {
    pub name: String,
    /// `[y][x]`
    pub data: &'a [f32],
    pub bunit: String,
    pub comment: String,
}

/// Writes `images` (each ny × nx) as named image HDUs with the WCS copied to each, plus
/// `primary` keywords, atomically (temporary file, then rename).
pub fn write_image_fits(path: &Path, ny: usize, nx: usize, images: &[OutImage], wcs: &Wcs, primary: &[(String, CardValue)]) -> Result<()> {
    use fitsio::images::{ImageDescription, ImageType};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new().prefix(".sbipix-tmp-").suffix(".fits").tempfile_in(&dir).map_err(|e| IoError::io(&dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    // cfitsio creates the file itself
    drop(tmp);
    let fe = |h: &str, e: fitsio::errors::Error| IoError::Fits { path: path.to_path_buf(), hdu: h.into(), reason: e.to_string() };
    let result = (|| -> Result<()> {
        let mut f = fitsio::FitsFile::create(&tmp_path).open().map_err(|e| fe("PRIMARY", e))?;
        let prim = f.primary_hdu().map_err(|e| fe("PRIMARY", e))?;
        for (k, v) in primary {
            match v {
                CardValue::Num(x) => prim.write_key(&mut f, k, *x),
                CardValue::Text(t) => prim.write_key(&mut f, k, t.as_str()),
            }
            .map_err(|e| fe("PRIMARY", e))?;
        }
        let desc = ImageDescription { data_type: ImageType::Float, dimensions: &[ny, nx] };
        for im in images {
            if im.data.len() != ny * nx {
                return Err(IoError::Fits {
                    path: path.to_path_buf(),
                    hdu: im.name.clone(),
                    reason: format!("{} values for a {ny}×{nx} image", im.data.len()),
                });
            }
            let h = f.create_image(&im.name, &desc).map_err(|e| fe(&im.name, e))?;
            h.write_image(&mut f, im.data).map_err(|e| fe(&im.name, e))?;
            for (k, v) in wcs {
                match v {
                    CardValue::Num(x) => h.write_key(&mut f, k, *x),
                    CardValue::Text(t) => h.write_key(&mut f, k, t.as_str()),
                }
                .map_err(|e| fe(&im.name, e))?;
            }
            if !im.bunit.is_empty() {
                h.write_key(&mut f, "BUNIT", im.bunit.as_str()).map_err(|e| fe(&im.name, e))?;
            }
            if !im.comment.is_empty() {
                h.write_key(&mut f, "COMMENT", im.comment.as_str()).map_err(|e| fe(&im.name, e))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    std::fs::rename(&tmp_path, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp_path);
        IoError::io(path, e)
    })
}

/// Writes a FLUX/ERR cube (band, y, x) with BAND0… and extra primary keywords, atomically.
#[allow(clippy::too_many_arguments)]
pub fn write_cube(
    path: &Path,
    bands: &[String],
    ny: usize,
    nx: usize,
    flux: &[f32],
    err: &[f32],
    wcs: &Wcs,
    primary: &[(String, CardValue)],
) -> Result<()> {
    use fitsio::images::{ImageDescription, ImageType};
    let nb = bands.len();
    for (hdu, data) in [("FLUX", flux), ("ERR", err)] {
        if data.len() != nb * ny * nx {
            let reason = format!("{} values for a {nb}×{ny}×{nx} cube", data.len());
            return Err(IoError::Fits { path: path.to_path_buf(), hdu: hdu.into(), reason });
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // a unique name (cubes are written from several threads into one folder)
    let tmp = tempfile::Builder::new().prefix(".sbipix-tmp-").suffix(".fits").tempfile_in(&dir).map_err(|e| IoError::io(&dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    // cfitsio creates the file itself
    drop(tmp);
    let fe = |h: &str, e: fitsio::errors::Error| IoError::Fits { path: path.to_path_buf(), hdu: h.into(), reason: e.to_string() };
    let result = (|| -> Result<()> {
        let mut f = fitsio::FitsFile::create(&tmp_path).open().map_err(|e| fe("PRIMARY", e))?;
        let prim = f.primary_hdu().map_err(|e| fe("PRIMARY", e))?;
        for (i, b) in bands.iter().enumerate() {
            prim.write_key(&mut f, &format!("BAND{i}"), b.as_str()).map_err(|e| fe("PRIMARY", e))?;
        }
        for (k, v) in primary {
            match v {
                CardValue::Num(x) => prim.write_key(&mut f, k, *x),
                CardValue::Text(t) => prim.write_key(&mut f, k, t.as_str()),
            }
            .map_err(|e| fe("PRIMARY", e))?;
        }
        let desc = ImageDescription { data_type: ImageType::Float, dimensions: &[nb, ny, nx] };
        for (name, data) in [("FLUX", flux), ("ERR", err)] {
            let h = f.create_image(name, &desc).map_err(|e| fe(name, e))?;
            h.write_image(&mut f, data).map_err(|e| fe(name, e))?;
            h.write_key(&mut f, "BUNIT", "uJy").map_err(|e| fe(name, e))?;
            for (k, v) in wcs {
                match v {
                    CardValue::Num(x) => h.write_key(&mut f, k, *x),
                    CardValue::Text(t) => h.write_key(&mut f, k, t.as_str()),
                }
                .map_err(|e| fe(name, e))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    std::fs::rename(&tmp_path, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp_path);
        IoError::io(path, e)
    })
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn factor(s: &str) -> Option<f64> {
        match parse_unit(s)? {
            FluxUnit::Factor(f) => Some(f),
            FluxUnit::MJyPerSr => Some(f64::NAN),
        }
    }

    #[test]
    fn units_to_microjansky() {
        for (s, f) in [
            ("uJy", 1.0),
            ("µJy", 1.0),
            ("nJy", 1e-3),
            ("10nJy", 1e-2),
            ("10.0*nanoJansky", 1e-2),
            ("1e-8*Jy", 1e-2),
            ("mJy", 1e3),
            ("Jy", 1e6),
            ("25 nJy", 25e-3),
        ] {
            let g = factor(s).unwrap_or_else(|| panic!("{s} not parsed"));
            assert!((g / f - 1.0).abs() < 1e-12, "{s}: {g} vs {f}");
        }
        assert!(matches!(parse_unit("MJy/sr"), Some(FluxUnit::MJyPerSr)));
        for bad in ["mJy/sr", "counts", "", "-10nJy", "0*Jy", "ergs"] {
            assert!(parse_unit(bad).is_none(), "{bad}");
        }
    }
}
