//! What the user typed.

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
        action: DataAction,
    },
    /// Forward model: photometry of galaxies from their physical parameters (CSV in, CSV out).
    Photometry(PhotometryArgs),
    /// Map every galaxy of a manifest (`sbipix survey --manifest galaxies.csv --out DIR`): shared
    /// model, resumable, population outputs (galaxies.csv, outshining figure). Subcommands: survey
    /// noise models (learn, show) and `segment` (a manifest from a field's S/N image).
    #[command(args_conflicts_with_subcommands = true)]
    Survey {
        #[command(subcommand)]
        action: Option<SurveyAction>,
        #[command(flatten)]
        run: SurveyRunArgs,
    },
    /// Priors: print a built-in prior as TOML (a starting point for your own).
    Prior {
        #[command(subcommand)]
        action: PriorAction,
    },
    /// Simulate a training set: prior draws → forward model → survey noise (.npy + manifest).
    Simulate(SimulateArgs),
    /// Train a neural posterior estimator on a training set.
    Train(TrainArgs),
    /// Validate a trained model on fresh simulations: accuracy, coverage, SBC, TARP, figures.
    Validate(ValidateArgs),
    /// Map the physical parameters of a galaxy from its images (FITS in, FITS + PNG out).
    Map(MapArgs),
    /// Fit integrated photometry of a catalogue (CSV, whitespace table or FITS table in; CSV of
    /// posterior percentiles out).
    Fit(FitArgs),
    /// Map a synthetic JADES-like galaxy with known truth using the default model, and report
    /// how well each map matches (or, with --seds, draw the SEDs of example galaxies).
    Demo {
        /// Output folder.
        #[arg(long, default_value = "sbipix-demo")]
        out: PathBuf,
        /// Model folder (or `default`).
        #[arg(long, default_value = "default")]
        model: String,
        /// Instead: forward-model photometry and SEDs of built-in example galaxies.
        #[arg(long)]
        seds: bool,
        /// Instead: a synthetic survey of N galaxies (10⁷–10¹¹ M☉, with truth), mapped with
        /// `sbipix survey`; compares the population results with the known answer.
        #[arg(long, value_name = "N")]
        survey: Option<usize>,
        // --refine / --sys-err: the map demo with every pixel's posterior refined (a few minutes)
        #[command(flatten)]
        refine: RefineArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataAction {
    /// Download (with pip), verify and convert the model data into the cache.
    Fetch {
        /// Fetch again even if a cache exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the cache folder.
    Path,
    /// Check every cached file against its checksum.
    Verify,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SfhArg {
    DelayedTau,
    Exponential,
    Constant,
    Burst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IgmArg {
    Inoue2014,
    Madau1995,
    None,
}

#[derive(Debug, clap::Args)]
pub struct PhotometryArgs {
    /// Input CSV, one galaxy per row: redshift, log_mass_formed, age_gyr, tau_gyr (τ families),
    /// and optionally id, logzsol (0), av_mag (0), logu (−2), eta (1).
    #[arg(long)]
    pub params: PathBuf,
    /// Output CSV.
    #[arg(long)]
    pub out: PathBuf,
    /// Star-formation history family.
    #[arg(long, value_enum, default_value = "delayed-tau")]
    pub sfh: SfhArg,
    /// Filter list file (one curve per line, relative to the list); default: the 19 JADES bands.
    #[arg(long)]
    pub filters: Option<PathBuf>,
    /// IGM absorption model.
    #[arg(long, value_enum, default_value = "inoue2014")]
    pub igm: IgmArg,
    /// DL07 dust emission by energy balance.
    #[arg(long, value_enum, default_value = "on")]
    pub dust_emission: OnOff,
    /// Nebular continuum and lines from stars younger than 10 Myr.
    #[arg(long, value_enum, default_value = "on")]
    pub nebular: OnOff,
    /// Largest redshift the model is set up for.
    #[arg(long, default_value_t = 15.0)]
    pub max_redshift: f64,
    /// Hubble constant, km/s/Mpc.
    #[arg(long, default_value_t = 70.0)]
    pub h0: f64,
    /// Matter density Ω_m (flat ΛCDM).
    #[arg(long, default_value_t = 0.3)]
    pub omega_m: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SfhPriorArg {
    DelayedTau,
    DenseBasis,
}

#[derive(Debug, Subcommand)]
pub enum PriorAction {
    /// Print the built-in prior of an SFH family.
    Show {
        #[arg(long, value_enum, default_value = "delayed-tau")]
        sfh: SfhPriorArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum SurveyAction {
    /// Learn a survey noise model from real per-pixel fluxes and errors.
    Learn(Box<LearnArgs>),
    /// Print a survey (built-in name or file) as TOML.
    Show { survey: String },
    /// Segment a field (threshold + connected components on the S/N image) into a manifest of
    /// galaxies for `sbipix survey`.
    Segment(SegmentArgs),
}

#[derive(Debug, clap::Args)]
pub struct SurveyRunArgs {
    /// Model folder (or `default`).
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Manifest CSV: id, redshift, cube | images + errors (`;`-separated), optional bands, seg +
    /// seg_id, cutout x0,y0,nx,ny, unit. Paths relative to the manifest.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Output folder (galaxies/<id>/…, galaxies.csv, outshining.png); a rerun resumes.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Posterior draws per pixel.
    #[arg(long, default_value_t = 500)]
    pub draws: usize,
    /// Mean S/N over F277W/F356W/F444W a pixel needs.
    #[arg(long, default_value_t = 5.0)]
    pub snr_min: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the posterior-predictive check.
    #[arg(long)]
    pub no_ppc: bool,
}

#[derive(Debug, clap::Args)]
pub struct SegmentArgs {
    /// A FITS cube with FLUX and ERR HDUs.
    #[arg(long)]
    pub cube: PathBuf,
    /// Pixels with mean S/N over F277W/F356W/F444W above this belong to sources.
    #[arg(long, default_value_t = 3.0)]
    pub snr_min: f64,
    /// Smallest source kept (pixels).
    #[arg(long, default_value_t = 20)]
    pub min_pixels: usize,
    /// Redshift written for every source (a field has no single redshift: edit the manifest).
    #[arg(long)]
    pub redshift: f64,
    /// Output folder: seg.fits and manifest.csv.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ErrorKind {
    /// 1σ error maps.
    Sigma,
    /// Inverse-variance (weight) maps.
    Weight,
}

/// Likelihood refinement of the network's posteriors (`sbipix map`, `fit`, `validate`).
#[derive(Debug, Clone, clap::Args)]
pub struct RefineArgs {
    /// Refine every posterior with the forward model's likelihood: the network's draws locate it,
    /// importance sampling (or, where that fails, tempered SMC) makes it exact. Up to 20× sharper
    /// on bright pixels, calibrated; ≈ 0.8 s per pixel on 2 cores instead of 1.6 ms
    /// (docs/inference.md). Delayed-τ models only.
    #[arg(long)]
    pub refine: bool,
    /// With --refine: a systematic error, as a fraction of each flux, added to σ in quadrature
    /// (calibration and model uncertainties the simulations do not have; e.g. 0.03). The
    /// integrated photometry always gets at least --error-floor / the map's 5 %.
    #[arg(long, default_value_t = 0.0, requires = "refine")]
    pub sys_err: f64,
}

impl RefineArgs {
    /// The settings, or None without --refine; a negative or non-finite --sys-err is an error.
    pub fn settings(&self) -> anyhow::Result<Option<sbipix::inference::refine::RefineSettings>> {
        let settings = sbipix::inference::refine::RefineSettings::with_sys_err(self.sys_err, "--sys-err")?;
        Ok(self.refine.then_some(settings))
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
    #[arg(long, value_enum, default_value = "sigma")]
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

#[derive(Debug, clap::Args)]
pub struct LearnArgs {
    /// Fluxes as a .npy array [pixels, bands] (µJy unless --unit).
    #[arg(long, requires = "err", conflicts_with_all = ["cube", "images"])]
    pub flux: Option<PathBuf>,
    /// Errors as a .npy array [pixels, bands]; 0 marks pixels without coverage.
    #[arg(long)]
    pub err: Option<PathBuf>,
    #[command(flatten)]
    pub input: ImageInputArgs,
    /// 1σ limits for bands without coverage: a .npy with one value per band (array order) or a
    /// CSV with columns band,sigma_ujy.
    #[arg(long)]
    pub limits: Option<PathBuf>,
    /// Survey name.
    #[arg(long)]
    pub name: String,
    /// One-line description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Output survey file (TOML).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Number of simulations.
    #[arg(long)]
    pub n: usize,
    /// Random seed: the same seed gives byte-identical files whatever the thread count.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prior file (TOML); default: SBIPIX's prior for --sfh.
    #[arg(long)]
    pub prior: Option<PathBuf>,
    /// SFH family of the built-in prior (ignored with --prior).
    #[arg(long, value_enum, default_value = "delayed-tau")]
    pub sfh: SfhPriorArg,
    /// Survey: a built-in name (jades) or a survey file.
    #[arg(long, default_value = "jades")]
    pub survey: String,
    /// Probability that a band is marked missing in a simulation.
    #[arg(long, default_value_t = 0.1)]
    pub drop_rate: f64,
    /// Output folder (must not exist unless --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowArg {
    /// Neural spline flow with coupling layers (default: cheap in both directions).
    Nsf,
    /// Masked autoregressive flow (sbi's default).
    Maf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ScheduleArg {
    Plateau,
    Cosine,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training set folder (from `sbipix simulate`).
    #[arg(long)]
    pub data: PathBuf,
    /// Output model folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "nsf")]
    pub flow: FlowArg,
    /// Flow transforms (coupling layers / MADEs).
    #[arg(long, default_value_t = 5)]
    pub layers: usize,
    /// Hidden units per layer.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Hidden layers of each conditioner (NSF) / hidden blocks after the first (MAF).
    #[arg(long, default_value_t = 2)]
    pub hidden_layers: usize,
    /// Spline bins (NSF).
    #[arg(long, default_value_t = 8)]
    pub bins: usize,
    /// Width of the MLP (two hidden layers) of a conditional affine map before the spline
    /// couplings (NSF); 0 = none. It centres and scales each posterior from the data, which the
    /// narrow posteriors of bright pixels need (docs/inference.md).
    #[arg(long, default_value_t = 0)]
    pub affine_hidden: usize,
    /// Infer only these parameters of the training set (comma-separated, in this order); default:
    /// all of them. The default model infers log_mstar,log_sfr_100myr,mass_weighted_age_gyr,logzsol,av_mag
    /// (why: docs/inference.md).
    #[arg(long, value_delimiter = ',')]
    pub params: Option<Vec<String>>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Learning rate (default: 1e-3 NSF, 5e-4 MAF).
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 300)]
    pub max_epochs: usize,
    /// Learning-rate schedule: `plateau` (halve after 5 epochs without improvement) or `cosine`
    /// (smooth decay to 1e-5 at --max-epochs).
    #[arg(long, value_enum, default_value = "plateau")]
    pub schedule: ScheduleArg,
    /// Stop after this many epochs without improvement of the validation loss.
    #[arg(long, default_value_t = 15)]
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

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Model folder (or `default`).
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Number of fresh test simulations.
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Seed of the test simulations (use one the training set did not).
    #[arg(long, default_value_t = 987654321)]
    pub seed: u64,
    /// Posterior draws per test case.
    #[arg(long, default_value_t = 500)]
    pub draws: usize,
    /// The map selection applied to the headline metrics: mean S/N over F277W, F356W, F444W.
    #[arg(long, default_value_t = 5.0)]
    pub snr_min: f64,
    /// With --refine: every test case's posterior is refined (as `sbipix map --refine`) and the
    /// refined posteriors are validated.
    #[command(flatten)]
    pub refine: RefineArgs,
    /// Also fit the first N selected test cases with a likelihood-based reference posterior
    /// (tempered SMC over the same forward model and prior; ≈ 5–15 s per case per core) and
    /// compare: how close the network is to the best the data allow. Delayed-τ priors only.
    #[arg(long, default_value_t = 0)]
    pub reference: usize,
    /// SMC particles (= draws) per reference posterior.
    #[arg(long, default_value_t = 1000)]
    pub reference_particles: usize,
    /// Model mismatch instead: apply the model to a delayed-τ atlas made by another code (the
    /// SBIPIX FSPS atlas CSV format) with the survey's noise added.
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// With --against: the atlas fluxes already include the (1+z) factor of f_ν (the SBIPIX tau
    /// atlases do not).
    #[arg(long)]
    pub atlas_has_1pz: bool,
    /// Output folder: metrics.json, report.md and figures.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// Model folder (or `default`).
    #[arg(long, default_value = "default")]
    pub model: String,
    /// The catalogue: CSV, whitespace-separated text with a header line, or a FITS binary table.
    #[arg(long)]
    pub catalog: PathBuf,
    /// Output CSV: id, redshift, n_bands, status, and <param>_p16/_p50/_p84.
    #[arg(long)]
    pub out: PathBuf,
    /// Flux column names, `{band}` standing for the band (e.g. `{band}_Jy_scattered`).
    #[arg(long, default_value = "flux_ujy_{band}")]
    pub flux_columns: String,
    /// Error column names, with `{band}`.
    #[arg(long, default_value = "err_ujy_{band}")]
    pub err_columns: String,
    /// Redshift column.
    #[arg(long, default_value = "redshift")]
    pub redshift_column: String,
    /// Id column (rows are numbered from 1 if the catalogue has none).
    #[arg(long, default_value = "id")]
    pub id_column: String,
    /// Unit of the flux and error columns (uJy, nJy, mJy, Jy, or with a factor: 10nJy).
    #[arg(long)]
    pub unit: Option<String>,
    /// Posterior draws per object.
    #[arg(long, default_value_t = 2000)]
    pub draws: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fractional error floor added in quadrature to every flux error (calibration systematics).
    #[arg(long, default_value_t = 0.05)]
    pub error_floor: f64,
    /// Skip the posterior-predictive check (the ppc_chi2 column is left empty).
    #[arg(long)]
    pub no_ppc: bool,
    #[command(flatten)]
    pub refine: RefineArgs,
    /// Replace an existing output file.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// Model folder (or `default`).
    #[arg(long, default_value = "default")]
    pub model: String,
    #[command(flatten)]
    pub input: ImageInputArgs,
    /// Segmentation map (FITS) …
    #[arg(long, requires = "id")]
    pub seg: Option<PathBuf>,
    /// … and the id of the galaxy in it.
    #[arg(long)]
    pub id: Option<f64>,
    /// Spectroscopic redshift (default: the REDSHIFT header keyword).
    #[arg(long)]
    pub redshift: Option<f64>,
    /// Minimum mean S/N over F277W, F356W, F444W (the bands present) for a pixel to be fitted.
    #[arg(long, default_value_t = 5.0)]
    pub snr_min: f64,
    /// Posterior draws per pixel.
    #[arg(long, default_value_t = 500)]
    pub draws: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the posterior-predictive check (the median model of every pixel through the forward
    /// model; needs the stellar-population data, fetched on first use).
    #[arg(long)]
    pub no_ppc: bool,
    #[command(flatten)]
    pub refine: RefineArgs,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}
