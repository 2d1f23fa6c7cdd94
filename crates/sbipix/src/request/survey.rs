//! `sbipix survey --manifest`, `sbipix.survey`: every galaxy of a manifest mapped with one model.

use super::{DEFAULT_DRAWS, DEFAULT_MODEL, DEFAULT_SEED, DEFAULT_SNR_MIN, LoadedModel};
use crate::Result;
use crate::products::population::{
    GalaxyRow, GalaxyStatus, Manifest, SurveyOptions, read_manifest_row, run_galaxy, run_survey, write_population,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A survey run: shared model and settings; resumable (a galaxy already done is skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SurveyRequest {
    /// Model folder, or [`DEFAULT_MODEL`].
    pub model: String,
    /// Manifest CSV: id, redshift, cube | images + errors, …
    pub manifest: PathBuf,
    /// Output folder: `galaxies/<id>/…`, `galaxies.csv`, `outshining.png`.
    pub out: PathBuf,
    /// Posterior draws per pixel.
    pub draws: usize,
    /// Minimum mean S/N over [`super::SNR_BANDS`] for a pixel to be fitted.
    pub snr_min: f64,
    pub seed: u64,
    /// Posterior-predictive check of every galaxy.
    pub ppc: bool,
    /// Exact posteriors (the default, as `sbipix map`); false: the network alone (`--fast`).
    pub refine: bool,
    /// With `refine`: systematic error, a fraction of each flux ([`super::DEFAULT_SYS_ERR`]).
    pub sys_err: f64,
    /// Photometric redshifts for every galaxy (without it, only galaxies with no redshift in the
    /// manifest and no REDSHIFT keyword get one).
    pub photo_z: bool,
    /// How photometric redshifts are fitted.
    pub photo_z_settings: crate::inference::photoz::PhotoZSettings,
}

impl Default for SurveyRequest {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            manifest: PathBuf::new(),
            out: PathBuf::new(),
            draws: DEFAULT_DRAWS,
            snr_min: DEFAULT_SNR_MIN,
            seed: DEFAULT_SEED,
            ppc: true,
            refine: true,
            sys_err: super::DEFAULT_SYS_ERR,
            photo_z: false,
            photo_z_settings: crate::inference::photoz::PhotoZSettings::default(),
        }
    }
}

impl SurveyRequest {
    /// Refuses bad numbers: draws ≥ 1, a finite S/N cut, `sys_err` in [0, 1) when exact.
    pub fn validate(&self) -> Result<()> {
        super::at_least("draws", self.draws, 1, "the number of posterior draws per pixel")?;
        super::finite("snr_min", self.snr_min, "the S/N cut")?;
        super::refine_settings(self.refine, self.sys_err)?;
        self.photo_z_settings.validate()?;
        Ok(())
    }

    /// The settings every galaxy is mapped with (the forward model built once, for the check).
    pub fn options(&self, model: &LoadedModel, log: &dyn Fn(&str)) -> Result<SurveyOptions> {
        self.validate()?;
        let ppc = if self.ppc { model.ppc_model(log) } else { None };
        let refine = match super::refine_settings(self.refine, self.sys_err)? {
            Some(settings) => model.exact_model(true, log)?.map(|(fwd, prior)| (settings, fwd, prior)),
            None => None,
        };
        Ok(SurveyOptions {
            n_draws: self.draws,
            snr_min: self.snr_min,
            seed: self.seed,
            ppc,
            refine,
            photo_z: self.photo_z_settings,
            photo_z_always: self.photo_z,
        })
    }

    /// Maps every galaxy of `manifest` into `out` (galaxies already done are kept);
    /// `progress(done, total, id)` after each. Galaxies that fail have the reason as their
    /// status; the population files are left to the caller ([`Self::run`] writes them).
    pub fn run_galaxies(
        &self,
        model: &LoadedModel,
        manifest: &Manifest,
        log: &dyn Fn(&str),
        progress: &dyn Fn(usize, usize, &str),
    ) -> Result<Vec<GalaxyRow>> {
        let opts = self.options(model, log)?;
        run_survey(&model.post, manifest, &self.out, &opts, progress)
    }

    /// [`Self::run_galaxies`], then galaxies.csv and outshining.png.
    pub fn run(&self, model: &LoadedModel, log: &dyn Fn(&str), progress: &dyn Fn(usize, usize, &str)) -> Result<Vec<GalaxyRow>> {
        let manifest = crate::products::population::read_manifest(&self.manifest)?;
        let rows = self.run_galaxies(model, &manifest, log, progress)?;
        write_population(&self.out, &rows, None)?;
        Ok(rows)
    }

    /// Maps galaxy `index` (0-based) of the manifest alone (one task of a survey spread over
    /// processes; idempotent and atomic).
    pub fn run_one(&self, model: &LoadedModel, index: usize, log: &dyn Fn(&str)) -> Result<GalaxyStatus> {
        let opts = self.options(model, log)?;
        let (_, job) = read_manifest_row(&self.manifest, index)?;
        run_galaxy(&model.post, &job, &self.out, &opts)
    }
}
