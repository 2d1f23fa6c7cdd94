//! `sbipix train`: a neural posterior estimator trained on a training set.

use super::log;
use anyhow::Result;
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use sbipix::flow::train::Schedule;
use sbipix::request::{FlowKind, TrainRequest};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowArg {
    /// Neural spline flow with coupling layers (default: cheap in both directions).
    Nsf,
    /// Masked autoregressive flow (sbi's default).
    Maf,
}

impl From<FlowKind> for FlowArg {
    fn from(k: FlowKind) -> Self {
        match k {
            FlowKind::Nsf => FlowArg::Nsf,
            FlowKind::Maf => FlowArg::Maf,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Plateau,
    Cosine,
}

impl From<Schedule> for ScheduleArg {
    fn from(s: Schedule) -> Self {
        match s {
            Schedule::Plateau => ScheduleArg::Plateau,
            Schedule::Cosine => ScheduleArg::Cosine,
        }
    }
}

fn d() -> TrainRequest {
    TrainRequest::default()
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training set folder (from `sbipix simulate`).
    #[arg(long)]
    pub data: PathBuf,
    /// Output model folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = d().flow.into())]
    pub flow: FlowArg,
    /// Flow transforms (coupling layers / MADEs).
    #[arg(long, default_value_t = d().layers)]
    pub layers: usize,
    /// Hidden units per layer.
    #[arg(long, default_value_t = d().hidden)]
    pub hidden: usize,
    /// Hidden layers of each conditioner (NSF) / hidden blocks after the first (MAF).
    #[arg(long, default_value_t = d().hidden_layers)]
    pub hidden_layers: usize,
    /// Spline bins (NSF).
    #[arg(long, default_value_t = d().bins)]
    pub bins: usize,
    /// Width of the MLP (two hidden layers) of a conditional affine map before the spline
    /// couplings (NSF); 0 = none. It centres and scales each posterior from the data, which the
    /// narrow posteriors of bright pixels need (docs/inference.md).
    #[arg(long, default_value_t = d().affine_hidden)]
    pub affine_hidden: usize,
    /// Infer only these parameters of the training set (comma-separated, in this order); default:
    /// all of them. The default model infers log_mstar,log_sfr_100myr,mass_weighted_age_gyr,logzsol,av_mag,
    /// log_tau_gyr,log_age_fraction (with --affine-hidden 128; why: docs/inference.md).
    #[arg(long, value_delimiter = ',')]
    pub params: Option<Vec<String>>,
    /// The network's input encoding per band: `asinh_flux` (asinh of the flux over the survey's
    /// σ scale, the default) or `snr_depth` (asinh of the S/N); both also see ln σ relative to the
    /// scale (docs/validation.md, *Input encoding*).
    #[arg(long, value_parser = parse_encoding)]
    pub encoding: Option<sbipix::sim::EncodingKind>,
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    #[arg(long, default_value_t = d().batch_size)]
    pub batch_size: usize,
    /// Learning rate (default: 1e-3 NSF, 5e-4 MAF).
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = d().max_epochs)]
    pub max_epochs: usize,
    /// Learning-rate schedule: `plateau` (halve after 5 epochs without improvement) or `cosine`
    /// (smooth decay to 1e-5 at --max-epochs).
    #[arg(long, value_enum, default_value_t = d().schedule.into())]
    pub schedule: ScheduleArg,
    /// Stop after this many epochs without improvement of the validation loss.
    #[arg(long, default_value_t = d().patience)]
    pub patience: usize,
    /// Checkpoint folder (default: OUT.checkpoint).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing output folder.
    #[arg(long)]
    pub overwrite: bool,
}

impl TrainArgs {
    fn request(self, threads: Option<usize>) -> TrainRequest {
        TrainRequest {
            data: self.data,
            out: self.out,
            flow: match self.flow {
                FlowArg::Nsf => FlowKind::Nsf,
                FlowArg::Maf => FlowKind::Maf,
            },
            layers: self.layers,
            hidden: self.hidden,
            hidden_layers: self.hidden_layers,
            bins: self.bins,
            affine_hidden: self.affine_hidden,
            params: self.params,
            encoding: self.encoding,
            seed: self.seed,
            batch_size: self.batch_size,
            lr: self.lr,
            max_epochs: self.max_epochs,
            schedule: match self.schedule {
                ScheduleArg::Plateau => Schedule::Plateau,
                ScheduleArg::Cosine => Schedule::Cosine,
            },
            patience: self.patience,
            checkpoint: self.checkpoint,
            resume: self.resume,
            overwrite: self.overwrite,
            threads,
        }
    }
}

pub fn run(a: TrainArgs, threads: Option<usize>) -> Result<()> {
    let req = a.request(threads);
    req.validate()?;
    let bar = ProgressBar::new(req.max_epochs as u64);
    bar.set_style(ProgressStyle::with_template("train {bar:30} epoch {pos}/{len} {msg} [{elapsed_precise}]").expect("valid template"));
    let t0 = std::time::Instant::now();
    let (m, report) = req.run(&mut |e| {
        bar.set_position(e.epoch as u64);
        bar.set_message(format!("train {:.4} val {:.4} lr {:.1e} ({:.1} s/epoch)", e.train_loss, e.val_loss, e.learning_rate, e.seconds));
    })?;
    bar.finish_and_clear();
    log(&format!(
        "sbipix: trained {} epochs in {:.0} s (best epoch {}, validation log q = {:.4}{}) → {}",
        report.epochs.len(),
        t0.elapsed().as_secs_f64(),
        report.best_epoch,
        report.best_val_log_prob,
        if report.stopped_early { ", stopped early" } else { "" },
        req.out.display()
    ));
    log(&format!("  parameters: {}", m.parameters.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")));
    Ok(())
}

fn parse_encoding(s: &str) -> Result<sbipix::sim::EncodingKind, String> {
    sbipix::sim::EncodingKind::parse(s).ok_or_else(|| format!("unknown encoding `{s}` (asinh_flux, snr_depth)"))
}
