//! Building forward models from the cached data.

use crate::Result;
use sbipix_io::{DataStore, read_filter_list};
use sbipix_sps::{Filter, ModelConfig, SpsModel};
use std::path::PathBuf;

/// Which filter curves a model uses.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterChoice {
    /// The 19 JADES bands of SBIPIX (sedpy's curves, fetched with the model data).
    Jades,
    /// A list file naming one curve file per line, relative to the list.
    List(PathBuf),
    /// Curves already in memory.
    Given(Vec<Filter>),
}

impl FilterChoice {
    /// Reads the filter curves.
    pub fn load(&self, store: &DataStore, log: &dyn Fn(&str)) -> Result<Vec<Filter>> {
        Ok(match self {
            FilterChoice::Jades => store.jades_filters(log)?,
            FilterChoice::List(p) => read_filter_list(p)?,
            FilterChoice::Given(f) => f.clone(),
        })
    }
}

/// Loads the grids (fetching them on first use) and builds a forward model.
pub fn build_sps_model(store: &DataStore, filters: &FilterChoice, config: ModelConfig, log: &dyn Fn(&str)) -> Result<SpsModel> {
    let filters = filters.load(store, log)?;
    let data = store.load_sps(log)?;
    Ok(SpsModel::new(&data, filters, config)?)
}
