//! # sbipix
//!
//! The facade of the sbipix workspace: re-exports the component crates and wires them into
//! pipelines. See the README for the command-line tool.

pub mod catalog;
pub mod fit;
pub mod map_plots;
pub mod maps;
pub mod models;
pub mod population;
pub mod posterior;
pub mod reference;
pub mod refine;
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

/// Checks, before any long work, that the output `out` can be written: it must not exist unless
/// `overwrite`, and its folder must. Returns that folder.
pub fn check_output(out: &std::path::Path, overwrite: bool) -> Result<std::path::PathBuf> {
    let file = out.display().to_string();
    if out.exists() && !overwrite {
        return Err(Error::File { file, reason: "already exists (use --overwrite to replace it)".into() });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::File { file, reason: format!("folder {} does not exist", parent.display()) });
    }
    Ok(parent)
}

/// Writes the folder `out` atomically: `fill` writes into a temporary folder beside it, which
/// then replaces `out` (if `overwrite`; else an existing `out` is an error). On any error
/// nothing is left behind and `out` is untouched.
pub fn write_dir_atomic(out: &std::path::Path, overwrite: bool, fill: impl FnOnce(&std::path::Path) -> Result<()>) -> Result<()> {
    let parent = check_output(out, overwrite)?;
    let ferr = |p: &std::path::Path, e: String| Error::File { file: p.display().to_string(), reason: e };
    let tmp = tempfile::Builder::new().prefix(".sbipix-tmp-").tempdir_in(&parent).map_err(|e| ferr(&parent, e.to_string()))?;
    fill(tmp.path())?;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| ferr(out, e.to_string()))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        ferr(out, e.to_string())
    })
}

/// The files of the built-in default model (`models/default`), embedded in the binary.
const DEFAULT_MODEL_FILES: [(&str, &[u8]); 6] = [
    ("model.json", include_bytes!("../../../models/default/model.json")),
    ("flow.json", include_bytes!("../../../models/default/flow.json")),
    ("weights.safetensors", include_bytes!("../../../models/default/weights.safetensors")),
    ("prior.toml", include_bytes!("../../../models/default/prior.toml")),
    ("survey.toml", include_bytes!("../../../models/default/survey.toml")),
    ("training_report.json", include_bytes!("../../../models/default/training_report.json")),
];

/// The built-in default model folder: `$SBIPIX_DEFAULT_MODEL` if set, else the model embedded in
/// the binary, written once into the data folder (`$SBIPIX_DATA/models/default-<hash>`).
pub fn default_model_dir() -> std::result::Result<std::path::PathBuf, String> {
    if let Some(p) = std::env::var_os("SBIPIX_DEFAULT_MODEL") {
        return Ok(p.into());
    }
    let store = sbipix_io::DataStore::from_env().map_err(|e| e.to_string())?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, bytes) in DEFAULT_MODEL_FILES {
        for b in bytes.iter() {
            h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    let root = store.dir().parent().map(|p| p.to_path_buf()).unwrap_or_else(|| store.dir());
    let dir = root.join("models").join(format!("default-{h:016x}"));
    if dir.join("model.json").is_file() {
        return Ok(dir);
    }
    let parent = root.join("models");
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = tempfile::Builder::new().prefix(".default-").tempdir_in(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    for (name, bytes) in DEFAULT_MODEL_FILES {
        std::fs::write(tmp.path().join(name), bytes).map_err(|e| format!("{name}: {e}"))?;
    }
    let kept = tmp.keep();
    if std::fs::rename(&kept, &dir).is_err() {
        // another process won the race
        let _ = std::fs::remove_dir_all(&kept);
    }
    Ok(dir)
}
