//! `sbipix photometry`: the forward model on a CSV of galaxy parameters.

use super::{log, progress_bar};
use crate::args::OnOff;
use anyhow::Result;
use clap::ValueEnum;
use sbipix::ParamTable;
use sbipix::request::PhotometryRequest;
use sbipix::sps::{IgmModel, SfhFamily};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SfhArg {
    DelayedTau,
    Exponential,
    Constant,
    Burst,
}

impl From<SfhArg> for SfhFamily {
    fn from(a: SfhArg) -> Self {
        match a {
            SfhArg::DelayedTau => SfhFamily::DelayedTau,
            SfhArg::Exponential => SfhFamily::Exponential,
            SfhArg::Constant => SfhFamily::Constant,
            SfhArg::Burst => SfhFamily::Burst,
        }
    }
}

impl From<SfhFamily> for SfhArg {
    /// The families a table can name (a tabulated history is not one of them).
    fn from(f: SfhFamily) -> Self {
        match f {
            SfhFamily::Exponential => SfhArg::Exponential,
            SfhFamily::Constant => SfhArg::Constant,
            SfhFamily::Burst => SfhArg::Burst,
            _ => SfhArg::DelayedTau,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IgmArg {
    Inoue2014,
    Madau1995,
    None,
}

impl From<IgmArg> for IgmModel {
    fn from(a: IgmArg) -> Self {
        match a {
            IgmArg::Inoue2014 => IgmModel::Inoue2014,
            IgmArg::Madau1995 => IgmModel::Madau1995,
            IgmArg::None => IgmModel::None,
        }
    }
}

impl From<IgmModel> for IgmArg {
    fn from(m: IgmModel) -> Self {
        match m {
            IgmModel::Inoue2014 => IgmArg::Inoue2014,
            IgmModel::Madau1995 => IgmArg::Madau1995,
            IgmModel::None => IgmArg::None,
        }
    }
}

fn d() -> PhotometryRequest {
    PhotometryRequest::default()
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
    #[arg(long, value_enum, default_value_t = d().sfh.into())]
    pub sfh: SfhArg,
    /// Filter list file (one curve per line, relative to the list); default: the 19 JADES bands.
    #[arg(long)]
    pub filters: Option<PathBuf>,
    /// IGM absorption model.
    #[arg(long, value_enum, default_value_t = d().igm.into())]
    pub igm: IgmArg,
    /// DL07 dust emission by energy balance.
    #[arg(long, value_enum, default_value_t = d().dust_emission.into())]
    pub dust_emission: OnOff,
    /// Nebular continuum and lines from stars younger than 10 Myr.
    #[arg(long, value_enum, default_value_t = d().nebular.into())]
    pub nebular: OnOff,
    /// Largest redshift the model is set up for.
    #[arg(long, default_value_t = d().max_redshift)]
    pub max_redshift: f64,
    /// Hubble constant, km/s/Mpc.
    #[arg(long, default_value_t = d().h0)]
    pub h0: f64,
    /// Matter density Ω_m (flat ΛCDM).
    #[arg(long, default_value_t = d().omega_m)]
    pub omega_m: f64,
}

pub fn run(a: PhotometryArgs) -> Result<()> {
    let req = PhotometryRequest {
        sfh: a.sfh.into(),
        filters: a.filters,
        filter_files: Vec::new(),
        igm: a.igm.into(),
        dust_emission: a.dust_emission.is_on(),
        nebular: a.nebular.is_on(),
        max_redshift: a.max_redshift,
        h0: a.h0,
        omega_m: a.omega_m,
    };
    // Read and check the input before touching the (large) model data.
    req.validate()?;
    let table = ParamTable::read_csv(&a.params, req.sfh)?;
    let model = req.build_model(&log)?;
    let bar = progress_bar(table.n_rows() as u64, "photometry");
    let t0 = std::time::Instant::now();
    let written = sbipix::photometry_catalog(&model, &table, &a.out, &|k| bar.set_position(k as u64))?;
    bar.finish_and_clear();
    log(&format!(
        "sbipix: wrote {} galaxies × {} bands to {} ({:.2} s)",
        written,
        model.n_bands(),
        a.out.display(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}
