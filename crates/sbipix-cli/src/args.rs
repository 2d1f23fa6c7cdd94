//! What the user typed: the command line and the option groups several commands share. Each
//! command's own options live beside it in [`crate::commands`]; every default comes from the
//! library's requests (`sbipix::request`).

use crate::commands::{attach, calibrate, data, demo, fit, map, merge, photometry, prior, simulate, survey, train, validate};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sbipix",
    version,
    about = "Maps of stellar mass, SFR, age, metallicity and dust from JWST/HST pixels by simulation-based inference"
)]
pub struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the model data (SSP, nebular and dust grids, filter curves).
    Data {
        #[command(subcommand)]
        action: data::DataAction,
    },
    /// Forward model: photometry of galaxies from their physical parameters (CSV in, CSV out).
    Photometry(photometry::PhotometryArgs),
    /// Map every galaxy of a manifest (`sbipix survey --manifest galaxies.csv --out DIR`): shared
    /// model, resumable, population outputs (galaxies.csv, outshining figure). Subcommands: survey
    /// noise models (learn, show) and `segment` (a manifest from a field's S/N image).
    #[command(args_conflicts_with_subcommands = true)]
    Survey {
        #[command(subcommand)]
        action: Option<survey::SurveyAction>,
        #[command(flatten)]
        run: survey::SurveyRunArgs,
    },
    /// Priors: print a built-in prior as TOML (a starting point for your own).
    Prior {
        #[command(subcommand)]
        action: prior::PriorAction,
    },
    /// Simulate a training set: prior draws → forward model → survey noise (.npy + manifest).
    Simulate(simulate::SimulateArgs),
    /// Merge training sets that differ only in their prior's redshift range (extra simulations
    /// where the network needs more examples; docs/training-sets.md).
    Merge(merge::MergeArgs),
    /// Train a neural posterior estimator on a training set.
    Train(train::TrainArgs),
    /// Validate a trained model on fresh simulations: accuracy, coverage, SBC, TARP, figures.
    Validate(validate::ValidateArgs),
    /// Calibrate a model's interval widths on fresh simulations: a copy of the model whose
    /// 68 %/95 % intervals hold the truth at their nominal rates (docs/validation.md).
    Calibrate(calibrate::CalibrateArgs),
    /// Give a model a companion network for sparse band sets (a copy of the model): each pixel
    /// is sampled by the network whose training saw more of its band set (docs/validation.md).
    Attach(attach::AttachArgs),
    /// Map the physical parameters of a galaxy from its images (FITS in, FITS + PNG out).
    Map(map::MapArgs),
    /// Fit integrated photometry of a catalogue (CSV, whitespace table or FITS table in; CSV of
    /// posterior percentiles out).
    Fit(fit::FitArgs),
    /// Map a synthetic JADES-like galaxy with known truth using the default model, and report
    /// how well each map matches (or, with --seds, draw the SEDs of example galaxies).
    Demo(demo::DemoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    pub fn is_on(self) -> bool {
        self == OnOff::On
    }
}

impl From<bool> for OnOff {
    fn from(on: bool) -> Self {
        if on { OnOff::On } else { OnOff::Off }
    }
}

/// Exact posteriors or the network alone (`sbipix map`, `fit`, `demo`).
#[derive(Debug, Clone, clap::Args)]
pub struct ExactArgs {
    /// The network's posterior draws alone, without the forward model's likelihood: ≈ 2 ms per
    /// pixel, but only as right as the network is for these data (it learnt one survey's noise;
    /// docs/inference.md). By default every posterior is exact: the likelihood of the observed
    /// photometry with its σ, the network's draws as the proposal.
    #[arg(long)]
    pub fast: bool,
    /// The default (exact posteriors); kept so that older command lines still run.
    #[arg(long, hide = true, conflicts_with = "fast")]
    pub refine: bool,
    /// Systematic error of the photometry, a fraction of each flux added to σ in quadrature
    /// (calibration and model errors that simulations lack; SED codes add 5–10 %). Recorded in
    /// every output.
    #[arg(long, default_value_t = sbipix::request::DEFAULT_SYS_ERR, conflicts_with = "fast")]
    pub sys_err: f64,
}

impl ExactArgs {
    /// Whether the posteriors are exact (not `--fast`).
    pub fn exact(&self) -> bool {
        !self.fast
    }
}

fn pz() -> sbipix::inference::photoz::PhotoZSettings {
    sbipix::inference::photoz::PhotoZSettings::default()
}

/// Photometric redshifts (`sbipix fit`, `sbipix map`): p(z) of the galaxy's integrated light with
/// the exact likelihood on a grid (docs/photo-z.md).
#[derive(Debug, Clone, clap::Args)]
pub struct PhotoZArgs {
    /// Fit photometric redshifts even where a redshift is given (they are fitted anyway when
    /// there is none: no redshift column, no --redshift or REDSHIFT keyword).
    #[arg(long)]
    pub photo_z: bool,
    /// Lowest redshift of the grid.
    #[arg(long, default_value_t = pz().z_min)]
    pub z_min: f64,
    /// Highest redshift of the grid [default: the network's trained range].
    #[arg(long)]
    pub z_max: Option<f64>,
    /// Grid step in ln(1+z).
    #[arg(long, default_value_t = pz().step)]
    pub z_step: f64,
    /// Prior on z: `flat` (uniform in z) or `volume` (∝ dV_c/dz).
    #[arg(long, default_value = "flat")]
    pub z_prior: String,
    /// Shape-space points (templates) per redshift node.
    #[arg(long, default_value_t = pz().templates)]
    pub z_templates: usize,
    /// Redshift draws per galaxy over which the parameters are marginalised.
    #[arg(long, default_value_t = pz().z_draws)]
    pub z_draws: usize,
}

impl PhotoZArgs {
    /// The library's settings (an unknown prior is refused, naming it).
    pub fn settings(&self) -> anyhow::Result<sbipix::inference::photoz::PhotoZSettings> {
        Ok(sbipix::inference::photoz::PhotoZSettings {
            z_min: self.z_min,
            z_max: self.z_max,
            step: self.z_step,
            templates: self.z_templates,
            prior: sbipix::inference::photoz::RedshiftPrior::parse(&self.z_prior)?,
            z_draws: self.z_draws,
        })
    }
}

/// Likelihood refinement of a validation's posteriors (`sbipix validate`).
#[derive(Debug, Clone, clap::Args)]
pub struct RefineArgs {
    /// Validate the exact posteriors (the network's draws as the proposal of the forward
    /// model's likelihood, as `sbipix map` does by default) instead of the network's alone.
    #[arg(long)]
    pub refine: bool,
    /// With --refine: a systematic error, as a fraction of each flux, added to σ in quadrature
    /// (none by default: the test simulations are the model).
    #[arg(long, default_value_t = sbipix::request::ValidateRequest::default().sys_err, requires = "refine")]
    pub sys_err: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ErrorKind {
    /// 1σ error maps.
    Sigma,
    /// Inverse-variance (weight) maps.
    Weight,
}

impl From<sbipix::request::ErrorMaps> for ErrorKind {
    fn from(e: sbipix::request::ErrorMaps) -> Self {
        match e {
            sbipix::request::ErrorMaps::Sigma => ErrorKind::Sigma,
            sbipix::request::ErrorMaps::Weight => ErrorKind::Weight,
        }
    }
}

/// Images of a field or galaxy, as `sbipix map` and `sbipix survey learn` take them.
#[derive(Debug, clap::Args)]
pub struct ImageInputArgs {
    /// A FITS cube with FLUX and ERR HDUs (band, y, x) and BAND0… keywords.
    #[arg(long, conflicts_with = "images")]
    pub cube: Option<PathBuf>,
    /// One FITS image per band …
    #[arg(long, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// … with its error (or weight) map, in the same order …
    #[arg(long, num_args = 1.., conflicts_with = "noise_from")]
    pub errors: Vec<PathBuf>,
    /// … or, without error maps, an empty-sky cutout per band (same order): σ = 1.4826 × MAD of
    /// its pixels, uniform over the image (background-limited noise).
    #[arg(long, num_args = 1..)]
    pub noise_from: Vec<PathBuf>,
    /// Whether --errors are σ or inverse-variance maps.
    #[arg(long, value_enum, default_value_t = sbipix::request::ImageInput::default().error_maps.into())]
    pub error_kind: ErrorKind,
    /// Band names, comma-separated, in array order (`jades` = the 19 SBIPIX bands); default: the
    /// cube's BANDn keywords, or the filter name found in each image's file name.
    #[arg(long)]
    pub bands: Option<String>,
    /// Flux unit of the data (uJy, nJy, 10nJy, 10.0*nanoJansky, mJy, Jy, MJy/sr); default: BUNIT,
    /// else µJy.
    #[arg(long)]
    pub unit: Option<String>,
}

impl ImageInputArgs {
    /// The library's description of these images.
    pub fn input(&self) -> sbipix::request::ImageInput {
        sbipix::request::ImageInput {
            cube: self.cube.clone(),
            images: self.images.clone(),
            errors: self.errors.clone(),
            noise_from: self.noise_from.clone(),
            error_maps: match self.error_kind {
                ErrorKind::Sigma => sbipix::request::ErrorMaps::Sigma,
                ErrorKind::Weight => sbipix::request::ErrorMaps::Weight,
            },
            bands: self.bands.clone(),
            unit: self.unit.clone(),
        }
    }
}
