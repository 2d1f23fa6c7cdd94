//! `sbipix simulate`: a training set.

use super::{log, progress_bar};
use anyhow::Result;
use clap::ValueEnum;
use sbipix::inference::snr_focus::SnrFocus;
use sbipix::request::{PriorFamily, SimulateRequest};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SfhPriorArg {
    /// SBIPIX's delayed-τ prior (mass per pixel)
    DelayedTau,
    /// SBIPIX's dense_basis prior (mass per pixel)
    DenseBasis,
    /// sbipix's physical delayed-τ prior: mass formed per kpc² on 0.03″ pixels
    Physical,
}

impl From<SfhPriorArg> for PriorFamily {
    fn from(a: SfhPriorArg) -> Self {
        match a {
            SfhPriorArg::DelayedTau => PriorFamily::DelayedTau,
            SfhPriorArg::DenseBasis => PriorFamily::DenseBasis,
            SfhPriorArg::Physical => PriorFamily::Physical,
        }
    }
}

impl From<PriorFamily> for SfhPriorArg {
    fn from(f: PriorFamily) -> Self {
        match f {
            PriorFamily::DelayedTau => SfhPriorArg::DelayedTau,
            PriorFamily::DenseBasis => SfhPriorArg::DenseBasis,
            PriorFamily::Physical => SfhPriorArg::Physical,
        }
    }
}

fn d() -> SimulateRequest {
    SimulateRequest::default()
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Number of simulations.
    #[arg(long)]
    pub n: usize,
    /// Random seed: the same seed gives byte-identical files whatever the thread count.
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    /// Prior file (TOML); default: SBIPIX's prior for --sfh.
    #[arg(long)]
    pub prior: Option<PathBuf>,
    /// The built-in prior (ignored with --prior): SBIPIX's of an SFH family, or `physical`.
    #[arg(long, value_enum, default_value_t = d().sfh.into())]
    pub sfh: SfhPriorArg,
    /// Survey: a built-in name (jades) or a survey file.
    #[arg(long, default_value_t = d().survey)]
    pub survey: String,
    /// Probability that a band is marked missing in a simulation.
    #[arg(long, default_value_t = d().drop_rate)]
    pub drop_rate: f64,
    /// Keep the first N simulations whose S/N (mean over F277W, F356W, F444W) lies in MIN,MAX, plus
    /// --outside-fraction of the others: training examples where maps have their pixels, without
    /// changing the posterior learnt (docs/training-sets.md). E.g. 3,100.
    #[arg(long, value_name = "MIN,MAX", value_delimiter = ',')]
    pub focus_snr: Option<Vec<f64>>,
    /// With --focus-snr: the fraction of simulations outside the window that are kept.
    #[arg(long, default_value_t = SnrFocus::default().outside_fraction, requires = "focus_snr")]
    pub outside_fraction: f64,
    /// Output folder (must not exist unless --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(a: SimulateArgs) -> Result<()> {
    if let Some(w) = &a.focus_snr
        && w.len() != 2
    {
        anyhow::bail!("--focus-snr takes two numbers, MIN,MAX (e.g. 3,100); got {}", w.len());
    }
    let req = SimulateRequest {
        n: a.n,
        seed: a.seed,
        prior: a.prior,
        sfh: a.sfh.into(),
        survey: a.survey,
        drop_rate: a.drop_rate,
        snr_focus: a.focus_snr.map(|w| SnrFocus { snr_min: w[0], snr_max: w[1], outside_fraction: a.outside_fraction }),
        out: a.out,
        overwrite: a.overwrite,
    };
    req.validate()?;
    let bar = progress_bar(req.n as u64, "simulate");
    let t0 = std::time::Instant::now();
    let m = req.run(&log, &|k| bar.set_position(k as u64))?;
    bar.finish_and_clear();
    let dt = t0.elapsed().as_secs_f64();
    if let Some(f) = &m.snr_focus {
        log(&format!(
            "sbipix: kept {} of {} simulations: all at S/N {}–{} and {:.0} % of the others",
            m.n,
            f.n_drawn,
            f.focus.snr_min,
            f.focus.snr_max,
            100.0 * f.focus.outside_fraction
        ));
    }
    log(&format!(
        "sbipix: {} simulations ({} parameters, {} bands, survey {}) in {:.1} s ({:.0}/s) → {}",
        m.n,
        m.parameters.len(),
        m.bands.len(),
        m.survey,
        dt,
        m.n as f64 / dt,
        req.out.display()
    ));
    Ok(())
}
