//! `sbipix calibrate`, `sbipix.calibrate`.

use super::{DEFAULT_CALIBRATION_CASES, DEFAULT_CALIBRATION_SEED, DEFAULT_DRAWS, DEFAULT_MODEL, DEFAULT_SNR_MIN};
use crate::Result;
use crate::inference::model::CalibrationInfo;
use crate::validation::calibrate::{CalibrationSettings, calibrate};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A model's marginal posteriors calibrated on fresh simulations from its own prior and survey
/// ([`crate::validation::calibrate`]): writes a copy of the model holding the quantile maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CalibrateRequest {
    /// Model folder, or a built-in name.
    pub model: String,
    /// Fresh test simulations (before the S/N cut).
    pub n: usize,
    /// Seed of the test simulations: neither the training set's nor the one the calibration will
    /// be checked on.
    pub seed: u64,
    /// Posterior draws per test case.
    pub draws: usize,
    pub snr_min: f64,
    /// The calibrated model folder.
    pub out: PathBuf,
    pub overwrite: bool,
}

impl Default for CalibrateRequest {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            n: DEFAULT_CALIBRATION_CASES,
            seed: DEFAULT_CALIBRATION_SEED,
            draws: DEFAULT_DRAWS,
            snr_min: DEFAULT_SNR_MIN,
            out: PathBuf::from("sbipix-calibrated-model"),
            overwrite: false,
        }
    }
}

impl CalibrateRequest {
    /// Refuses n < 100, draws < 10, a non-finite S/N cut.
    pub fn validate(&self) -> Result<()> {
        super::at_least("n", self.n, 100, "the number of test cases")?;
        super::at_least("draws", self.draws, 10, "the number of posterior draws per case (for intervals)")?;
        super::finite("snr_min", self.snr_min, "the S/N cut")
    }

    /// Calibrates and writes `out` (atomically).
    pub fn run(&self, log: &(dyn Fn(&str) + Sync)) -> Result<CalibrationInfo> {
        self.validate()?;
        let model = super::resolve_model(&self.model)?;
        let store = sbipix_io::DataStore::from_env()?;
        let settings = CalibrationSettings { n: self.n, seed: self.seed, draws: self.draws, snr_min: self.snr_min };
        calibrate(&store, &model, &settings, &self.out, self.overwrite, log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_numbers_are_refused_by_name() {
        let name = |r: CalibrateRequest| match r.validate().unwrap_err() {
            crate::Error::InvalidArgument { name, .. } => name,
            e => panic!("{e}"),
        };
        assert_eq!(name(CalibrateRequest { n: 10, ..Default::default() }), "n");
        assert_eq!(name(CalibrateRequest { draws: 5, ..Default::default() }), "draws");
        assert_eq!(name(CalibrateRequest { snr_min: f64::NAN, ..Default::default() }), "snr_min");
        assert!(CalibrateRequest::default().validate().is_ok());
    }
}
