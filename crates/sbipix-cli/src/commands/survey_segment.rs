//! `sbipix survey segment`: a field's S/N image → sources → a manifest for `sbipix survey`.

use super::log;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SegmentArgs {
    /// A FITS cube with FLUX and ERR HDUs.
    #[arg(long)]
    pub cube: PathBuf,
    /// Pixels with mean S/N over F277W/F356W/F444W above this belong to sources.
    #[arg(long, default_value_t = 3.0)]
    pub snr_min: f64,
    /// Smallest source kept (pixels).
    #[arg(long, default_value_t = 20)]
    pub min_pixels: usize,
    /// Redshift written for every source (a field has no single redshift: edit the manifest).
    #[arg(long)]
    pub redshift: f64,
    /// Output folder: seg.fits and manifest.csv.
    #[arg(long)]
    pub out: PathBuf,
}

/// 8-connected components of `mask` [ny × nx]; labels 1… by decreasing size, components smaller
/// than `min` dropped (0).
pub fn components(mask: &[bool], ny: usize, nx: usize, min: usize) -> Vec<u32> {
    let mut label = vec![0u32; ny * nx];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    for start in 0..ny * nx {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        let id = comps.len() as u32 + 1;
        let mut stack = vec![start];
        let mut members = Vec::new();
        label[start] = id;
        while let Some(p) = stack.pop() {
            members.push(p);
            let (y, x) = ((p / nx) as isize, (p % nx) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (yy, xx) = (y + dy, x + dx);
                    if (dy, dx) != (0, 0) && yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx {
                        let q = yy as usize * nx + xx as usize;
                        if mask[q] && label[q] == 0 {
                            label[q] = id;
                            stack.push(q);
                        }
                    }
                }
            }
        }
        comps.push(members);
    }
    let mut order: Vec<usize> = (0..comps.len()).filter(|&i| comps[i].len() >= min).collect();
    order.sort_by(|a, b| comps[*b].len().cmp(&comps[*a].len()).then(a.cmp(b)));
    let mut out = vec![0u32; ny * nx];
    for (k, &i) in order.iter().enumerate() {
        for &p in &comps[i] {
            out[p] = k as u32 + 1;
        }
    }
    out
}

pub fn run(a: SegmentArgs) -> Result<()> {
    use sbipix::io::arrays::{OutImage, write_image_fits};
    let img = sbipix::ImageSet::from_cube(&a.cube, None, &log)?;
    let (ny, nx, np) = (img.ny, img.nx, img.ny * img.nx);
    let sel: Vec<usize> = sbipix::request::SNR_BANDS.iter().filter_map(|b| img.bands.iter().position(|x| x == b)).collect();
    if sel.is_empty() {
        bail!("{}: none of F277W, F356W, F444W (the S/N bands)", a.cube.display());
    }
    let snr: Vec<f64> = (0..np)
        .map(|p| {
            let v: Vec<f64> = sel
                .iter()
                .map(|&b| (img.flux[b * np + p], img.err[b * np + p]))
                .filter(|(f, e)| f.is_finite() && e.is_finite() && *e > 0.0)
                .map(|(f, e)| f / e)
                .collect();
            if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
        })
        .collect();
    let mask: Vec<bool> = snr.iter().map(|s| *s > a.snr_min).collect();
    let seg = components(&mask, ny, nx, a.min_pixels.max(1));
    let n = seg.iter().copied().max().unwrap_or(0) as usize;
    if n == 0 {
        bail!("no source of ≥ {} pixels with S/N > {} in {}", a.min_pixels, a.snr_min, a.cube.display());
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let segf: Vec<f32> = seg.iter().map(|v| *v as f32).collect();
    write_image_fits(
        &a.out.join("seg.fits"),
        ny,
        nx,
        &[OutImage { name: "SEG".into(), data: &segf, bunit: String::new(), comment: "source id (0 = sky)".into() }],
        &img.wcs,
        &[],
    )?;
    let cube = std::fs::canonicalize(&a.cube).with_context(|| format!("resolving {}", a.cube.display()))?;
    let mut text = String::from("id,cube,redshift,seg,seg_id,x0,y0,nx,ny\n");
    for k in 1..=n {
        let pix: Vec<usize> = (0..np).filter(|&p| seg[p] == k as u32).collect();
        let (mut x0, mut x1, mut y0, mut y1) = (nx, 0, ny, 0);
        for &p in &pix {
            let (y, x) = (p / nx, p % nx);
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        // a margin of 5 pixels around the source, inside the field
        let (x0, y0) = (x0.saturating_sub(5), y0.saturating_sub(5));
        let (x1, y1) = ((x1 + 6).min(nx), (y1 + 6).min(ny));
        text.push_str(&format!("src{k},{},{},seg.fits,{k},{x0},{y0},{},{}\n", cube.display(), a.redshift, x1 - x0, y1 - y0));
        log(&format!("  src{k}: {} pixels, box x {x0}..{x1}, y {y0}..{y1}", pix.len()));
    }
    sbipix::io::write_atomic(&a.out.join("manifest.csv"), |w| Ok(w.write_all(text.as_bytes())?))?;
    log(&format!(
        "sbipix: {n} sources (S/N > {}, ≥ {} pixels) → {}/seg.fits, manifest.csv (redshift {} for all: edit per source)",
        a.snr_min,
        a.min_pixels,
        a.out.display(),
        a.redshift
    ));
    Ok(())
}
