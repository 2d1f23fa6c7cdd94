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
use std::path::Path;

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
    /// The selected cases split by their mean S/N (bins of SNR_BINS): how accuracy grows with
    /// depth. Each entry: (label, cases, metrics); bins with fewer than 20 cases are left out.
    #[serde(default)]
    pub parameters_by_snr: Vec<(String, usize, BTreeMap<String, ParamMetrics>)>,
    pub snr_min: f64,
    pub n_selected: usize,
    pub n: usize,
    pub seed: u64,
    pub n_draws: usize,
    pub model: String,
    pub created_by: String,
    pub seconds: f64,
    /// The neural posterior beside the likelihood-based reference posterior on the first
    /// selected cases (`--reference N`), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceComparison>,
    /// The likelihood refinement applied to every test case's draws (`--refine`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refinement: Option<crate::refine::RefineSummary>,
}

/// How many selected test cases get a likelihood-based reference posterior, with how many
/// SMC particles (= draws). `cases = 0`: none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceOptions {
    pub cases: usize,
    pub particles: usize,
}

impl Default for ReferenceOptions {
    fn default() -> Self {
        Self { cases: 0, particles: 1000 }
    }
}

/// The neural posterior against the likelihood-based reference posterior
/// ([`crate::reference`]) on the same test cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceComparison {
    pub cases: usize,
    pub particles: usize,
    /// Metrics of the model's posterior on these cases (refined when the validation refines).
    pub model: BTreeMap<String, ParamMetrics>,
    /// Metrics of the reference posterior on these cases: the best a posterior given this
    /// likelihood and prior can do (up to Monte-Carlo error).
    pub reference: BTreeMap<String, ParamMetrics>,
    /// Per parameter: the fraction of cases whose model posterior median lies inside the
    /// reference's central 68 % interval (≈ 0.68 or more when the two agree).
    pub model_median_in_reference_68: BTreeMap<String, f64>,
    /// Per parameter: R² of the reference posterior *means*. The posterior mean is the estimator
    /// of least expected squared error, so no estimator — network or otherwise — can reach a
    /// higher R² on these cases than this, up to Monte-Carlo and sampling error.
    #[serde(default)]
    pub reference_mean_r2: BTreeMap<String, f64>,
    /// Mean likelihood evaluations per case, and the wall time of all reference fits.
    pub evaluations_per_case: f64,
    pub seconds: f64,
}

/// Edges of the S/N bins of [`ValidationReport::parameters_by_snr`] (the last bin is open).
pub const SNR_BINS: [f64; 5] = [5.0, 10.0, 20.0, 50.0, 100.0];

/// Parameters whose calibration the targets refer to, reported first.
pub const KEY_PARAMETERS: [&str; 5] = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"];

/// Simulates `n` fresh cases from the model's prior and survey, samples `n_draws` posterior
/// draws for each and writes `out` (metrics.json, figures, report.md) atomically.
#[allow(clippy::too_many_arguments)]
pub fn validate(
    store: &DataStore,
    model_dir: &Path,
    n: usize,
    seed: u64,
    n_draws: usize,
    snr_min: f64,
    refine: Option<crate::refine::RefineSettings>,
    reference: ReferenceOptions,
    out: &Path,
    overwrite: bool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<ValidationReport> {
    let out_s = out.display().to_string();
    if n == 0 || n_draws < 10 {
        return Err(Error::File { file: out_s, reason: format!("need n ≥ 1 and at least 10 draws (n = {n}, draws = {n_draws})") });
    }
    crate::check_output(out, overwrite)?;
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
    let mut set = sbipix_sim::simulate(&fwd, &prior, &noise, SimulationSpec { n, seed, drop_rate }, &|_| {})?;
    // A model may infer a subset of the prior's parameters (`sbipix train --params`): compare those.
    if set.parameter_names != post.parameter_names() {
        crate::posterior::select_columns(&mut set, &post.parameter_names(), &model_dir.display().to_string())?;
    }
    let flux: Vec<f64> = set.flux_obs_ujy.iter().map(|v| *v as f64).collect();
    let sigma: Vec<f64> = set.sigma_ujy.iter().map(|v| *v as f64).collect();
    let seen: Vec<bool> = set.observed.iter().map(|&o| o == 1).collect();
    let z: Vec<f64> = set.redshift.iter().map(|v| *v as f64).collect();
    log(&format!("sbipix: sampling {n_draws} posterior draws for {n} test cases…"));
    let mut draws = post.sample(&flux, &sigma, &seen, &z, n_draws, seed ^ 0xA5A5_5A5A)?;
    let names = post.parameter_names();
    let refinement = match refine {
        Some(settings) => {
            log(&format!("sbipix: refining the {n} posteriors with the forward model's likelihood…"));
            let t1 = std::time::Instant::now();
            let step = (n / 10).max(1);
            let outcomes =
                crate::refine::refine_all(&fwd, &prior, &flux, &sigma, &seen, &z, &names, &mut draws, settings, seed ^ 0x0EF1, &|k| {
                    if k.is_multiple_of(step) {
                        log(&format!("sbipix:   {k}/{n} refined ({:.0} s)", t1.elapsed().as_secs_f64()));
                    }
                })?;
            let summary = crate::refine::RefineSummary::of(&outcomes, settings, t1.elapsed().as_secs_f64());
            log(&format!(
                "sbipix: refined {:.1} % of the cases (median ESS {:.0}, {:.0} likelihood evaluations per case, {:.0} s)",
                100.0 * summary.refined_fraction,
                summary.median_ess,
                summary.evaluations_per_pixel,
                summary.seconds
            ));
            Some(summary)
        }
        None => None,
    };
    let p = names.len();
    // SBIPIX's pixel selection on the noisy photometry
    let nb = set.bands.len();
    let sel_bands: Vec<usize> = ["F277W", "F356W", "F444W"].iter().filter_map(|b| set.bands.iter().position(|x| x == b)).collect();
    let snr: Vec<f64> = (0..n)
        .map(|i| {
            let v: Vec<f64> = sel_bands
                .iter()
                .filter(|&&b| set.observed[i * nb + b] == 1)
                .map(|&b| (set.flux_obs_ujy[i * nb + b] / set.sigma_ujy[i * nb + b]) as f64)
                .collect();
            if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
        })
        .collect();
    let selected: Vec<usize> = (0..n).filter(|&i| snr[i] > snr_min).collect();
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
    let reference = if reference.cases > 0 {
        let cases: Vec<usize> = selected.iter().copied().take(reference.cases).collect();
        let ref_cases = Refs { fwd: &fwd, prior: &prior, flux: &flux, sigma: &sigma, seen: &seen, z: &z, snr: &snr, nb };
        Some(compare_with_reference(&ref_cases, &cases, &names, theta, draws, n_draws, reference.particles, seed, log)?)
    } else {
        None
    };
    let (reference, reference_csv) = match reference {
        Some((c, csv)) => (Some(c), Some(csv)),
        None => (None, None),
    };
    let (params, tp, truths, medians, ranks, covs) = evaluate(&selected);
    let all: Vec<usize> = (0..n).collect();
    let (params_all, tp_all, ..) = evaluate(&all);
    let mut parameters_by_snr = Vec::new();
    for (k, lo) in SNR_BINS.iter().enumerate() {
        let hi = SNR_BINS.get(k + 1).copied().unwrap_or(f64::INFINITY);
        let lo = lo.max(snr_min);
        let cases: Vec<usize> = selected.iter().copied().filter(|&i| snr[i] > lo && snr[i] <= hi).collect();
        if cases.len() >= 20 {
            let label = if hi.is_finite() { format!("{lo:.0}–{hi:.0}") } else { format!("> {lo:.0}") };
            parameters_by_snr.push((label, cases.len(), evaluate(&cases).0));
        }
    }
    let report = ValidationReport {
        parameters: params,
        tarp: tp.clone(),
        parameters_all: params_all,
        tarp_all: tp_all,
        parameters_by_snr,
        snr_min,
        n_selected: selected.len(),
        n,
        seed,
        n_draws,
        model: model_dir.display().to_string(),
        created_by: format!("sbipix {}", env!("CARGO_PKG_VERSION")),
        seconds: t0.elapsed().as_secs_f64(),
        reference,
        refinement,
    };
    // Write everything into a temporary folder, then rename.
    let ferr = |p: &Path, e: String| Error::File { file: p.display().to_string(), reason: e };
    crate::write_dir_atomic(out, overwrite, |d| {
        let fig = |r: std::result::Result<(), Box<dyn std::error::Error>>, f: &str| r.map_err(|e| ferr(&d.join(f), e.to_string()));
        fig(plots::truth_vs_median(&d.join("truth_vs_median.png"), &names, &truths, &medians), "truth_vs_median.png")?;
        fig(plots::coverage_curve(&d.join("coverage.png"), &names, &levels, &covs), "coverage.png")?;
        fig(plots::sbc_histograms(&d.join("sbc_ranks.png"), &names, &ranks, n_draws), "sbc_ranks.png")?;
        fig(plots::tarp_curve(&d.join("tarp.png"), &tp), "tarp.png")?;
        std::fs::write(d.join("metrics.json"), serde_json::to_string_pretty(&report).expect("report serialises"))
            .map_err(|e| ferr(d, e.to_string()))?;
        std::fs::write(d.join("report.md"), markdown(&report, &names)).map_err(|e| ferr(d, e.to_string()))?;
        if let Some(csv) = &reference_csv {
            std::fs::write(d.join("reference_cases.csv"), csv).map_err(|e| ferr(d, e.to_string()))?;
        }
        Ok(())
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
    if !r.parameters_by_snr.is_empty() {
        s.push_str("\n## By S/N (mean over F277W, F356W, F444W): R² and 68 % coverage\n\n| S/N | cases |");
        for n in names {
            s.push_str(&format!(" {n} |"));
        }
        s.push_str("\n|---|---|");
        s.push_str(&"---|".repeat(names.len()));
        s.push('\n');
        for (label, cases, m) in &r.parameters_by_snr {
            s.push_str(&format!("| {label} | {cases} |"));
            for n in names {
                s.push_str(&format!(" {:.3} / {:.2} |", m[n].r2, m[n].coverage_68));
            }
            s.push('\n');
        }
    }
    s.push_str(&format!(
        "\n## All test cases, detected or not\n\n{}\nTARP (all cases): max |ECP − α| = {:.3}.\n",
        metrics_table(&r.parameters_all, names),
        r.tarp_all.max_deviation
    ));
    s.push_str(&format!(
        "\nTARP (selected cases, all parameters jointly): max |ECP − α| = {:.3}, area = {:.3}.\n\n",
        r.tarp.max_deviation, r.tarp.area
    ));
    s.push_str("Targets: R²(log_mstar) ≥ 0.99 (SBIPIX paper), R²(mass_weighted_age_gyr) ≥ 0.88 (best JADES peer), 68 %/95 % coverage within 0.05/0.03 of nominal.\n\n");
    if let Some(c) = &r.reference {
        s.push_str(&format!(
            "## Against the likelihood-based reference posterior\n\nThe first {} selected cases, also fitted by tempered SMC with the same forward model, prior and a Gaussian likelihood ({} particles, {:.0} likelihood evaluations per case, {:.0} s). The reference is the best a posterior can do with this information: R² well below it means the network has room to improve; equal means the data, not the network, limit the accuracy.\n\n| parameter | R² network | R² reference | R² reference mean (ceiling) | NMAD network | NMAD reference | coverage 68 % network | coverage 68 % reference | network median in reference 68 % |\n|---|---|---|---|---|---|---|---|---|\n",
            c.cases, c.particles, c.evaluations_per_case, c.seconds
        ));
        for n in names {
            let (a, b) = (&c.model[n], &c.reference[n]);
            s.push_str(&format!(
                "| {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |\n",
                a.r2, b.r2, c.reference_mean_r2[n], a.nmad, b.nmad, a.coverage_68, b.coverage_68, c.model_median_in_reference_68[n]
            ));
        }
        s.push('\n');
    }
    s.push_str(
        "![truth vs median](truth_vs_median.png)\n\n![coverage](coverage.png)\n\n![SBC ranks](sbc_ranks.png)\n\n![TARP](tarp.png)\n",
    );
    s
}

/// The metrics as a Markdown table.
pub fn metrics_table(params: &BTreeMap<String, ParamMetrics>, names: &[String]) -> String {
    let mut s = String::from(
        "| parameter | R² | bias | NMAD | outliers | median 68 % width | coverage 68 % | coverage 95 % | SBC KS p |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for n in names {
        let m = &params[n];
        s.push_str(&format!(
            "| {n} | {:.3} | {:+.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2e} |\n",
            m.r2, m.bias, m.nmad, m.outlier_frac, m.median_width_68, m.coverage_68, m.coverage_95, m.sbc_ks_pvalue
        ));
    }
    s
}

/// The test data the reference fits need.
struct Refs<'a> {
    fwd: &'a sbipix_sps::SpsModel,
    prior: &'a Prior,
    flux: &'a [f64],
    sigma: &'a [f64],
    seen: &'a [bool],
    z: &'a [f64],
    snr: &'a [f64],
    nb: usize,
}

/// Fits `cases` with the reference posterior (in parallel, one SMC run per case, seeded by the
/// case) and compares its metrics with the network's on the same cases. Also returns
/// `reference_cases.csv`: per case its redshift, S/N, and per parameter the truth and the 16/50/84 %
/// points of both posteriors.
#[allow(clippy::too_many_arguments)]
fn compare_with_reference(
    d: &Refs,
    cases: &[usize],
    names: &[String],
    theta: &[f32],
    draws: &[f32],
    n_draws: usize,
    particles: usize,
    seed: u64,
    log: &(dyn Fn(&str) + Sync),
) -> Result<(ReferenceComparison, String)> {
    use rayon::prelude::*;
    let t0 = std::time::Instant::now();
    let nb = d.nb;
    log(&format!("sbipix: reference posteriors (tempered SMC, {particles} particles) for {} test cases…", cases.len()));
    let done = std::sync::atomic::AtomicUsize::new(0);
    let fits: Vec<crate::reference::ReferencePosterior> = cases
        .par_iter()
        .map(|&i| {
            let settings = sbipix_diagnostics::smc::SmcSettings {
                particles,
                seed: seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ..Default::default()
            };
            let r = crate::reference::reference_posterior(
                d.fwd,
                d.prior,
                &d.flux[i * nb..(i + 1) * nb],
                &d.sigma[i * nb..(i + 1) * nb],
                &d.seen[i * nb..(i + 1) * nb],
                d.z[i],
                settings,
            );
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if k.is_multiple_of((cases.len() / 10).max(1)) || k == cases.len() {
                log(&format!("sbipix:   {k}/{} reference fits ({:.0} s)", cases.len(), t0.elapsed().as_secs_f64()));
            }
            r
        })
        .collect::<Result<_>>()?;
    let p = names.len();
    let (mut npe, mut refm, mut inside, mut mean_r2) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut cols: Vec<Vec<f64>> =
        vec![cases.iter().map(|&i| i as f64).collect(), cases.iter().map(|&i| d.z[i]).collect(), cases.iter().map(|&i| d.snr[i]).collect()];
    let mut header = String::from("case,redshift,snr");
    let q3 = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        [0.16, 0.5, 0.84].map(|q| sbipix_diagnostics::quantile_sorted(&s, q))
    };
    for (j, name) in names.iter().enumerate() {
        let Some(rj) = fits[0].names.iter().position(|x| x == name) else {
            return Err(Error::File { file: "(reference posterior)".into(), reason: format!("the prior has no parameter `{name}`") });
        };
        let truth: Vec<f64> = cases.iter().map(|&i| theta[i * p + j] as f64).collect();
        let dn: Vec<f64> = cases.iter().flat_map(|&i| (0..n_draws).map(move |k| draws[(i * n_draws + k) * p + j] as f64)).collect();
        let np = fits[0].names.len();
        let dr: Vec<f64> = fits.iter().flat_map(|f| (0..particles).map(move |k| f.draws[k * np + rj])).collect();
        npe.insert(name.clone(), metrics(&Draws { truth: &truth, draws: &dn, n_draws }));
        refm.insert(name.clone(), metrics(&Draws { truth: &truth, draws: &dr, n_draws: particles }));
        let hits = (0..cases.len())
            .filter(|&c| {
                let m = sbipix_diagnostics::median(&dn[c * n_draws..(c + 1) * n_draws]);
                let mut s = dr[c * particles..(c + 1) * particles].to_vec();
                s.sort_by(|a, b| a.total_cmp(b));
                m >= sbipix_diagnostics::quantile_sorted(&s, 0.16) && m <= sbipix_diagnostics::quantile_sorted(&s, 0.84)
            })
            .count();
        inside.insert(name.clone(), hits as f64 / cases.len() as f64);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let ref_means: Vec<f64> = (0..cases.len()).map(|c| mean(&dr[c * particles..(c + 1) * particles])).collect();
        let npe_means: Vec<f64> = (0..cases.len()).map(|c| mean(&dn[c * n_draws..(c + 1) * n_draws])).collect();
        mean_r2.insert(name.clone(), sbipix_diagnostics::r2(&truth, &ref_means));
        header.push_str(&format!(
            ",{name}_true,{name}_npe_p16,{name}_npe_p50,{name}_npe_p84,{name}_npe_mean,{name}_ref_p16,{name}_ref_p50,{name}_ref_p84,{name}_ref_mean"
        ));
        cols.push(truth.clone());
        let qn: Vec<[f64; 3]> = (0..cases.len()).map(|c| q3(&dn[c * n_draws..(c + 1) * n_draws])).collect();
        let qr: Vec<[f64; 3]> = (0..cases.len()).map(|c| q3(&dr[c * particles..(c + 1) * particles])).collect();
        for k in 0..3 {
            cols.push(qn.iter().map(|q| q[k]).collect());
        }
        cols.push(npe_means);
        for k in 0..3 {
            cols.push(qr.iter().map(|q| q[k]).collect());
        }
        cols.push(ref_means);
    }
    let mut csv = header + "\n";
    for c in 0..cases.len() {
        csv.push_str(&cols.iter().map(|col| format!("{}", col[c])).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    let comparison = ReferenceComparison {
        cases: cases.len(),
        particles,
        model: npe,
        reference: refm,
        model_median_in_reference_68: inside,
        reference_mean_r2: mean_r2,
        evaluations_per_case: fits.iter().map(|f| f.likelihood_evaluations as f64).sum::<f64>() / fits.len() as f64,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok((comparison, csv))
}

/// Result of [`validate_against`]: the model applied to photometry made by another code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MismatchReport {
    pub atlas: String,
    pub model: String,
    pub n_rows: usize,
    pub n_used: usize,
    pub snr_min: f64,
    pub multiplied_by_1pz: bool,
    /// Metrics of the parameters whose truth the atlas gives (in this model's definitions).
    pub parameters: BTreeMap<String, ParamMetrics>,
    pub seed: u64,
    pub created_by: String,
}

/// Model mismatch: applies the model to a delayed-τ atlas made by another code (the SBIPIX FSPS
/// atlases: columns `zred`, `log_mformed`, `tau_Gyr`, `t_start_Gyr`, `dust2`, `logzsol`,
/// `flux_uJy_<…F090W…>`), with the model's survey noise added, and compares the posterior
/// medians with the atlas' parameters, expressed in this model's definitions (SFRs and
/// mass-weighted age recomputed from the atlas SFH; A_V = 1.086·dust2). The SBIPIX tau atlases
/// omit the (1+z) of f_ν: `multiply_1pz` restores it.
#[allow(clippy::too_many_arguments)]
pub fn validate_against(
    model_dir: &Path,
    atlas: &Path,
    seed: u64,
    n_draws: usize,
    snr_min: f64,
    multiply_1pz: bool,
    out: &Path,
    overwrite: bool,
    log: &dyn Fn(&str),
) -> Result<MismatchReport> {
    use sbipix_sps::{Sfh, SfhShape};
    crate::check_output(out, overwrite)?;
    let post = Posterior::load(model_dir)?;
    let read = |name: &str| -> Result<String> {
        let p = model_dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| Error::File { file: p.display().to_string(), reason: e.to_string() })
    };
    let survey = Survey::from_toml_str(&read("survey.toml")?, "survey.toml")?;
    let bands = post.manifest.bands.clone();
    let noise = survey.sampler(&bands)?;
    let af = atlas.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(atlas)
        .map_err(|e| Error::File { file: af.clone(), reason: e.to_string() })?;
    let header: Vec<String> =
        rdr.headers().map_err(|e| Error::File { file: af.clone(), reason: e.to_string() })?.iter().map(String::from).collect();
    let col = |n: &str| {
        header.iter().position(|h| h == n).ok_or_else(|| Error::File { file: af.clone(), reason: format!("missing column `{n}`") })
    };
    let (cz, cm, ct, cs, cd, cl) =
        (col("zred")?, col("log_mformed")?, col("tau_Gyr")?, col("t_start_Gyr")?, col("dust2")?, col("logzsol")?);
    // flux columns: flux_uJy_<anything ending in _<BAND>>
    let fcols: Vec<Option<usize>> = bands
        .iter()
        .map(|b| header.iter().position(|h| h.starts_with("flux_uJy_") && (h.ends_with(&format!("_{b}")) || h == &format!("flux_uJy_{b}"))))
        .collect();
    let cosmo = post.manifest.forward_model.cosmology;
    let zmax = post.manifest.max_redshift_trained;
    let names = post.parameter_names();
    let np = names.len();
    let nb = bands.len();
    let (mut flux, mut sig, mut seen, mut zs, mut truth) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut n_rows = 0;
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::Row { file: af.clone(), row: i + 1, line: 0, column: String::new(), reason: e.to_string() })?;
        n_rows += 1;
        let g = |c: usize| rec.get(c).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        let z = g(cz);
        if !(z.is_finite() && z > 0.0 && z <= zmax) {
            continue;
        }
        let t_univ = cosmo.age_gyr(z);
        let (logm, tau, ts) = (g(cm), g(ct), g(cs));
        let age = t_univ - ts;
        let Ok(sfh) = Sfh::new(SfhShape::DelayedTau { age_gyr: age, tau_gyr: tau }, logm, t_univ) else { continue };
        let f: Vec<f64> = fcols.iter().map(|c| c.map(|c| g(c) * if multiply_1pz { 1.0 + z } else { 1.0 }).unwrap_or(f64::NAN)).collect();
        if f.iter().any(|v| *v <= 0.0) {
            continue;
        }
        let mut rng = sbipix_sim::simulate::sample_rng(seed, i as u64);
        let ftrue: Vec<f64> = f.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect();
        let (mut s, mut o) = (vec![0.0; nb], vec![0.0; nb]);
        noise.draw(&mut rng, &ftrue, &mut s, &mut o);
        // map selection
        let sel: Vec<f64> = ["F277W", "F356W", "F444W"]
            .iter()
            .filter_map(|b| bands.iter().position(|x| x == b))
            .filter(|&b| f[b].is_finite())
            .map(|b| o[b] / s[b])
            .collect();
        if sel.is_empty() || sel.iter().sum::<f64>() / (sel.len() as f64) <= snr_min {
            continue;
        }
        let sm = sfh.summary();
        let floor = sm.log_mass_formed + sbipix_sim::prior::LOG_SSFR_FLOOR;
        let known = |n: &str| -> f64 {
            match n {
                "log_mass_formed" => logm,
                "log_sfr_100myr" => sm.sfr_100myr.log10().max(floor),
                "log_sfr_10myr" => sm.sfr_10myr.log10().max(floor),
                "mass_weighted_age_gyr" => sm.mass_weighted_age_gyr,
                "av_mag" => 1.086 * g(cd),
                "logzsol" => g(cl),
                "log_tau_gyr" => tau.log10(),
                "onset_fraction" => ts / t_univ,
                _ => f64::NAN,
            }
        };
        truth.extend(names.iter().map(|n| known(n)));
        for b in 0..nb {
            flux.push(if f[b].is_finite() { o[b] } else { f64::NAN });
            sig.push(s[b]);
            seen.push(f[b].is_finite());
        }
        zs.push(z);
    }
    let n = zs.len();
    if n < 10 {
        return Err(Error::File { file: af, reason: format!("only {n} usable rows (z ≤ {zmax}, positive fluxes, S/N > {snr_min})") });
    }
    log(&format!("sbipix: {n} of {n_rows} atlas rows usable; sampling {n_draws} draws each…"));
    let draws = post.sample(&flux, &sig, &seen, &zs, n_draws, seed ^ 0x77)?;
    let mut params = BTreeMap::new();
    for (j, name) in names.iter().enumerate() {
        if !truth[j].is_finite() {
            continue;
        }
        let t: Vec<f64> = (0..n).map(|i| truth[i * np + j]).collect();
        let d: Vec<f64> = (0..n * n_draws).map(|k| draws[k * np + j] as f64).collect();
        params.insert(name.clone(), metrics(&Draws { truth: &t, draws: &d, n_draws }));
    }
    let report = MismatchReport {
        atlas: af,
        model: model_dir.display().to_string(),
        n_rows,
        n_used: n,
        snr_min,
        multiplied_by_1pz: multiply_1pz,
        parameters: params,
        seed,
        created_by: format!("sbipix {}", env!("CARGO_PKG_VERSION")),
    };
    let names_known: Vec<String> = report.parameters.keys().cloned().collect();
    let md = format!(
        "# Model mismatch: `{}` on `{}`\n\n{} of {} rows used (S/N > {}, fluxes × (1+z): {}).\n\n{}",
        report.model,
        report.atlas,
        n,
        n_rows,
        snr_min,
        multiply_1pz,
        metrics_table(&report.parameters, &names_known)
    );
    let ferr = |p: &Path, e: String| Error::File { file: p.display().to_string(), reason: e };
    crate::write_dir_atomic(out, overwrite, |d| {
        std::fs::write(d.join("mismatch.json"), serde_json::to_string_pretty(&report).expect("report serialises"))
            .map_err(|e| ferr(d, e.to_string()))?;
        std::fs::write(d.join("mismatch.md"), md).map_err(|e| ferr(d, e.to_string()))
    })?;
    Ok(report)
}
