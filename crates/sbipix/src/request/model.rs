//! A model folder loaded once, with the forward model it was trained with built on first use.

use crate::inference::model::Posterior;
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// The forward model (bands in the posterior's order) and the prior a model was trained with:
/// what posterior-predictive checks and likelihood refinement need.
pub type ForwardModel = (Arc<sbipix_sps::SpsModel>, sbipix_sim::Prior);

/// A loaded posterior and, built on first use and then kept, its [`ForwardModel`]. The command
/// line makes one per run; the Python `Model` holds one, so a notebook or a Dask worker builds
/// the forward model once however many galaxies it maps.
pub struct LoadedModel {
    pub post: Posterior,
    /// Not tried yet (None), built, or why it could not be built (the reason is kept so the
    /// data store is not asked again for every galaxy).
    forward: Mutex<Option<std::result::Result<ForwardModel, String>>>,
}

impl LoadedModel {
    /// Loads the model `name` stands for ([`super::resolve_model`]).
    pub fn load(name: &str) -> Result<Self> {
        let dir = super::resolve_model(name)?;
        Ok(Self::new(Posterior::load(&dir)?))
    }

    pub fn new(post: Posterior) -> Self {
        Self { post, forward: Mutex::new(None) }
    }

    /// The forward model, built now if it was not tried before; an error if it cannot be built
    /// (the model data missing, a model folder without `prior.toml` or `survey.toml`).
    pub fn forward_model(&self, log: &dyn Fn(&str)) -> Result<ForwardModel> {
        // a poisoned lock only means another thread panicked while building: try again
        let mut slot = self.forward.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(Ok(f)) => Ok(f.clone()),
            Some(Err(why)) => Err(Error::unsupported("the forward model of this model", format!("it could not be built: {why}"))),
            None => {
                let built = sbipix_io::DataStore::from_env()
                    .map_err(Error::from)
                    .and_then(|store| crate::inference::ppc::ppc_model(&store, &self.post, log));
                *slot = Some(built.as_ref().map(Clone::clone).map_err(|e| crate::error::full_message(e)));
                built
            }
        }
    }

    /// The forward model for a posterior-predictive check, or None with a warning logged (once):
    /// the check is a convenience, and without the stellar-population data the maps are still
    /// made.
    pub fn ppc_model(&self, log: &dyn Fn(&str)) -> Option<ForwardModel> {
        let tried = self.forward.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        match self.forward_model(log) {
            Ok(f) => Some(f),
            Err(e) => {
                if !tried {
                    log(&format!("sbipix: warning: no posterior-predictive check ({e}); results are made without it"));
                }
                None
            }
        }
    }

    /// The forward model and prior for exact (likelihood) posteriors, when `refine` asks for them:
    /// None without; an error, with the way out, when the stellar-population data cannot be had
    /// or the model's prior has no exact form (a dense_basis prior with a fixed mass or SFR).
    pub fn exact_model(&self, refine: bool, log: &dyn Fn(&str)) -> Result<Option<ForwardModel>> {
        if !refine {
            return Ok(None);
        }
        let f = self.forward_model(log).map_err(|e| {
            Error::unsupported(
                "exact posteriors (the default)",
                format!("{} — map with the network alone with --fast (Python: refine=False)", crate::error::full_message(&e)),
            )
        })?;
        // the prior must have a shape space (delayed-τ; dense_basis with mass and SFR free)
        // (a physical prior's mass bounds depend on the redshift; any one tells whether it has a space)
        crate::inference::likelihood::ShapeSpace::of(&f.1.at_redshift(1.0, &f.0.config().cosmology)).map_err(|e| {
            Error::unsupported(
                "exact posteriors (the default) for this model",
                format!("{} — map with the network alone with --fast (Python: refine=False)", crate::error::full_message(&e)),
            )
        })?;
        Ok(Some(f))
    }
}
