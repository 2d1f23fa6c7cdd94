//! `sbipix attach`: a model with a companion network for sparse band sets.

use anyhow::Result;
use sbipix::request::AttachRequest;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// The main model folder, or a built-in model: `default`, `sbipix2025`.
    #[arg(long)]
    pub model: String,
    /// The companion's model folder: the same parameters, bands, input encoding and prior,
    /// trained (and calibrated) on sparse band sets (e.g. `sbipix simulate --survey` with a
    /// family of few-band patterns).
    #[arg(long)]
    pub companion: String,
    /// The new model folder (a copy of --model with the companion in `sparse/`).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(a: AttachArgs) -> Result<()> {
    let req = AttachRequest { model: a.model, companion: a.companion, out: a.out, overwrite: a.overwrite };
    let post = req.run()?;
    outln!(
        "model with a companion network for sparse band sets written to {} (pixels go to the network whose training had \
         more than {}× the other's share of their band set)",
        req.out.display(),
        sbipix::inference::ood::COMPANION_SHARE_RATIO
    )?;
    if let Some(w) = &post.weights_sha256 {
        outln!("  weights (both networks) SHA-256 {w}")?;
    }
    Ok(())
}
