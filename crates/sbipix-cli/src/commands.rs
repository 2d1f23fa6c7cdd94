//! Resolved commands.

use crate::args::{Cli, Command, DataAction, IgmArg, PhotometryArgs, SfhArg};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sbipix::io::DataStore;
use sbipix::sps::{Cosmology, IgmModel, ModelConfig, SfhFamily};
use sbipix::{FilterChoice, ParamTable, build_sps_model, photometry_catalog};

pub fn log(msg: &str) {
    eprintln!("{msg}");
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("setting up the thread pool")?;
    }
    match cli.command {
        Command::Data { action } => data(action),
        Command::Photometry(a) => photometry(a),
        Command::Demo { out, model, seds, survey, refine } => {
            if refine.refine && (seds || survey.is_some()) {
                bail!("--refine applies to the map demo only, not to --seds or --survey");
            }
            if let Some(n) = survey {
                crate::population_cmd::demo_survey(&out, &model, n)
            } else if seds {
                crate::demo::demo_seds(&out)
            } else {
                crate::demo::demo_map(&out, &model, refine.settings()?)
            }
        }
        Command::Survey { action: Some(a), .. } => crate::survey_cmd::survey(a),
        Command::Survey { action: None, run } => crate::population_cmd::run(run),
        Command::Prior { action } => crate::survey_cmd::prior(action),
        Command::Simulate(a) => crate::survey_cmd::simulate(a),
        Command::Train(a) => crate::train_cmd::train(a, cli.threads),
        Command::Validate(a) => crate::train_cmd::validate(a),
        Command::Map(a) => crate::map_cmd::map(a),
        Command::Fit(a) => crate::map_cmd::fit(a),
    }
}

fn data(action: DataAction) -> Result<()> {
    let store = DataStore::from_env()?;
    match action {
        DataAction::Fetch { force } => {
            if !force && store.is_present() {
                log(&format!("sbipix: model data already present in {} (use --force to fetch again)", store.dir().display()));
                return Ok(());
            }
            store.fetch(force, &log)?;
            store.verify()?;
        }
        DataAction::Path => println!("{}", store.dir().display()),
        DataAction::Verify => {
            store.verify()?;
            log(&format!("sbipix: {} verified", store.dir().display()));
        }
    }
    Ok(())
}

fn photometry(a: PhotometryArgs) -> Result<()> {
    let family = match a.sfh {
        SfhArg::DelayedTau => SfhFamily::DelayedTau,
        SfhArg::Exponential => SfhFamily::Exponential,
        SfhArg::Constant => SfhFamily::Constant,
        SfhArg::Burst => SfhFamily::Burst,
    };
    // Read and check the input before touching the (large) model data.
    let table = ParamTable::read_csv(&a.params, family)?;
    let config = ModelConfig {
        cosmology: Cosmology::new(a.h0, a.omega_m)?,
        igm: match a.igm {
            IgmArg::Inoue2014 => IgmModel::Inoue2014,
            IgmArg::Madau1995 => IgmModel::Madau1995,
            IgmArg::None => IgmModel::None,
        },
        nebular: a.nebular.is_on(),
        dust_emission: a.dust_emission.is_on(),
        max_redshift: a.max_redshift,
        ..ModelConfig::default()
    };
    let filters = match &a.filters {
        Some(p) => FilterChoice::List(p.clone()),
        None => FilterChoice::Jades,
    };
    let store = DataStore::from_env()?;
    let model = build_sps_model(&store, &filters, config, &log)?;
    let n = table.n_rows() as u64;
    let bar = progress_bar(n, "photometry");
    let t0 = std::time::Instant::now();
    let written = photometry_catalog(&model, &table, &a.out, &|k| bar.set_position(k as u64))?;
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

pub fn progress_bar(n: u64, what: &str) -> ProgressBar {
    let bar = if n >= 10_000 { ProgressBar::new(n) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(&format!("{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}]"))
            .expect("valid template"),
    );
    bar
}
