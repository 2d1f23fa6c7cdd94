//! Validation of a trained model on fresh simulations from its own prior and survey: accuracy
//! (R², bias, NMAD, outliers), uncertainty (median 68 % width) and calibration (coverage, SBC,
//! TARP), with figures and a Markdown page.

use crate::posterior::Posterior;
use crate::training_set::model_for_survey;
use crate::{Error, Result};
use sbipix_diagnostics::{Draws, ParamMetrics, Tarp, coverage, metrics, plots, sbc_ranks, tarp};
use sbipix_io::DataStore;
use sbipix_sim::{Prior, SimulationSpec, Survey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationReport {
    /// Metrics over the test cases a map would fit: mean S/N over F277W, F356W, F444W above
    /// `snr_min` (SBIPIX's pixel selection).
    pub parameters: BTreeMap<String, ParamMetrics>,
    pub tarp: Tarp,
    /// The same over all test cases, detected or not (most of SBIPIX's per-pixel prior — 10⁴–10⁶
    /// M☉ pixels at high redshift — is below the noise, where the posterior is the prior).
    pub parameters_all: BTreeMap<String, ParamMetrics>,
    pub tarp_all: Tarp,
    pub snr_min: f64,
    pub n_selected: usize,
    pub n: usize,
    pub seed: u64,
    pub n_draws: usize,
    pub model: String,
    pub created_by: String,
    pub seconds: f64,
}

/// Parameters whose calibration the targets refer to, reported first.
pub const KEY_PARAMETERS: [&str; 5] = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"];

/// Simulates `n` fresh cases from the model's prior and survey, samples `n_draws` posterior
/// draws for each and writes `out` (metrics.json, figures, report.md) atomically.
#[allow(clippy::too_many_arguments)]
pub fn validate(store: &DataStore, model_dir: &Path, n: usize, seed: u64, n_draws: usize, snr_min: f64, out: &Path, overwrite: bool, log: &dyn Fn(&str)) -> Result<ValidationReport> {
    let out_s = out.display().to_string();
    if n == 0 || n_draws < 10 {
        return Err(Error::File { file: out_s, reason: format!("need n ≥ 1 and at least 10 draws (n = {n}, draws = {n_draws})") });
    }
    if out.exists() && !overwrite {
        return Err(Error::File { file: out_s, reason: "already exists (use --overwrite to replace it)".into() });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::File { file: out_s, reason: format!("folder {} does not exist", parent.display()) });
    }
    let post = Posterior::load(model_dir)?;
    if post.manifest.training_set.seed == seed {
        log(&format!("sbipix: warning: validation seed {seed} equals the training-set seed: the test cases repeat training cases"));
    }
    let read = |name: &str| -> Result<String> {
        let p = model_dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| Error::File { file: p.display().to_string(), reason: e.to_string() })
    };
    let prior = Prior::from_toml_str(&read("prior.toml")?, &model_dir.join("prior.toml").display().to_string())?;
    let survey = Survey::from_toml_str(&read("survey.toml")?, &model_dir.join("survey.toml").display().to_string())?;
    let fwd = model_for_survey(store, &survey, model_dir, post.manifest.forward_model.clone(), log)?;
    let noise = survey.sampler(&fwd.band_names())?;
    let t0 = std::time::Instant::now();
    let drop_rate = post.manifest.training_set.drop_rate;
    let set = sbipix_sim::simulate(&fwd, &prior, &noise, SimulationSpec { n, seed, drop_rate }, &|_| {})?;
    if set.parameter_names != post.parameter_names() {
        return Err(Error::File {
            file: model_dir.display().to_string(),
            reason: format!("the model infers {:?} but its prior gives {:?}", post.parameter_names(), set.parameter_names),
        });
    }
    let flux: Vec<f64> = set.flux_obs_ujy.iter().map(|v| *v as f64).collect();
    let sigma: Vec<f64> = set.sigma_ujy.iter().map(|v| *v as f64).collect();
    let seen: Vec<bool> = set.observed.iter().map(|&o| o == 1).collect();
    let z: Vec<f64> = set.redshift.iter().map(|v| *v as f64).collect();
    log(&format!("sbipix: sampling {n_draws} posterior draws for {n} test cases…"));
    let draws = post.sample(&flux, &sigma, &seen, &z, n_draws, seed ^ 0xA5A5_5A5A)?;
    let names = post.parameter_names();
    let p = names.len();
    // SBIPIX's pixel selection on the noisy photometry
    let nb = set.bands.len();
    let sel_bands: Vec<usize> = ["F277W", "F356W", "F444W"].iter().filter_map(|b| set.bands.iter().position(|x| x == b)).collect();
    let selected: Vec<usize> = (0..n)
        .filter(|&i| {
            let v: Vec<f64> = sel_bands.iter().filter(|&&b| set.observed[i * nb + b] == 1).map(|&b| (set.flux_obs_ujy[i * nb + b] / set.sigma_ujy[i * nb + b]) as f64).collect();
            !v.is_empty() && v.iter().sum::<f64>() / v.len() as f64 > snr_min
        })
        .collect();
    log(&format!("sbipix: {} of {n} test cases pass the map selection (S/N > {snr_min})", selected.len()));
    let levels: Vec<f64> = (1..20).map(|k| k as f64 / 20.0).collect();
    let (draws, theta) = (&draws, &set.theta);
    let evaluate = |cases: &[usize]| {
        let m = cases.len();
        let mut params = BTreeMap::new();
        let (mut truths, mut medians, mut ranks, mut covs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, name) in names.iter().enumerate() {
            let truth: Vec<f64> = cases.iter().map(|&i| theta[i * p + j] as f64).collect();
            let dj: Vec<f64> = cases.iter().flat_map(|&i| (0..n_draws).map(move |k| draws[(i * n_draws + k) * p + j] as f64)).collect();
            let d = Draws { truth: &truth, draws: &dj, n_draws };
            params.insert(name.clone(), metrics(&d));
            medians.push((0..m).map(|i| sbipix_diagnostics::median(&dj[i * n_draws..(i + 1) * n_draws])).collect::<Vec<f64>>());
            ranks.push(sbc_ranks(&d));
            covs.push(coverage(&d, &levels));
            truths.push(truth);
        }
        let theta64: Vec<f64> = cases.iter().flat_map(|&i| (0..p).map(move |j| theta[i * p + j] as f64)).collect();
        let draws64: Vec<f64> = cases.iter().flat_map(|&i| (0..n_draws * p).map(move |k| draws[i * n_draws * p + k] as f64)).collect();
        let tp = tarp(&theta64, &draws64, p, n_draws, seed);
        (params, tp, truths, medians, ranks, covs)
    };
    if selected.len() < 20 {
        return Err(Error::File { file: out_s, reason: format!("only {} test cases pass S/N > {snr_min}: raise --n", selected.len()) });
    }
    let (params, tp, truths, medians, ranks, covs) = evaluate(&selected);
    let all: Vec<usize> = (0..n).collect();
    let (params_all, tp_all, ..) = evaluate(&all);
    let report = ValidationReport {
        parameters: params,
        tarp: tp.clone(),
        parameters_all: params_all,
        tarp_all: tp_all,
        snr_min,
        n_selected: selected.len(),
        n,
        seed,
        n_draws,
        model: model_dir.display().to_string(),
        created_by: format!("sbipix {}", env!("CARGO_PKG_VERSION")),
        seconds: t0.elapsed().as_secs_f64(),
    };
    // Write everything into a temporary folder, then rename.
    let ferr = |p: &Path, e: String| Error::File { file: p.display().to_string(), reason: e };
    let tmp = tempfile::Builder::new().prefix(".sbipix-tmp-").tempdir_in(&parent).map_err(|e| ferr(&parent, e.to_string()))?;
    let d = tmp.path();
    let fig = |r: std::result::Result<(), Box<dyn std::error::Error>>, f: &str| r.map_err(|e| ferr(&d.join(f), e.to_string()));
    fig(plots::truth_vs_median(&d.join("truth_vs_median.png"), &names, &truths, &medians), "truth_vs_median.png")?;
    fig(plots::coverage_curve(&d.join("coverage.png"), &names, &levels, &covs), "coverage.png")?;
    fig(plots::sbc_histograms(&d.join("sbc_ranks.png"), &names, &ranks, n_draws), "sbc_ranks.png")?;
    fig(plots::tarp_curve(&d.join("tarp.png"), &tp), "tarp.png")?;
    std::fs::write(d.join("metrics.json"), serde_json::to_string_pretty(&report).expect("report serialises")).map_err(|e| ferr(d, e.to_string()))?;
    std::fs::write(d.join("report.md"), markdown(&report, &names)).map_err(|e| ferr(d, e.to_string()))?;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| ferr(out, e.to_string()))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        ferr(out, e.to_string())
    })?;
    Ok(report)
}

/// The Markdown page: the table, the targets, the figures.
pub fn markdown(r: &ValidationReport, names: &[String]) -> String {
    let mut s = format!(
        "# Validation of `{}`\n\n{} fresh simulations from the model's prior and survey (seed {}), {} posterior draws each; {} pass the map selection (mean S/N over F277W, F356W, F444W > {}).\n\n## Pixels a map would fit\n\n",
        r.model, r.n, r.seed, r.n_draws, r.n_selected, r.snr_min
    );
    s.push_str(&metrics_table(&r.parameters, names));
    s.push_str(&format!("\n## All test cases, detected or not\n\n{}\nTARP (all cases): max |ECP − α| = {:.3}.\n", metrics_table(&r.parameters_all, names), r.tarp_all.max_deviation));
    s.push_str(&format!("\nTARP (selected cases, all parameters jointly): max |ECP − α| = {:.3}, area = {:.3}.\n\n", r.tarp.max_deviation, r.tarp.area));
    s.push_str("Targets: R²(log_mstar) ≥ 0.99 (SBIPIX paper), R²(mass_weighted_age_gyr) ≥ 0.88 (best JADES peer), 68 %/95 % coverage within 0.05/0.03 of nominal.\n\n");
    s.push_str("![truth vs median](truth_vs_median.png)\n\n![coverage](coverage.png)\n\n![SBC ranks](sbc_ranks.png)\n\n![TARP](tarp.png)\n");
    s
}

/// The metrics as a Markdown table.
pub fn metrics_table(params: &BTreeMap<String, ParamMetrics>, names: &[String]) -> String {
    let mut s = String::from("| parameter | R² | bias | NMAD | outliers | median 68 % width | coverage 68 % | coverage 95 % | SBC KS p |\n|---|---|---|---|---|---|---|---|---|\n");
    for n in names {
        let m = &params[n];
        s.push_str(&format!(
            "| {n} | {:.3} | {:+.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2e} |\n",
            m.r2, m.bias, m.nmad, m.outlier_frac, m.median_width_68, m.coverage_68, m.coverage_95, m.sbc_ks_pvalue
        ));
    }
    s
}
