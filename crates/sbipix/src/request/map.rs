//! `sbipix map`, `Model.map_cube`, `Model.map`.

use super::{DEFAULT_DRAWS, DEFAULT_MODEL, DEFAULT_SEED, DEFAULT_SNR_MIN, ImageInput, LoadedModel};
use crate::inference::photoz::PhotoZSettings;
use crate::products::map::{GalaxyMaps, MapOptions, map_galaxy_with_progress};
use crate::{Error, Result};
use sbipix_io::ImageSet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A segmentation map and the id of the galaxy in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segmentation {
    pub path: PathBuf,
    pub id: f64,
}

/// Maps of one galaxy from its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapRequest {
    /// Model folder, or [`DEFAULT_MODEL`].
    pub model: String,
    pub images: ImageInput,
    /// Redshift of the galaxy; None: the images' REDSHIFT keyword.
    pub redshift: Option<f64>,
    pub segmentation: Option<Segmentation>,
    /// Minimum mean S/N over [`super::SNR_BANDS`] (those present) for a pixel to be fitted.
    pub snr_min: f64,
    /// Posterior draws per pixel.
    pub draws: usize,
    pub seed: u64,
    /// Posterior-predictive check (needs the stellar-population data; skipped with a warning
    /// when it cannot be had).
    pub ppc: bool,
    /// The exact posterior of every pixel (the forward model's likelihood, the network's draws
    /// as the proposal): the default. False: the network's draws alone (`--fast`).
    pub refine: bool,
    /// With `refine`: systematic error, a fraction of each flux added to σ in quadrature
    /// ([`super::DEFAULT_SYS_ERR`]).
    pub sys_err: f64,
    /// Folder receiving maps.fits, maps.png and summary.json; None: nothing written.
    pub out: Option<PathBuf>,
    /// A photometric redshift even when one is given (without one — no `redshift`, no REDSHIFT
    /// keyword — it is fitted anyway).
    pub photo_z: bool,
    /// How the photometric redshift is fitted.
    pub photo_z_settings: PhotoZSettings,
    /// log U free in the exact posteriors (a `logu` layer), as [`super::FitRequest::free_logu`].
    pub free_logu: bool,
    /// The images' pixel scale (arcsec) where their WCS lacks it, or to override it; a model whose
    /// prior is a mass per kpc² needs one.
    pub pixel_scale_arcsec: Option<f64>,
}

impl Default for MapRequest {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            images: ImageInput::default(),
            redshift: None,
            segmentation: None,
            snr_min: DEFAULT_SNR_MIN,
            draws: DEFAULT_DRAWS,
            seed: DEFAULT_SEED,
            ppc: true,
            refine: true,
            sys_err: super::DEFAULT_SYS_ERR,
            out: None,
            photo_z: false,
            photo_z_settings: PhotoZSettings::default(),
            free_logu: false,
            pixel_scale_arcsec: None,
        }
    }
}

/// What [`MapRequest::run`] made: the images as read and their maps.
pub struct MapRun {
    pub images: ImageSet,
    pub maps: GalaxyMaps,
}

impl MapRequest {
    /// Refuses bad numbers, naming them: draws ≥ 1, a finite S/N cut, a redshift ≥ 0, `sys_err`
    /// in [0, 1) when refining.
    pub fn validate(&self) -> Result<()> {
        super::at_least("draws", self.draws, 1, "the number of posterior draws per pixel")?;
        super::finite("snr_min", self.snr_min, "the S/N cut")?;
        if let Some(z) = self.redshift
            && !(z.is_finite() && z >= 0.0)
        {
            return Err(Error::invalid("redshift", z, "must be a finite number ≥ 0"));
        }
        super::refine_settings(self.refine, self.sys_err)?;
        self.photo_z_settings.validate()?;
        Ok(())
    }

    /// Loads the model and the images and maps them ([`Self::run_on`]).
    pub fn run(&self, log: &dyn Fn(&str), progress: &(dyn Fn(usize, usize) + Sync)) -> Result<MapRun> {
        self.validate()?;
        let model = LoadedModel::load(&self.model)?;
        let img = self.images.load(log)?;
        self.run_on(&model, img, log, progress)
    }

    /// Maps `img` with a loaded model (its forward model built when the check or refinement
    /// needs it) and writes the outputs to `out`, if given. `progress(done, total)` counts pixels.
    pub fn run_on(
        &self,
        model: &LoadedModel,
        img: ImageSet,
        log: &dyn Fn(&str),
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<MapRun> {
        self.validate()?;
        let opts = self.options(model, &img, log)?;
        let maps = map_galaxy_with_progress(&model.post, &img, &opts, log, progress)?;
        if let Some(out) = &self.out {
            crate::products::map_fits::write_maps(out, &img, &maps)?;
        }
        Ok(MapRun { images: img, maps })
    }

    /// The pipeline's options for `img`: redshift, segmentation, the forward model for the check
    /// and refinement. An output folder that cannot be made is refused here, before any work.
    fn options(&self, model: &LoadedModel, img: &ImageSet, log: &dyn Fn(&str)) -> Result<MapOptions> {
        let z = self.redshift.or(img.redshift);
        let mut opts = MapOptions::new(z.unwrap_or(0.0));
        if self.photo_z || z.is_none() {
            if z.is_none() {
                log(&format!("sbipix: no redshift given and no REDSHIFT keyword in {}: fitting a photometric redshift", img.source));
            }
            opts.photo_z = Some(self.photo_z_settings);
        }
        if let Some(v) = self.pixel_scale_arcsec
            && !(v.is_finite() && v > 0.0)
        {
            return Err(Error::invalid("pixel_scale", v, "a pixel scale must be a positive number of arcsec"));
        }
        opts.pixel_scale_arcsec = self.pixel_scale_arcsec;
        opts.snr_min = self.snr_min;
        opts.n_draws = self.draws;
        opts.seed = self.seed;
        if let Some(s) = &self.segmentation {
            opts.segmentation = Some((sbipix_io::read_segmentation(&s.path, s.id, None, img.ny, img.nx)?, s.id));
        }
        if let Some(out) = &self.out {
            check_out_folder(out)?;
        }
        if self.ppc {
            opts.ppc = model.ppc_model(log);
        }
        if opts.photo_z.is_some() && opts.ppc.is_none() && !self.refine {
            // --fast --no-ppc: the photometric redshift still needs the forward model
            opts.ppc = Some(model.forward_model(log)?);
        }
        if let Some(settings) = super::refine_settings(self.refine, self.sys_err)?
            && let Some(f) = model.exact_model(true, log)?
        {
            let (fwd, prior) = if self.free_logu { super::free_logu(f)? } else { f };
            opts.refine = Some((settings, fwd, prior));
        } else if self.free_logu {
            return Err(Error::unsupported("free_logu", "log U is freed in the exact posteriors, and this map has none (refine is off)"));
        }
        Ok(opts)
    }
}

/// `out` can become a folder: it is one, or its parent exists (nothing is written until the end).
fn check_out_folder(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::file(out, "exists and is not a folder"));
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !out.exists() && !parent.is_dir() {
        return Err(Error::write(out, format!("folder {} does not exist", parent.display())));
    }
    Ok(())
}
