//! Reading the image arguments shared by `sbipix map` and `sbipix survey learn`.

use crate::args::{ErrorKind, ImageInputArgs};
use crate::commands::log;
use anyhow::{Result, bail};
use sbipix::ImageSet;
use sbipix::sps::band_name_from_file_name;

/// The 19 SBIPIX bands, in their array order.
pub const JADES_BANDS: [&str; 19] = [
    "F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F430M", "F444W", "F460M", "F480M", "F435W",
    "F606W", "F775W", "F814W", "F850LP",
];

/// A `--bands` value: comma-separated names, or `jades` for the 19 SBIPIX bands.
pub fn band_list(s: &str) -> Vec<String> {
    if s.trim() == "jades" {
        JADES_BANDS.iter().map(|b| b.to_string()).collect()
    } else {
        s.split(',').map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect()
    }
}

/// The images named by the arguments, in µJy per pixel; None if neither --cube nor --images.
pub fn load_images(a: &ImageInputArgs) -> Result<Option<ImageSet>> {
    let given = a.bands.as_deref().map(band_list);
    if let Some(c) = &a.cube {
        let mut img = ImageSet::from_cube(c, a.unit.as_deref(), &log)?;
        if let Some(b) = given {
            if b.len() != img.bands.len() {
                bail!("{} has {} bands but --bands names {}", c.display(), img.bands.len(), b.len());
            }
            img.bands = b;
        }
        return Ok(Some(img));
    }
    if a.images.is_empty() {
        return Ok(None);
    }
    let bands = given.unwrap_or_else(|| {
        a.images.iter().map(|p| band_name_from_file_name(&p.file_name().unwrap_or_default().to_string_lossy())).collect()
    });
    Ok(Some(if !a.noise_from.is_empty() {
        ImageSet::from_images_with_background(&a.images, &a.noise_from, &bands, a.unit.as_deref(), &log)?
    } else if !a.errors.is_empty() {
        ImageSet::from_images(&a.images, &a.errors, &bands, a.error_kind == ErrorKind::Weight, a.unit.as_deref(), &log)?
    } else {
        bail!("--images needs --errors (error or weight maps) or --noise-from (empty-sky cutouts), one per band");
    }))
}
