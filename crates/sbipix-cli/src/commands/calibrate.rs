//! `sbipix calibrate`: a model's marginal posteriors calibrated on fresh simulations (a copy of
//! the model holding per-parameter quantile maps).

use super::log;
use anyhow::Result;
use sbipix::request::CalibrateRequest;
use std::path::PathBuf;

fn d() -> CalibrateRequest {
    CalibrateRequest::default()
}

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Model folder, or a built-in model: `default`, `sbipix2025`.
    #[arg(long, default_value_t = d().model)]
    pub model: String,
    /// Number of fresh test simulations (before the S/N cut).
    #[arg(long, default_value_t = d().n)]
    pub n: usize,
    /// Seed of the test simulations: use one that neither the training set nor the validation
    /// that checks the calibration uses.
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    /// Posterior draws per test case.
    #[arg(long, default_value_t = d().draws)]
    pub draws: usize,
    /// The map selection: mean S/N over F277W, F356W, F444W.
    #[arg(long, default_value_t = d().snr_min)]
    pub snr_min: f64,
    /// The calibrated model folder (a copy of the model with the quantile maps in model.json).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(a: CalibrateArgs) -> Result<()> {
    let req =
        CalibrateRequest { model: a.model, n: a.n, seed: a.seed, draws: a.draws, snr_min: a.snr_min, out: a.out, overwrite: a.overwrite };
    let info = req.run(&log)?;
    outln!("coverage of the {} test cases with S/N > {} (seed {}), before → after:", info.n_selected, info.snr_min, info.seed)?;
    outln!("{:<24} {:>16} {:>16}", "parameter", "68 %", "95 %")?;
    for (name, b) in &info.coverage_before {
        let a = info.coverage_after[name];
        outln!("{:<24} {:>16} {:>16}", name, format!("{:.3} → {:.3}", b[0], a[0]), format!("{:.3} → {:.3}", b[1], a[1]))?;
    }
    outln!("calibrated model written to {} ({:.0} s)", req.out.display(), info.seconds)?;
    log("sbipix: these cases chose the maps: check them on fresh ones, sbipix validate --model OUT --seed S (another seed)");
    Ok(())
}
