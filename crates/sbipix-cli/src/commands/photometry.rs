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

/// A clap value enum that mirrors a library enum variant for variant, with both conversions
/// (the library crates know nothing of clap).
macro_rules! mirror_enum {
    ($arg:ident => $lib:ident { $($v:ident),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub enum $arg {
            $($v),+
        }

        impl From<$arg> for $lib {
            fn from(a: $arg) -> Self {
                match a {
                    $($arg::$v => $lib::$v),+
                }
            }
        }

        impl From<$lib> for $arg {
            fn from(m: $lib) -> Self {
                match m {
                    $($lib::$v => $arg::$v),+
                }
            }
        }
    };
}

mirror_enum!(IgmArg => IgmModel { Inoue2014, Madau1995, None });
mirror_enum!(LinePlacementArg => LinePlacement { Exact, NearestPixel });
mirror_enum!(FilterSamplingArg => FilterSampling { Curve, ModelGrid });
mirror_enum!(SfhBinningArg => SfhBinning { Exact, BagpipesGrid });

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
