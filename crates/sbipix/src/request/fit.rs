//! Integrated photometry: `sbipix fit` / `Model.fit_catalog` on catalogue files, and
//! `Model.sample` / `Model.fit` on arrays.

use super::{DEFAULT_DRAWS, DEFAULT_ERROR_FLOOR, DEFAULT_FIT_DRAWS, DEFAULT_MODEL, DEFAULT_SEED, LoadedModel};
use crate::inference::photoz::PhotoZSettings;
use crate::products::catalog_fit::{CatalogColumns, CatalogFit, RedshiftSource, fit_catalog, write_fit_csv};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Posteriors for every row of a catalogue (CSV, whitespace table or FITS table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitRequest {
    /// Model folder, or [`DEFAULT_MODEL`].
    pub model: String,
    pub catalog: PathBuf,
    /// Output CSV; None: nothing written.
    pub out: Option<PathBuf>,
    /// Replace an existing `out`.
    pub overwrite: bool,
    /// Flux column names, `{band}` standing for the band.
    pub flux_columns: String,
    /// Error column names, with `{band}`.
    pub err_columns: String,
    pub redshift_column: String,
    /// Id column (rows are numbered from 1 if the catalogue has none).
    pub id_column: String,
    /// Unit of the flux and error columns; None: µJy.
    pub unit: Option<String>,
    /// Fractional error floor added in quadrature to every flux error.
    pub error_floor: f64,
    /// Posterior draws per object.
    pub draws: usize,
    pub seed: u64,
    /// Posterior-predictive check (the `ppc_chi2` column).
    pub ppc: bool,
    pub refine: bool,
    /// With `refine`: systematic error (at least `error_floor` is used).
    pub sys_err: f64,
    /// The nebular ionisation parameter log U free over [`super::FREE_LOGU_RANGE`] (−4…−1) in
    /// the exact posteriors instead of the model's fixed value (SBIPIX: −2): a `logu`
    /// column, and line strengths that can follow the data (why it is not the default:
    /// docs/inference.md, *Nebular ionisation*).
    pub free_logu: bool,
    /// Photometric redshifts for every row, whatever the catalogue holds (they are fitted anyway
    /// when it has no `redshift_column`).
    pub photo_z: bool,
    /// Photometric redshifts alone (implies `photo_z`): no parameter posteriors.
    pub photo_z_only: bool,
    /// How photometric redshifts are fitted.
    pub photo_z_settings: PhotoZSettings,
}

impl Default for FitRequest {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            catalog: PathBuf::new(),
            out: None,
            overwrite: false,
            flux_columns: "flux_ujy_{band}".into(),
            err_columns: "err_ujy_{band}".into(),
            redshift_column: "redshift".into(),
            id_column: "id".into(),
            unit: None,
            error_floor: DEFAULT_ERROR_FLOOR,
            draws: DEFAULT_FIT_DRAWS,
            seed: DEFAULT_SEED,
            ppc: true,
            refine: true,
            sys_err: super::DEFAULT_SYS_ERR,
            free_logu: false,
            photo_z: false,
            photo_z_only: false,
            photo_z_settings: PhotoZSettings::default(),
        }
    }
}

impl FitRequest {
    /// Refuses bad numbers: draws ≥ 1, an error floor ≥ 0, `sys_err` in [0, 1) when refining.
    pub fn validate(&self) -> Result<()> {
        super::at_least("draws", self.draws, 1, "the number of posterior draws per object")?;
        check_error_floor(self.error_floor)?;
        super::refine_settings(self.refine, self.sys_err)?;
        self.photo_z_settings.validate()?;
        Ok(())
    }

    /// How the catalogue's columns are found.
    pub fn columns(&self) -> CatalogColumns {
        CatalogColumns {
            flux: self.flux_columns.clone(),
            err: self.err_columns.clone(),
            redshift: self.redshift_column.clone(),
            id: Some(self.id_column.clone()),
            unit: self.unit.clone(),
            error_floor: self.error_floor,
        }
    }

    /// Fits every row with a loaded model (`out` is checked first, written by [`Self::write`]).
    /// Rows that cannot be fitted have their reason in `status`.
    pub fn fit(&self, model: &LoadedModel, log: &dyn Fn(&str)) -> Result<CatalogFit> {
        self.fit_with_progress(model, log, &|_, _, _| {})
    }

    /// [`Self::fit`] reporting (stage, done, total) of its long steps.
    pub fn fit_with_progress(
        &self,
        model: &LoadedModel,
        log: &dyn Fn(&str),
        progress: &(dyn Fn(&str, usize, usize) + Sync),
    ) -> Result<CatalogFit> {
        self.validate()?;
        if let Some(out) = &self.out {
            crate::check_output(out, self.overwrite)?;
        }
        let exact = model.exact_model(self.refine, log)?;
        let refine = if exact.is_some() { super::refine_settings(self.refine, self.sys_err)? } else { None };
        let exact = match (self.free_logu, exact) {
            (false, e) => e,
            (true, Some(f)) => Some(super::free_logu(f)?),
            (true, None) => {
                return Err(Error::unsupported(
                    "free_logu",
                    "log U is freed in the exact posteriors, and this fit has none (refine is off)",
                ));
            }
        };
        let forward = match (self.ppc, exact) {
            (_, Some(f)) => Some(f),
            (true, None) => model.ppc_model(log),
            (false, None) => None,
        };
        let z_source = match (self.photo_z_only, self.photo_z) {
            (true, _) => RedshiftSource::PhotometricOnly(self.photo_z_settings),
            (false, true) => RedshiftSource::Photometric(self.photo_z_settings),
            (false, false) => RedshiftSource::Column(self.photo_z_settings),
        };
        // photometric redshifts need the forward model even for network-only posteriors
        let forward = match forward {
            Some(f) => Some(f),
            None if self.photo_z
                || self.photo_z_only
                || !crate::products::catalog_fit::has_column(&self.catalog, &self.redshift_column)? =>
            {
                Some(model.forward_model(log)?)
            }
            None => None,
        };
        fit_catalog(
            &model.post,
            &self.catalog,
            &self.columns(),
            z_source,
            self.draws,
            self.seed,
            forward.as_ref(),
            self.ppc,
            refine,
            log,
            progress,
        )
    }

    /// Writes the fit to `out` (atomically), if given.
    pub fn write(&self, fit: &CatalogFit) -> Result<()> {
        match &self.out {
            Some(o) => write_fit_csv(o, fit),
            None => Ok(()),
        }
    }
}

fn check_error_floor(v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(Error::invalid("error_floor", v, "must be a finite fraction ≥ 0"));
    }
    Ok(())
}

/// Posterior draws for rows of photometry in memory: single pixels ([`Self::pixels`]), or whole
/// galaxies' integrated photometry ([`Self::integrated`]: `error_floor` set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleRequest {
    /// Draws per row (the Python keyword `n`).
    pub n: usize,
    pub seed: u64,
    /// Some: the rows are integrated photometry, with this fractional error floor
    /// ([`crate::inference::integrated::sample_integrated`]); None: single pixels.
    pub error_floor: Option<f64>,
    pub refine: bool,
    /// With `refine`: systematic error (at least `error_floor` is used).
    pub sys_err: f64,
}

impl Default for SampleRequest {
    fn default() -> Self {
        Self::pixels()
    }
}

impl SampleRequest {
    /// Single pixels ([`DEFAULT_DRAWS`]).
    pub fn pixels() -> Self {
        Self { n: DEFAULT_DRAWS, seed: DEFAULT_SEED, error_floor: None, refine: true, sys_err: super::DEFAULT_SYS_ERR }
    }

    /// Integrated photometry of whole galaxies ([`DEFAULT_FIT_DRAWS`], [`DEFAULT_ERROR_FLOOR`]).
    pub fn integrated() -> Self {
        Self { n: DEFAULT_FIT_DRAWS, error_floor: Some(DEFAULT_ERROR_FLOOR), ..Self::pixels() }
    }

    pub fn validate(&self) -> Result<()> {
        super::at_least("n", self.n, 1, "the number of posterior draws per row")?;
        if let Some(f) = self.error_floor {
            check_error_floor(f)?;
        }
        super::refine_settings(self.refine, self.sys_err)?;
        Ok(())
    }

    /// Draws [rows × draws × parameters] for flux and σ [rows × bands] (µJy, the model's band
    /// order), `measured` likewise and one redshift per row.
    pub fn run(
        &self,
        model: &LoadedModel,
        flux: &[f64],
        sigma: &[f64],
        measured: &[bool],
        redshift: &[f64],
        log: &dyn Fn(&str),
    ) -> Result<Vec<f32>> {
        self.validate()?;
        let post = &model.post;
        let (rows, nb) = (redshift.len(), post.manifest.bands.len());
        for (what, len) in [("flux", flux.len()), ("err", sigma.len()), ("mask", measured.len())] {
            if len != rows * nb {
                return Err(Error::shape(what, format!("{rows} rows (one redshift each) × {nb} bands = {} values", rows * nb), len));
            }
        }
        let mut d = match self.error_floor {
            None => post.sample(flux, sigma, measured, redshift, self.n, self.seed)?,
            Some(floor) => {
                crate::inference::integrated::sample_integrated(post, flux, sigma, measured, redshift, self.n, self.seed, floor)?
            }
        };
        if let Some(settings) = super::refine_settings(self.refine, self.sys_err)?
            && let Some((fwd, prior)) = model.exact_model(true, log)?
        {
            let settings = crate::inference::refine::RefineSettings {
                sys_frac: settings.sys_frac.max(self.error_floor.unwrap_or(0.0)),
                integrated: self.error_floor.is_some(),
                ..settings
            };
            let names = post.parameter_names();
            crate::inference::refine::refine_all(
                &fwd,
                &prior,
                flux,
                sigma,
                measured,
                redshift,
                &names,
                &mut d,
                settings,
                self.seed ^ sbipix_sim::streams::REFINE,
                &|_| {},
            )?;
        }
        Ok(d)
    }
}
