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
        Err(_) => Array2::<f32>::read_npy(open()?)
            .map_err(|e| bad(format!("not a 2-D float32/float64 .npy array: {e}")))?
            .mapv(|v| v as f64),
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
    let a = Array2::from_shape_vec((rows, cols), data.to_vec()).map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })?;
    write_npy(path, &a)
}

/// Writes a 1-D f32 array as `.npy`.
pub fn write_npy_f32_1d(path: &Path, data: &[f32]) -> Result<()> {
    write_npy(path, &Array1::from(data.to_vec()))
}

/// Writes a row-major u8 array of shape (rows, cols) as `.npy`.
pub fn write_npy_u8(path: &Path, data: &[u8], rows: usize, cols: usize) -> Result<()> {
    let a = Array2::from_shape_vec((rows, cols), data.to_vec()).map_err(|e| IoError::Table { path: path.to_path_buf(), reason: e.to_string() })?;
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
    Some(match t.as_str() {
        "ujy" | "µjy" | "microjy" | "microjansky" => FluxUnit::Factor(1.0),
        "njy" | "nanojy" => FluxUnit::Factor(1e-3),
        "10njy" => FluxUnit::Factor(1e-2),
        "mjy" => FluxUnit::Factor(1e3),
        "jy" => FluxUnit::Factor(1e6),
        "mjy/sr" if s.trim().starts_with('M') => FluxUnit::MJyPerSr,
        "mjy/sr" => return None,
        _ => return None,
    })
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

/// Reads a 2-D image from `path` (HDU `hdu`: a name, or "" for the first image).
pub fn read_fits_image(path: &Path, hdu: &str) -> Result<FitsImage> {
    let fe = |h: &str, e: String| IoError::Fits { path: path.to_path_buf(), hdu: h.into(), reason: e };
    let mut f = fitsio::FitsFile::open(path).map_err(|e| fe("0", e.to_string()))?;
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
    /// [band][y][x]
    pub flux: Vec<f64>,
    /// [band][y][x]
    pub err: Vec<f64>,
    pub ny: usize,
    pub nx: usize,
    pub bunit: Option<String>,
}

/// Reads a FLUX/ERR cube.
pub fn read_cube(path: &Path) -> Result<Cube> {
    let fe = |h: &str, e: String| IoError::Fits { path: path.to_path_buf(), hdu: h.into(), reason: e };
    let mut f = fitsio::FitsFile::open(path).map_err(|e| fe("0", e.to_string()))?;
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
