//! `sbipix map`.

use crate::args::{ErrorKind, MapArgs};
use crate::commands::log;
use crate::train_cmd::resolve_model;
use anyhow::{Context, Result, anyhow, bail};
use sbipix::maps::{ImageSet, MapOptions, map_galaxy, write_maps};
use sbipix::posterior::Posterior;
use sbipix::sps::band_name_from_file_name;

pub fn map(a: MapArgs) -> Result<()> {
    let model = resolve_model(&a.model)?;
    let post = Posterior::load(&model)?;
    let img = if let Some(c) = &a.cube {
        ImageSet::from_cube(c, a.unit.as_deref(), &log)?
    } else if !a.images.is_empty() {
        let bands: Vec<String> = match &a.bands {
            Some(b) => b.split(',').map(|s| s.trim().to_string()).collect(),
            None => a.images.iter().map(|p| band_name_from_file_name(&p.file_name().unwrap_or_default().to_string_lossy())).collect(),
        };
        ImageSet::from_images(&a.images, &a.errors, &bands, a.error_kind == ErrorKind::Weight, a.unit.as_deref(), &log)?
    } else {
        bail!("give --cube, or --images with --errors");
    };
    let z = a
        .redshift
        .or(img.redshift)
        .ok_or_else(|| anyhow!("no redshift: give --redshift (or a REDSHIFT keyword in {})", img.source))?;
    let mut opts = MapOptions::new(z);
    opts.snr_min = a.snr_min;
    opts.n_draws = a.draws;
    opts.seed = a.seed;
    if let (Some(seg), Some(id)) = (&a.seg, a.id) {
        let s = sbipix::io::arrays::read_fits_image(seg, "").with_context(|| format!("reading the segmentation map {}", seg.display()))?;
        if (s.ny, s.nx) != (img.ny, img.nx) {
            bail!("segmentation map {} is {}×{}, the images {}×{}", seg.display(), s.ny, s.nx, img.ny, img.nx);
        }
        if !s.data.contains(&id) {
            bail!("segmentation map {} has no pixel with id {id}", seg.display());
        }
        opts.segmentation = Some((s.data, id));
    }
    let m = map_galaxy(&post, &img, &opts, &log)?;
    write_maps(&a.out, &img, &m)?;
    let s = &m.summary;
    log(&format!(
        "sbipix: {} pixels fitted in {:.1} s ({:.2} ms/pixel, {} draws each)\n  log M* resolved {:.2} (+{:.2}/−{:.2}), integrated {:.2} (+{:.2}/−{:.2})\n  wrote {}/maps.fits, maps.png, summary.json",
        s.n_pixels,
        s.seconds,
        s.ms_per_pixel,
        opts.n_draws,
        s.log_mstar_resolved[1],
        s.log_mstar_resolved[2] - s.log_mstar_resolved[1],
        s.log_mstar_resolved[1] - s.log_mstar_resolved[0],
        s.log_mstar_integrated[1],
        s.log_mstar_integrated[2] - s.log_mstar_integrated[1],
        s.log_mstar_integrated[1] - s.log_mstar_integrated[0],
        a.out.display()
    ));
    Ok(())
}
