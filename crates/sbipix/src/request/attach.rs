//! `sbipix attach`: a model with a companion network for sparse band sets.

use crate::Result;
use crate::inference::model::{Posterior, attach_companion};
use std::path::PathBuf;

/// A copy of `model` whose pixels with band sets its training rarely had, and `companion`'s
/// training often, are sampled by `companion` ([`crate::inference::model`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AttachRequest {
    /// Model folder, or a built-in name.
    pub model: String,
    /// The companion's model folder, or a built-in name: the same parameters, bands, encoding and
    /// prior as `model`, trained (and calibrated) on the sparse band sets.
    pub companion: String,
    pub out: PathBuf,
    pub overwrite: bool,
}

impl AttachRequest {
    /// Checks both models and writes `out` (atomically); returns the loaded result.
    pub fn run(&self) -> Result<Posterior> {
        let model = super::resolve_model(&self.model)?;
        let companion = super::resolve_model(&self.companion)?;
        attach_companion(&model, &companion, &self.out, self.overwrite)
    }
}
