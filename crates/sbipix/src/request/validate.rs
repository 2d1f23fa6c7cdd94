//! `sbipix validate`, `sbipix.validate`.

use super::{
    DEFAULT_DRAWS, DEFAULT_MODEL, DEFAULT_REFERENCE_PARTICLES, DEFAULT_SNR_MIN, DEFAULT_VALIDATION_CASES, DEFAULT_VALIDATION_SEED,
    MIN_REFERENCE_PARTICLES,
};
use crate::validation::mismatch::{MismatchReport, validate_against};
use crate::validation::simulated::{ReferenceOptions, ValidationReport, validate};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A model validated on fresh simulations from its own prior and survey, or (with `against`) on
/// an atlas made by another code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValidateRequest {
    /// Model folder, or [`DEFAULT_MODEL`].
    pub model: String,
    /// Fresh test simulations.
    pub n: usize,
    /// Seed of the test simulations (use one the training set did not).
    pub seed: u64,
    /// Posterior draws per test case.
    pub draws: usize,
    /// The map selection applied to the headline metrics.
    pub snr_min: f64,
    /// Validate the likelihood-refined posteriors.
    pub refine: bool,
    pub sys_err: f64,
    /// Also fit the first this many selected cases with the SMC reference posterior.
    pub reference: usize,
    /// SMC particles (= draws) per reference posterior.
    pub reference_particles: usize,
    /// Instead: a delayed-τ atlas made by another code (the SBIPIX FSPS atlas CSV format).
    pub against: Option<PathBuf>,
    /// With `against`: the atlas fluxes already include the (1+z) of f_ν.
    pub atlas_has_1pz: bool,
    /// Test pixels like these data (a FLUX/ERR cube, as `sbipix map --cube` reads it): their
    /// noise, band masks and S/N ([`crate::validation::like`]).
    pub like: Option<super::ImageInput>,
    /// Test cases from another model's prior and survey (a model folder or built-in name): two
    /// models scored on identical pixels, e.g. the default on `sbipix2025`'s JADES-like ones.
    pub cases_from: Option<String>,
    /// Output folder: metrics.json, report.md and figures.
    pub out: PathBuf,
    pub overwrite: bool,
}

impl Default for ValidateRequest {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            n: DEFAULT_VALIDATION_CASES,
            seed: DEFAULT_VALIDATION_SEED,
            draws: DEFAULT_DRAWS,
            snr_min: DEFAULT_SNR_MIN,
            refine: false,
            sys_err: super::default_sys_err(),
            reference: 0,
            reference_particles: DEFAULT_REFERENCE_PARTICLES,
            against: None,
            atlas_has_1pz: false,
            like: None,
            cases_from: None,
            out: PathBuf::from("sbipix-validation"),
            overwrite: false,
        }
    }
}

/// What [`ValidateRequest::run`] measured.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Validation {
    Simulated(Box<ValidationReport>),
    Against(MismatchReport),
}

impl ValidateRequest {
    /// Refuses bad numbers: n ≥ 1, draws ≥ 10 (for intervals; ≥ 1 against an atlas), a finite
    /// S/N cut, `sys_err` in [0, 1) when refining, ≥ 100 SMC particles when reference
    /// posteriors are asked for; refinement and reference posteriors, which a validation against
    /// an atlas does not do.
    pub fn validate(&self) -> Result<()> {
        if self.against.is_some() {
            super::at_least("draws", self.draws, 1, "the number of posterior draws per case")?;
            // the atlas validation samples the network only: asking for more must not pass silently
            if self.refine {
                return Err(Error::invalid("refine", true, "does not apply to a validation against an atlas (against)"));
            }
            if self.reference > 0 {
                return Err(Error::invalid("reference", self.reference, "does not apply to a validation against an atlas (against)"));
            }
            if self.like.is_some() {
                return Err(Error::invalid("like", "(data)", "does not apply to a validation against an atlas (against)"));
            }
            if let Some(m) = &self.cases_from {
                return Err(Error::invalid("cases_from", m, "does not apply to a validation against an atlas (against)"));
            }
        } else {
            super::at_least("n", self.n, 1, "the number of test cases")?;
            super::at_least("draws", self.draws, 10, "the number of posterior draws per case (for intervals)")?;
        }
        super::finite("snr_min", self.snr_min, "the S/N cut")?;
        super::refine_settings(self.refine, self.sys_err)?;
        if self.reference > 0 {
            super::at_least("reference_particles", self.reference_particles, MIN_REFERENCE_PARTICLES, "the number of SMC particles")?;
        }
        Ok(())
    }

    /// Runs the validation and writes `out` (atomically).
    pub fn run(&self, log: &(dyn Fn(&str) + Sync)) -> Result<Validation> {
        self.validate()?;
        let model = super::resolve_model(&self.model)?;
        if let Some(atlas) = &self.against {
            let r =
                validate_against(&model, atlas, self.seed, self.draws, self.snr_min, !self.atlas_has_1pz, &self.out, self.overwrite, log)?;
            return Ok(Validation::Against(r));
        }
        let store = sbipix_io::DataStore::from_env()?;
        let reference = ReferenceOptions { cases: self.reference, particles: self.reference_particles };
        let refine = super::refine_settings(self.refine, self.sys_err)?;
        let like = match &self.like {
            Some(input) => Some(input.load(log)?),
            None => None,
        };
        let cases_from = self.cases_from.as_deref().map(super::resolve_model).transpose()?;
        let r = validate(
            &store,
            &model,
            self.n,
            self.seed,
            self.draws,
            self.snr_min,
            refine,
            reference,
            like.as_ref(),
            cases_from.as_deref(),
            &self.out,
            self.overwrite,
            log,
        )?;
        Ok(Validation::Simulated(Box::new(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atlas_validation_refuses_what_it_does_not_do() {
        let against = ValidateRequest { against: Some("atlas.csv".into()), ..ValidateRequest::default() };
        assert!(against.validate().is_ok());
        for (req, name) in [
            (ValidateRequest { refine: true, ..against.clone() }, "refine"),
            (ValidateRequest { reference: 10, ..against.clone() }, "reference"),
        ] {
            let e = req.validate().unwrap_err();
            assert!(matches!(&e, Error::InvalidArgument { name: n, .. } if n == name), "{e}");
        }
    }
}
