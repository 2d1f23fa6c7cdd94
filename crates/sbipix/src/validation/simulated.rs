//! Validation of a trained model on fresh simulations from its own prior and survey: accuracy
//! (R², bias, NMAD, outliers), uncertainty (median 68 % width) and calibration (coverage, SBC,
//! TARP), with figures and a Markdown page.

use super::reference::{Refs, compare_with_reference};
use super::report::markdown;
use crate::error::write_file;
use crate::inference::model::Posterior;
use crate::inference::training_set::model_for_survey;
use crate::{Error, Result};
use sbipix_diagnostics::{Draws, ParamMetrics, Tarp, coverage, metrics, plots, sbc_ranks, tarp};
use sbipix_io::DataStore;
use sbipix_sim::streams;
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
    pub refinement: Option<crate::inference::refine::RefineSummary>,
    /// With a survey noise family: coverage of the selected cases per drawn depth factor
    /// ([`DEPTH_BINS`]) and per band coverage pattern (groups of fewer than 20 cases left out).
    #[serde(default)]
    pub coverage_by_depth: Vec<CoverageGroup>,
    #[serde(default)]
    pub coverage_by_pattern: Vec<CoverageGroup>,
    /// With `--like DATA`: what the test cases were made to look like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like: Option<super::like::LikeInfo>,
    /// With `--cases-from MODEL`: the model folder whose prior and survey made the test cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases_from: Option<String>,
}

/// Coverage of one group of test cases, with the range calibrated intervals give on as many
/// independent cases at 99.73 % (3 σ; [`sbipix_diagnostics::binomial::coverage_bounds`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoverageGroup {
    pub group: String,
    pub cases: usize,
    pub coverage_68: BTreeMap<String, f64>,
    pub coverage_95: BTreeMap<String, f64>,
    pub bounds_68: (f64, f64),
    pub bounds_95: (f64, f64),
    /// Every parameter's 68 % and 95 % coverage inside those ranges.
    pub calibrated: bool,
}

/// Edges of the depth-factor groups of [`ValidationReport::coverage_by_depth`].
pub const DEPTH_BINS: [f64; 6] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// How many selected test cases get a likelihood-based reference posterior, with how many
/// SMC particles (= draws). `cases = 0`: none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceOptions {
    pub cases: usize,
    pub particles: usize,
}

impl Default for ReferenceOptions {
    fn default() -> Self {
        Self { cases: 0, particles: crate::request::DEFAULT_REFERENCE_PARTICLES }
    }
}

/// The neural posterior against the likelihood-based reference posterior
/// ([`crate::validation::reference`]) on the same test cases.
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

/// A model's fresh test cases (`validate`, `calibrate`): simulated from the model's own prior and
/// survey, or from those of `cases_from` (another model folder with the same bands: two models
/// scored on identical pixels), with the noise and band masks of `like` when given, and the
/// model's parameter columns.
pub(super) struct SimulatedCases {
    /// The model's own prior (what refinement and reference posteriors use).
    pub prior: Prior,
    pub fwd: sbipix_sps::SpsModel,
    /// The survey whose noise made the cases (`like`'s, when given).
    pub survey: Survey,
    pub like: Option<super::like::LikeData>,
    pub set: sbipix_sim::TrainingSet,
}

/// Where the test cases come from, what noise they get and what they are simulated with: one
/// place for `validate` and `calibrate` (`like`: the data and the S/N selection they follow).
#[allow(clippy::too_many_arguments)]
pub(super) fn simulate_test_cases(
    store: &DataStore,
    post: &Posterior,
    model_dir: &Path,
    cases_from: Option<&Path>,
    like: Option<(&sbipix_io::ImageSet, f64)>,
    n: usize,
    seed: u64,
    log: &(dyn Fn(&str) + Sync),
) -> Result<SimulatedCases> {
    let read_prior = |dir: &Path| -> Result<Prior> {
        let p = dir.join("prior.toml");
        Ok(Prior::from_toml_str(&crate::error::read_file(&p)?, &p.display().to_string())?)
    };
    let prior = read_prior(model_dir)?;
    let (case_prior, cases_dir, drop_rate) = match cases_from {
        None => (prior.clone(), model_dir, post.manifest.training_set.drop_rate),
        Some(dir) => {
            let other = Posterior::load(dir)?;
            if other.manifest.bands != post.manifest.bands {
                return Err(Error::invalid(
                    "cases_from",
                    dir.display(),
                    format!("its bands ({}) are not the model's ({})", other.manifest.bands.join(", "), post.manifest.bands.join(", ")),
                ));
            }
            if other.manifest.training_set.seed == seed {
                log(&format!("sbipix: warning: validation seed {seed} equals the training-set seed of {}", dir.display()));
            }
            (read_prior(dir)?, dir, other.manifest.training_set.drop_rate)
        }
    };
    let sp = cases_dir.join("survey.toml");
    let survey = Survey::from_toml_str(&crate::error::read_file(&sp)?, &sp.display().to_string())?;
    let fwd = model_for_survey(store, &survey, model_dir, post.manifest.forward_model.clone(), log)?;
    let like = match like {
        Some((img, snr_min)) => Some(super::like::LikeData::of(img, &survey, snr_min, log)?),
        None => None,
    };
    let survey = like.as_ref().map_or(survey, |l| l.survey.clone());
    let noise = survey.sampler(&fwd.band_names())?;
    // like real data: their band masks instead of the training's random drop-out
    let drop_rate = if like.is_some() { 0.0 } else { drop_rate };
    log(&format!("sbipix: simulating {n} test cases (seed {seed})…"));
    let mut set = sbipix_sim::simulate(&fwd, &case_prior, &noise, SimulationSpec { n, seed, drop_rate }, &|_| {})?;
    if let Some(l) = &like {
        l.apply_masks(&mut set, seed);
    }
    // Cases from another prior may give the delayed-τ age in the other coordinate.
    add_age_coordinate(&mut set, &post.parameter_names());
    // A model may infer a subset of the prior's parameters (`sbipix train --params`): compare those.
    if set.parameter_names != post.parameter_names() {
        crate::inference::training::select_columns(&mut set, &post.parameter_names(), &model_dir.display().to_string())?;
    }
    Ok(SimulatedCases { prior, fwd, survey, like, set })
}

/// Test cases drawn from another model's prior (`--cases-from`) may carry the delayed-τ age in the
/// other coordinate (`onset_fraction` or `log_age_fraction`) than the model infers: its own is
/// appended, converted ([`sbipix_sim::theta::convert_age_coordinate`]).
fn add_age_coordinate(set: &mut sbipix_sim::simulate::TrainingSet, wanted: &[String]) {
    use sbipix_sim::theta::{Parameter, convert_age_coordinate};
    let pairs = [(Parameter::OnsetFraction, Parameter::LogAgeFraction), (Parameter::LogAgeFraction, Parameter::OnsetFraction)];
    for (want, have) in pairs {
        let (want_name, have_name) = (want.name(), have.name());
        if !wanted.contains(&want_name) || set.parameter_names.contains(&want_name) {
            continue;
        }
        let Some(j) = set.parameter_names.iter().position(|n| *n == have_name) else { continue };
        let p = set.parameter_names.len();
        set.theta = set
            .theta
            .chunks_exact(p)
            .flat_map(|row| row.iter().copied().chain(std::iter::once(convert_age_coordinate(have, want, row[j] as f64) as f32)))
            .collect();
        set.parameter_names.push(want_name);
    }
}

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
    refine: Option<crate::inference::refine::RefineSettings>,
    reference: ReferenceOptions,
    like: Option<&sbipix_io::ImageSet>,
    cases_from: Option<&Path>,
    out: &Path,
    overwrite: bool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<ValidationReport> {
    if n == 0 {
        return Err(Error::invalid("n", n, "need n ≥ 1 test cases"));
    }
    if n_draws < 10 {
        return Err(Error::invalid("draws", n_draws, "at least 10 posterior draws per case are needed for intervals"));
    }
    crate::check_output(out, overwrite)?;
    let post = Posterior::load(model_dir)?;
    if post.manifest.training_set.seed == seed {
        log(&format!("sbipix: warning: validation seed {seed} equals the training-set seed: the test cases repeat training cases"));
    }
    let t0 = std::time::Instant::now();
    let SimulatedCases { prior, fwd, survey: test_survey, like, set } =
        simulate_test_cases(store, &post, model_dir, cases_from, like.map(|img| (img, snr_min)), n, seed, log)?;
    let flux: Vec<f64> = set.flux_obs_ujy.iter().map(|v| *v as f64).collect();
    let sigma: Vec<f64> = set.sigma_ujy.iter().map(|v| *v as f64).collect();
    let seen: Vec<bool> = set.observed.iter().map(|&o| o == 1).collect();
    let z: Vec<f64> = set.redshift.iter().map(|v| *v as f64).collect();
    log(&format!("sbipix: sampling {n_draws} posterior draws for {n} test cases…"));
    let mut draws = post.sample(&flux, &sigma, &seen, &z, n_draws, seed ^ streams::VALIDATION_DRAWS)?;
    let names = post.parameter_names();
    let refinement = match refine {
        Some(settings) => Some(refine_cases(&fwd, &prior, (&flux, &sigma, &seen, &z), &names, &mut draws, settings, seed, log)?),
        None => None,
    };
    let nb = set.bands.len();
    let snr = crate::inference::snr_focus::selection_snr(&set);
    let mut selected: Vec<usize> = (0..n).filter(|&i| snr[i] > snr_min).collect();
    log(&format!("sbipix: {} of {n} test cases pass the map selection (S/N > {snr_min})", selected.len()));
    if let Some(l) = &like {
        selected = l.match_snr(&selected, &snr);
        log(&format!("sbipix: {} of them kept so that their S/N follows the {} pixels of {}", selected.len(), l.pixels, l.source));
    }
    let levels: Vec<f64> = (1..20).map(|k| k as f64 / 20.0).collect();
    let (draws, theta) = (&draws, &set.theta);
    let evaluate = |cases: &[usize]| Evaluation::of(cases, &names, theta, draws, n_draws, &levels, seed);
    if selected.len() < 20 {
        return Err(Error::invalid("n", n, format!("only {} test cases pass S/N > {snr_min}: raise it", selected.len())));
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
    let ev = evaluate(&selected);
    let all: Vec<usize> = (0..n).collect();
    let ev_all = evaluate(&all);
    let parameters_by_snr = metrics_by_snr(&selected, &snr, snr_min, &evaluate);
    let (coverage_by_depth, coverage_by_pattern) = match &test_survey.family {
        Some(fam) => coverage_groups(&selected, &set, fam, &evaluate),
        None => (Vec::new(), Vec::new()),
    };
    let report = ValidationReport {
        like: like.as_ref().map(|l| l.info()),
        cases_from: cases_from.map(|d| d.display().to_string()),
        coverage_by_depth,
        coverage_by_pattern,
        parameters: ev.params.clone(),
        tarp: ev.tarp.clone(),
        parameters_all: ev_all.params,
        tarp_all: ev_all.tarp,
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
    write_report(out, overwrite, &report, &names, &ev, &levels, reference_csv.as_deref())?;
    Ok(report)
}

/// Metrics of the selected cases per S/N bin ([`SNR_BINS`], the first starting at `snr_min`);
/// bins with fewer than 20 cases are left out.
fn metrics_by_snr(
    selected: &[usize],
    snr: &[f64],
    snr_min: f64,
    evaluate: &dyn Fn(&[usize]) -> Evaluation,
) -> Vec<(String, usize, BTreeMap<String, ParamMetrics>)> {
    let mut out = Vec::new();
    for (k, lo) in SNR_BINS.iter().enumerate() {
        let hi = SNR_BINS.get(k + 1).copied().unwrap_or(f64::INFINITY);
        let lo = lo.max(snr_min);
        let cases: Vec<usize> = selected.iter().copied().filter(|&i| snr[i] > lo && snr[i] <= hi).collect();
        if cases.len() >= 20 {
            let label = if hi.is_finite() { format!("{lo:.0}–{hi:.0}") } else { format!("> {lo:.0}") };
            out.push((label, cases.len(), evaluate(&cases).params));
        }
    }
    out
}

/// Coverage of the selected cases per depth factor ([`DEPTH_BINS`]) and per band pattern of the
/// noise family, each with the range calibrated intervals give at 3σ.
fn coverage_groups(
    selected: &[usize],
    set: &sbipix_sim::simulate::TrainingSet,
    family: &sbipix_sim::survey::DepthFamily,
    evaluate: &dyn Fn(&[usize]) -> Evaluation,
) -> (Vec<CoverageGroup>, Vec<CoverageGroup>) {
    let mut by_depth = Vec::new();
    for w in DEPTH_BINS.windows(2) {
        let cases: Vec<usize> = selected.iter().copied().filter(|&i| (w[0]..w[1]).contains(&(set.noise_depth[i] as f64))).collect();
        by_depth.extend(coverage_group(format!("×{}–×{}", w[0], w[1]), &cases, evaluate));
    }
    let mut by_pattern = Vec::new();
    for (k, pat) in family.band_patterns.iter().enumerate() {
        let cases: Vec<usize> = selected.iter().copied().filter(|&i| set.noise_pattern[i] as usize == k).collect();
        by_pattern.extend(coverage_group(pat.name.clone(), &cases, evaluate));
    }
    (by_depth, by_pattern)
}

/// The 68 and 95 % coverage of one group of cases and whether every parameter's lies inside the
/// exact 3σ binomial range of a calibrated posterior; None below 20 cases.
fn coverage_group(label: String, cases: &[usize], evaluate: &dyn Fn(&[usize]) -> Evaluation) -> Option<CoverageGroup> {
    if cases.len() < 20 {
        return None;
    }
    let m = evaluate(cases).params;
    let b68 = sbipix_diagnostics::binomial::coverage_bounds(cases.len(), 0.6827, 0.9973);
    let b95 = sbipix_diagnostics::binomial::coverage_bounds(cases.len(), 0.9545, 0.9973);
    let c68: BTreeMap<String, f64> = m.iter().map(|(k, v)| (k.clone(), v.coverage_68)).collect();
    let c95: BTreeMap<String, f64> = m.iter().map(|(k, v)| (k.clone(), v.coverage_95)).collect();
    let inside = |c: &BTreeMap<String, f64>, (lo, hi): (f64, f64)| c.values().all(|v| (lo..=hi).contains(v));
    let calibrated = inside(&c68, b68) && inside(&c95, b95);
    Some(CoverageGroup { group: label, cases: cases.len(), coverage_68: c68, coverage_95: c95, bounds_68: b68, bounds_95: b95, calibrated })
}

/// Refines the test cases' posteriors in place, logging progress every 10 %.
#[allow(clippy::too_many_arguments)]
fn refine_cases(
    fwd: &sbipix_sps::SpsModel,
    prior: &Prior,
    (flux, sigma, seen, z): (&[f64], &[f64], &[bool], &[f64]),
    names: &[String],
    draws: &mut [f32],
    settings: crate::inference::refine::RefineSettings,
    seed: u64,
    log: &(dyn Fn(&str) + Sync),
) -> Result<crate::inference::refine::RefineSummary> {
    let n = z.len();
    log(&format!("sbipix: refining the {n} posteriors with the forward model's likelihood…"));
    let t1 = std::time::Instant::now();
    let step = (n / 10).max(1);
    let outcomes =
        crate::inference::refine::refine_all(fwd, prior, flux, sigma, seen, z, names, draws, settings, seed ^ streams::REFINE, &|k| {
            if k.is_multiple_of(step) {
                log(&format!("sbipix:   {k}/{n} refined ({:.0} s)", t1.elapsed().as_secs_f64()));
            }
        })?;
    let summary = crate::inference::refine::RefineSummary::of(&outcomes, settings, t1.elapsed().as_secs_f64());
    log(&format!(
        "sbipix: refined {:.1} % of the cases (median ESS {:.0}, {:.0} likelihood evaluations per case, {:.0} s)",
        100.0 * summary.refined_fraction,
        summary.median_ess,
        summary.evaluations_per_pixel,
        summary.seconds
    ));
    Ok(summary)
}

/// Metrics of a set of test cases, and what the figures need.
struct Evaluation {
    params: BTreeMap<String, ParamMetrics>,
    tarp: Tarp,
    truths: Vec<Vec<f64>>,
    medians: Vec<Vec<f64>>,
    ranks: Vec<Vec<usize>>,
    covs: Vec<Vec<f64>>,
}

impl Evaluation {
    /// `theta` [cases × parameters] and `draws` [cases × n_draws × parameters] of all cases; the
    /// metrics of those in `cases`.
    fn of(cases: &[usize], names: &[String], theta: &[f32], draws: &[f32], n_draws: usize, levels: &[f64], seed: u64) -> Self {
        let (m, p) = (cases.len(), names.len());
        let mut params = BTreeMap::new();
        let (mut truths, mut medians, mut ranks, mut covs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, name) in names.iter().enumerate() {
            let truth: Vec<f64> = cases.iter().map(|&i| theta[i * p + j] as f64).collect();
            let dj: Vec<f64> = cases.iter().flat_map(|&i| (0..n_draws).map(move |k| draws[(i * n_draws + k) * p + j] as f64)).collect();
            let d = Draws { truth: &truth, draws: &dj, n_draws };
            params.insert(name.clone(), metrics(&d));
            medians.push((0..m).map(|i| sbipix_stats::median(&dj[i * n_draws..(i + 1) * n_draws])).collect::<Vec<f64>>());
            ranks.push(sbc_ranks(&d));
            covs.push(coverage(&d, levels));
            truths.push(truth);
        }
        let theta64: Vec<f64> = cases.iter().flat_map(|&i| (0..p).map(move |j| theta[i * p + j] as f64)).collect();
        let draws64: Vec<f64> = cases.iter().flat_map(|&i| (0..n_draws * p).map(move |k| draws[i * n_draws * p + k] as f64)).collect();
        let tarp = tarp(&theta64, &draws64, p, n_draws, seed);
        Self { params, tarp, truths, medians, ranks, covs }
    }
}

/// Writes `out` (figures, metrics.json, report.md, reference_cases.csv) atomically.
fn write_report(
    out: &Path,
    overwrite: bool,
    report: &ValidationReport,
    names: &[String],
    ev: &Evaluation,
    levels: &[f64],
    reference_csv: Option<&str>,
) -> Result<()> {
    crate::write_dir_atomic(out, overwrite, |d| -> Result<()> {
        // plotters' errors are not Send: kept as text
        let fig = |r: std::result::Result<(), Box<dyn std::error::Error>>, f: &str| r.map_err(|e| Error::write(d.join(f), e.to_string()));
        fig(plots::truth_vs_median(&d.join("truth_vs_median.png"), names, &ev.truths, &ev.medians), "truth_vs_median.png")?;
        fig(plots::coverage_curve(&d.join("coverage.png"), names, levels, &ev.covs), "coverage.png")?;
        fig(plots::sbc_histograms(&d.join("sbc_ranks.png"), names, &ev.ranks, report.n_draws), "sbc_ranks.png")?;
        fig(plots::tarp_curve(&d.join("tarp.png"), &ev.tarp), "tarp.png")?;
        write_file(&d.join("metrics.json"), serde_json::to_string_pretty(report).expect("report serialises"))?;
        write_file(&d.join("report.md"), markdown(report, names))?;
        if let Some(csv) = reference_csv {
            write_file(&d.join("reference_cases.csv"), csv)?;
        }
        Ok(())
    })
}
