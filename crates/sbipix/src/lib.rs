//! # sbipix
//!
//! The facade of the sbipix workspace: re-exports the component crates and wires them into
//! pipelines. See the README for the command-line tool.

pub mod catalog;
pub mod map_plots;
pub mod maps;
pub mod models;
pub mod posterior;
pub mod synthetic;
pub mod training_set;
pub mod validate;

pub use sbipix_flow as flow;
pub use sbipix_io as io;
pub use sbipix_sim as sim;
pub use sbipix_sps as sps;

pub use catalog::{ParamTable, photometry_catalog};
pub use models::{FilterChoice, build_sps_model};

/// Errors of the pipelines: a component's error, with context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] sbipix_io::IoError),
    #[error(transparent)]
    Sps(#[from] sbipix_sps::SpsError),
    #[error(transparent)]
    Sim(#[from] sbipix_sim::SimError),
    #[error(transparent)]
    Flow(#[from] sbipix_flow::FlowError),
    #[error("{file}, row {row} (line {line}){column}: {reason}")]
    Row { file: String, row: usize, line: usize, column: String, reason: String },
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The built-in default model: `models/default` in the source tree (committed, reproducible by
/// the command in its `model.json` notes), or `$SBIPIX_DEFAULT_MODEL`.
pub fn default_model_dir() -> std::result::Result<std::path::PathBuf, String> {
    if let Some(p) = std::env::var_os("SBIPIX_DEFAULT_MODEL") {
        return Ok(p.into());
    }
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/default");
    if p.join("model.json").is_file() {
        Ok(p)
    } else {
        Err(format!("the default model is missing ({}); train one with `sbipix train` or set SBIPIX_DEFAULT_MODEL", p.display()))
    }
}
