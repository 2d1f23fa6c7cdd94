//! `sbipix simulate`, `sbipix.simulate`.

use super::{DEFAULT_DROP_RATE, DEFAULT_SEED, DEFAULT_SURVEY};
use crate::inference::snr_focus::SnrFocus;
use crate::inference::training_set::{Manifest, load_survey, merge_dirs, model_for_survey, simulate_to_dir};
use crate::{Error, Result};
use sbipix_sim::{Prior, SimulationSpec};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The SFH family of a built-in prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorFamily {
    /// SBIPIX's delayed-τ prior.
    #[default]
    DelayedTau,
    /// SBIPIX's dense_basis prior.
    DenseBasis,
    /// sbipix's physical delayed-τ prior: the mass formed per kpc² on 0.03″ pixels
    /// ([`Prior::physical_delayed_tau`]).
    Physical,
}

impl PriorFamily {
    /// The built-in prior.
    pub fn prior(self) -> Prior {
        match self {
            Self::DelayedTau => Prior::sbipix_delayed_tau(),
            Self::DenseBasis => Prior::sbipix_dense_basis(),
            Self::Physical => Prior::physical_delayed_tau(),
        }
    }

    /// The built-in prior as TOML (a starting point for one's own).
    pub fn toml(self) -> &'static str {
        match self {
            Self::DelayedTau => sbipix_sim::prior::DELAYED_TAU_TOML,
            Self::DenseBasis => sbipix_sim::prior::DENSE_BASIS_TOML,
            Self::Physical => sbipix_sim::prior::DELAYED_TAU_PHYSICAL_TOML,
        }
    }
}

impl std::str::FromStr for PriorFamily {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "delayed_tau" | "delayed-tau" => Ok(Self::DelayedTau),
            "dense_basis" | "dense-basis" => Ok(Self::DenseBasis),
            "physical" => Ok(Self::Physical),
            _ => Err(Error::invalid("sfh", s, "unknown built-in prior (delayed_tau, dense_basis, physical)")),
        }
    }
}

/// A training set: prior draws → forward model → survey noise, written as `.npy` files and a
/// manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulateRequest {
    /// Number of simulations (no default: at least 1).
    pub n: usize,
    /// The same seed gives byte-identical files whatever the thread count.
    pub seed: u64,
    /// Prior file (TOML); None: the built-in prior of `sfh`.
    pub prior: Option<PathBuf>,
    pub sfh: PriorFamily,
    /// A built-in survey name or a survey file.
    pub survey: String,
    /// Probability that a band is marked missing in a simulation.
    pub drop_rate: f64,
    /// Keep the first `n` simulations whose S/N lies in a window, plus a fraction of the others
    /// ([`crate::inference::snr_focus`]); None: every simulation.
    pub snr_focus: Option<SnrFocus>,
    /// Output folder (must not exist unless `overwrite`).
    pub out: PathBuf,
    pub overwrite: bool,
}

impl Default for SimulateRequest {
    fn default() -> Self {
        Self {
            n: 0,
            seed: DEFAULT_SEED,
            prior: None,
            sfh: PriorFamily::default(),
            survey: DEFAULT_SURVEY.into(),
            drop_rate: DEFAULT_DROP_RATE,
            snr_focus: None,
            out: PathBuf::new(),
            overwrite: false,
        }
    }
}

impl SimulateRequest {
    /// Refuses bad numbers: n ≥ 1, a drop rate in [0, 1), an S/N window that keeps something.
    pub fn validate(&self) -> Result<()> {
        super::at_least("n", self.n, 1, "the number of simulations")?;
        if !(0.0..1.0).contains(&self.drop_rate) {
            return Err(Error::invalid("drop_rate", self.drop_rate, "a probability must lie in [0, 1)"));
        }
        if let Some(f) = &self.snr_focus {
            f.validate()?;
        }
        Ok(())
    }

    /// The prior: the file, or the built-in one of `sfh`.
    pub fn load_prior(&self) -> Result<Prior> {
        match &self.prior {
            Some(p) => Ok(Prior::from_toml_str(&crate::error::read_file(p)?, &p.display().to_string())?),
            None => Ok(self.sfh.prior()),
        }
    }

    /// Simulates and writes the training set (atomically); `progress(done)`.
    pub fn run(&self, log: &dyn Fn(&str), progress: &(dyn Fn(usize) + Sync)) -> Result<Manifest> {
        self.validate()?;
        let prior = self.load_prior()?;
        let (survey, base) = load_survey(&self.survey)?;
        if self.out.exists() && !self.overwrite {
            return Err(sbipix_io::IoError::OutputExists { path: self.out.clone() }.into());
        }
        let store = sbipix_io::DataStore::from_env()?;
        let model = model_for_survey(&store, &survey, &base, sbipix_sps::ModelConfig::default(), log)?;
        let spec = SimulationSpec { n: self.n, seed: self.seed, drop_rate: self.drop_rate };
        simulate_to_dir(&model, &prior, &survey, spec, self.snr_focus, &self.out, self.overwrite, progress)
    }
}

/// Training sets merged into one (`sbipix merge`): sets that differ only in the redshift range of
/// their prior, e.g. extra simulations where the network needs more examples
/// ([`crate::inference::training_set::merge_dirs`] says why only the redshift may differ).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MergeRequest {
    /// The training sets, at least two.
    pub data: Vec<PathBuf>,
    /// Output folder (must not exist unless `overwrite`).
    pub out: PathBuf,
    pub overwrite: bool,
}

impl MergeRequest {
    /// Checks the sets and writes the merged set (atomically).
    pub fn run(&self) -> Result<Manifest> {
        merge_dirs(&self.data, &self.out, self.overwrite)
    }
}
