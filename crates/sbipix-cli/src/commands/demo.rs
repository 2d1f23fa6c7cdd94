//! `sbipix demo`: a synthetic galaxy with known gradients mapped with the default model (how well
//! does each map match the truth?); `sbipix demo --seds`: the forward model on built-in example
//! galaxies — photometry through the 19 JADES bands (CSV) and a figure of their spectra.

use super::log;
use crate::args::ExactArgs;
use anyhow::{Context, Result};
use sbipix::io::DataStore;
use sbipix::products::plots::maps::truth_vs_maps_png;
use sbipix::products::plots::seds::{SedCurve, seds_png};
use sbipix::sps::constants::ab_mag_from_ujy;
use sbipix::sps::{ModelConfig, SfhFamily};
use sbipix::{FilterChoice, ParamTable, build_sps_model, photometry_catalog};
#[allow(unused_imports)]
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "sbipix-demo")]
    pub out: PathBuf,
    /// Model folder, or a built-in model: `default`, `sbipix2025` (the default until December 2026).
    #[arg(long, default_value_t = sbipix::request::MapRequest::default().model)]
    pub model: String,
    /// Instead: forward-model photometry and SEDs of built-in example galaxies.
    #[arg(long)]
    pub seds: bool,
    /// Instead: a synthetic survey of N galaxies (10⁷–10¹¹ M☉, with truth), mapped with
    /// `sbipix survey`; compares the population results with the known answer.
    #[arg(long, value_name = "N")]
    pub survey: Option<usize>,
    // --fast / --sys-err: the map demo with the network's posteriors alone, or the exact ones'
    // systematic error
    #[command(flatten)]
    pub exact: ExactArgs,
}

pub fn run(a: DemoArgs) -> Result<()> {
    if (a.exact.fast || a.exact.refine) && a.seds {
        return Err(super::usage("--fast applies to the map and survey demos, not to --seds"));
    }
    if let Some(n) = a.survey {
        super::demo_survey::run(&a.out, &a.model, n, &a.exact)
    } else if a.seds {
        demo_seds(&a.out)
    } else {
        demo_map(&a.out, &a.model, &a.exact)
    }
}

/// The built-in galaxies (delayed-τ SFHs), as a parameter table.
const EXAMPLES: &str = "\
id,redshift,log_mass_formed,age_gyr,tau_gyr,logzsol,av_mag,logu
quiescent_z1,1.0,11.0,5.0,0.3,0.2,0.2,-2
star_forming_z2,2.0,10.0,2.0,3.0,-0.3,1.0,-2
dusty_z4.33,4.33,10.5,0.8,1.0,0.0,3.0,-2
starburst_z6,6.0,8.5,0.05,0.02,-1.5,0.1,-2
young_z14.3,14.3,8.7,0.1,0.05,-1.5,0.0,-2
";

pub fn demo_seds(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let table = ParamTable::parse_csv(EXAMPLES, "built-in examples", SfhFamily::DelayedTau)?;
    let params_path = out.join("galaxies.csv");
    sbipix::io::write_atomic(&params_path, |w| Ok(w.write_all(EXAMPLES.as_bytes())?))?;

    let store = DataStore::from_env()?;
    let model = build_sps_model(&store, &FilterChoice::Jades, ModelConfig::default(), &log)?;
    let phot_path = out.join("photometry.csv");
    photometry_catalog(&model, &table, &phot_path, &|_| {})?;

    let ids = table.ids.clone().unwrap_or_default();
    let bands = model.band_names();
    let show = ["F090W", "F150W", "F200W", "F277W", "F444W", "F606W"];
    outln!("{:<16} {:>6} {:>7} {:>9} {:>6}  {}", "galaxy", "z", "log M*", "log SFR", "MWA", "AB mag: ".to_string() + &show.join("  "))?;
    let mut curves = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let p = table.params(i);
        let (flux, d) = model.photometry(&p)?;
        let mags: Vec<String> = show
            .iter()
            .map(|b| {
                let k = bands.iter().position(|x| x == b).expect("JADES band");
                let m = ab_mag_from_ujy(flux[k]);
                if m.is_finite() && m < 99.0 { format!("{m:5.2}") } else { "  -  ".into() }
            })
            .collect();
        outln!(
            "{id:<16} {:>6.2} {:>7.2} {:>9.2} {:>6.3}          {}",
            p.redshift,
            d.log_mstar,
            d.log_sfr_100myr,
            d.mass_weighted_age_gyr,
            mags.join("  ")
        )?;
        let (wave, fnu) = model.spectrum(&p)?;
        curves.push(SedCurve { label: id.clone(), redshift: p.redshift, rest_wavelength_aa: wave, fnu_ujy: fnu, photometry_ujy: flux });
    }
    let fig = out.join("seds.png");
    seds_png(&fig, &model, &curves)?;
    log(&format!("sbipix: wrote {}, {} and {}", params_path.display(), phot_path.display(), fig.display()));
    Ok(())
}

/// The map demo (mapped as `sbipix map` maps, with its defaults).
pub fn demo_map(out: &Path, model: &str, exact: &ExactArgs) -> Result<()> {
    use sbipix::io::arrays::{CardValue, OutImage, write_cube, write_image_fits};
    use sbipix::products::synthetic::{GalaxySpec, build};
    let t0 = std::time::Instant::now();
    let req = sbipix::request::MapRequest {
        refine: exact.exact(),
        sys_err: exact.sys_err,
        out: Some(out.to_path_buf()),
        ..sbipix::request::MapRequest::default()
    };
    req.validate()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let model = sbipix::request::LoadedModel::load(model)?;
    let model_dir = model.post.dir.clone();
    let mut survey = sbipix::sim::Survey::from_toml_str(
        &std::fs::read_to_string(model_dir.join("survey.toml")).with_context(|| format!("reading {}/survey.toml", model_dir.display()))?,
        "survey.toml",
    )?;
    // an image has one depth: the survey's learnt noise, not the family of depths it trains on
    survey.family = None;
    // the forward model the map's check and refinement use, built once
    let (fwd, _) = model.forward_model(&log)?;
    let spec = GalaxySpec::default();
    log(&format!(
        "sbipix: building a {0}×{0}-pixel synthetic galaxy at z = {1} (gradients in mass, age, metallicity, dust, plus a young clump) with `{2}` noise",
        spec.size, spec.redshift, survey.name
    ));
    let g = build(&fwd, &survey, &spec)?;
    let (ny, nx) = (g.images.ny, g.images.nx);
    let cube_path = out.join("demo_cube.fits");
    let f32v = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
    write_cube(
        &cube_path,
        &g.images.bands,
        ny,
        nx,
        &f32v(&g.images.flux),
        &f32v(&g.images.err),
        &g.images.wcs,
        &[("REDSHIFT".into(), CardValue::Num(g.redshift))],
    )?;
    let truth32: Vec<Vec<f32>> = g.truth.iter().map(|t| f32v(t)).collect();
    let timgs: Vec<OutImage> = g
        .truth_names
        .iter()
        .zip(&truth32)
        .map(|(n, d)| OutImage {
            name: n.to_uppercase(),
            data: d,
            bunit: sbipix::sim::theta::unit_of(n).into(),
            comment: "true value".into(),
        })
        .collect();
    write_image_fits(&out.join("truth.fits"), ny, nx, &timgs, &g.images.wcs, &[])?;
    let req = sbipix::request::MapRequest { redshift: Some(g.redshift), ..req };
    let (bar, progress) = super::map_progress(req.refine);
    let m = req.run_on(&model, g.images.clone(), &log, &progress)?.maps;
    bar.finish_and_clear();
    truth_table(&g, &m)?;
    let tm: f64 = g.truth[0].iter().filter(|v| v.is_finite()).map(|v| 10f64.powf(*v)).sum::<f64>().log10();
    let s = &m.summary;
    outln!(
        "total stellar mass (all galaxy pixels): true log M* = {tm:.2}; resolved (fitted pixels) {:.2} [{:.2}, {:.2}]; integrated {:.2} [{:.2}, {:.2}]",
        s.log_mstar_resolved[1],
        s.log_mstar_resolved[0],
        s.log_mstar_resolved[2],
        s.log_mstar_integrated[1],
        s.log_mstar_integrated[0],
        s.log_mstar_integrated[2]
    )?;
    if let (Some(c), Some(r)) = (s.ppc_median_chi2_reduced, &s.ppc_median_residual_sigma) {
        let worst = r.values().map(|v| v.abs()).fold(0.0, f64::max);
        outln!(
            "posterior-predictive check: median reduced χ² {c:.2} (≈ 1 when the model fits), largest per-band median residual {worst:.2} σ"
        )?;
    }
    truth_vs_maps_png(&out.join("truth_vs_maps.png"), &g, &m)?;
    log(&format!(
        "sbipix: demo done in {:.1} s: {} (input), truth.fits, maps.fits, maps.png, truth_vs_maps.png, summary.json in {}",
        t0.elapsed().as_secs_f64(),
        cube_path.display(),
        out.display()
    ));
    Ok(())
}

/// How well does each map match the truth, over the fitted pixels? Prints one row per parameter.
fn truth_table(g: &sbipix::products::synthetic::SyntheticGalaxy, m: &sbipix::products::map::GalaxyMaps) -> Result<()> {
    let (ny, nx) = (g.images.ny, g.images.nx);
    outln!("{:<24} {:>8} {:>10} {:>10} {:>12}", "parameter", "pixels", "median|Δ|", "rms Δ", "in 16–84 %")?;
    for (k, name) in g.truth_names.iter().enumerate() {
        let Some(j) = m.params.iter().position(|p| p == name) else { continue };
        let mut d = Vec::new();
        let mut inside = 0;
        for p in 0..ny * nx {
            let t = g.truth[k][p];
            let med = m.percentiles[j][1][p] as f64;
            if m.mask[p] == 1.0 && t.is_finite() && med.is_finite() {
                d.push(med - t);
                inside += (t >= m.percentiles[j][0][p] as f64 && t <= m.percentiles[j][2][p] as f64) as usize;
            }
        }
        if d.is_empty() {
            continue;
        }
        let n = d.len();
        let rms = (d.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
        let mut a: Vec<f64> = d.iter().map(|x| x.abs()).collect();
        a.sort_by(|x, y| x.partial_cmp(y).unwrap());
        outln!("{name:<24} {n:>8} {:>10.3} {rms:>10.3} {:>12.2}", a[n / 2], inside as f64 / n as f64)?;
    }
    Ok(())
}
