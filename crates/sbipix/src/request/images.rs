//! Which images to read: a cube, or one image per band with its error map or an empty-sky
//! cutout (`sbipix map`, `sbipix survey learn`, `Model.map_cube`).

use crate::{Error, Result};
use sbipix_io::ImageSet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The 19 SBIPIX bands, in their array order (`bands = "jades"`).
pub const JADES_BANDS: [&str; 19] = [
    "F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F430M", "F444W", "F460M", "F480M", "F435W",
    "F606W", "F775W", "F814W", "F850LP",
];

/// A band list as typed: comma-separated names, or `jades` for [`JADES_BANDS`].
pub fn band_list(s: &str) -> Vec<String> {
    if s.trim() == "jades" {
        JADES_BANDS.iter().map(|b| b.to_string()).collect()
    } else {
        s.split(',').map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect()
    }
}

/// What the per-band error files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorMaps {
    /// 1σ maps.
    #[default]
    Sigma,
    /// Inverse-variance (weight) maps.
    Weight,
}

/// Images of a galaxy or field: `cube`, or `images` with `errors` (or `noise_from`), in µJy per
/// pixel after `unit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageInput {
    /// A FITS cube with FLUX and ERR HDUs (band, y, x) and BAND0… keywords.
    pub cube: Option<PathBuf>,
    /// One FITS image per band …
    pub images: Vec<PathBuf>,
    /// … with its error (or weight) map, in the same order …
    pub errors: Vec<PathBuf>,
    /// … or an empty-sky cutout per band: σ = 1.4826 × MAD of its pixels, uniform over the image.
    pub noise_from: Vec<PathBuf>,
    pub error_maps: ErrorMaps,
    /// Band names in array order (or `jades`); default: the cube's BANDn keywords, or the filter
    /// name in each image's file name.
    pub bands: Option<String>,
    /// Flux unit (uJy, nJy, 10nJy, mJy, Jy, MJy/sr…); default: BUNIT, else µJy.
    pub unit: Option<String>,
}

impl ImageInput {
    /// A cube in `unit` (None: its BUNIT).
    pub fn cube(path: impl Into<PathBuf>, unit: Option<String>) -> Self {
        Self { cube: Some(path.into()), unit, ..Self::default() }
    }

    /// True when no image is named.
    pub fn is_empty(&self) -> bool {
        self.cube.is_none() && self.images.is_empty()
    }

    /// Reads the images; an error if none are named.
    pub fn load(&self, log: &dyn Fn(&str)) -> Result<ImageSet> {
        let given = self.bands.as_deref().map(band_list);
        if let Some(c) = &self.cube {
            let mut img = ImageSet::from_cube(c, self.unit.as_deref(), log)?;
            if let Some(b) = given {
                if b.len() != img.bands.len() {
                    return Err(Error::invalid(
                        "bands",
                        b.join(","),
                        format!("{} has {} bands but {} are named", c.display(), img.bands.len(), b.len()),
                    ));
                }
                img.bands = b;
            }
            return Ok(img);
        }
        if self.images.is_empty() {
            return Err(Error::invalid("cube", "(not given)", "give a cube, or images with error maps or empty-sky cutouts"));
        }
        let bands = given.unwrap_or_else(|| {
            self.images.iter().map(|p| sbipix_sps::band_name_from_file_name(&p.file_name().unwrap_or_default().to_string_lossy())).collect()
        });
        let unit = self.unit.as_deref();
        Ok(if !self.noise_from.is_empty() {
            ImageSet::from_images_with_background(&self.images, &self.noise_from, &bands, unit, log)?
        } else if !self.errors.is_empty() {
            ImageSet::from_images(&self.images, &self.errors, &bands, self.error_maps == ErrorMaps::Weight, unit, log)?
        } else {
            return Err(Error::invalid(
                "noise_from",
                "(not given)",
                "images need error (or weight) maps (errors) or empty-sky cutouts (noise_from), one per band",
            ));
        })
    }
}
