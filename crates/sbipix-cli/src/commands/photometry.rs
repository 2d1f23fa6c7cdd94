//! `sbipix photometry`: the forward model on a CSV of galaxy parameters.

use super::{log, progress_bar};
use crate::args::OnOff;
use anyhow::Result;
use clap::ValueEnum;
use sbipix::ParamTable;
use sbipix::request::PhotometryRequest;
use sbipix::sps::{FilterSampling, IgmModel, LinePlacement, SfhBinning, SfhFamily};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LinePlacementArg {
    Exact,
    NearestPixel,
}

impl From<LinePlacementArg> for LinePlacement {
    fn from(a: LinePlacementArg) -> Self {
        match a {
            LinePlacementArg::Exact => LinePlacement::Exact,
            LinePlacementArg::NearestPixel => LinePlacement::NearestPixel,
        }
    }
}

impl From<LinePlacement> for LinePlacementArg {
    fn from(m: LinePlacement) -> Self {
        match m {
            LinePlacement::Exact => LinePlacementArg::Exact,
            LinePlacement::NearestPixel => LinePlacementArg::NearestPixel,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FilterSamplingArg {
    Curve,
    ModelGrid,
}

impl From<FilterSamplingArg> for FilterSampling {
    fn from(a: FilterSamplingArg) -> Self {
        match a {
            FilterSamplingArg::Curve => FilterSampling::Curve,
            FilterSamplingArg::ModelGrid => FilterSampling::ModelGrid,
        }
    }
}

impl From<FilterSampling> for FilterSamplingArg {
    fn from(m: FilterSampling) -> Self {
        match m {
            FilterSampling::Curve => FilterSamplingArg::Curve,
            FilterSampling::ModelGrid => FilterSamplingArg::ModelGrid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SfhBinningArg {
    Exact,
    BagpipesGrid,
}

impl From<SfhBinningArg> for SfhBinning {
    fn from(a: SfhBinningArg) -> Self {
        match a {
            SfhBinningArg::Exact => SfhBinning::Exact,
            SfhBinningArg::BagpipesGrid => SfhBinning::BagpipesGrid,
        }
    }
}

impl From<SfhBinning> for SfhBinningArg {
    fn from(m: SfhBinning) -> Self {
        match m {
            SfhBinning::Exact => SfhBinningArg::Exact,
            SfhBinning::BagpipesGrid => SfhBinningArg::BagpipesGrid,
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
    /// Emission lines at their exact wavelengths, or in the nearest wavelength-grid pixel as
    /// bagpipes 1.3.6 (with `--filter-sampling model-grid --sfh-binning bagpipes-grid
    /// --max-redshift 10`: bagpipes' photometry).
    #[arg(long, value_enum, default_value_t = d().line_placement.into())]
    pub line_placement: LinePlacementArg,
    /// Filter curves integrated as read, or first resampled onto the model's wavelength grid as
    /// bagpipes 1.3.6 does.
    #[arg(long, value_enum, default_value_t = d().filter_sampling.into())]
    pub filter_sampling: FilterSamplingArg,
    /// SFH integrated exactly over each SSP age bin, or sampled at bagpipes 1.3.6's fine ages
    /// and histogrammed (with the two options above and `--max-redshift 10`: bagpipes' photometry).
    #[arg(long, value_enum, default_value_t = d().sfh_binning.into())]
    pub sfh_binning: SfhBinningArg,
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
        line_placement: a.line_placement.into(),
        filter_sampling: a.filter_sampling.into(),
        sfh_binning: a.sfh_binning.into(),
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
