//! Likelihood-based reference posteriors: the answer a classical SED fit with the same forward
//! model and prior gives (tempered SMC over [`ShapeLikelihood`]), against which the network's
//! posteriors are judged (`sbipix validate --reference`).

use super::simulated::ReferenceComparison;
use crate::inference::likelihood::ShapeLikelihood;
use crate::{Error, Result};
use sbipix_diagnostics::{Draws, metrics};
use sbipix_sim::Prior;
use sbipix_sps::SpsModel;
use sbipix_stats::smc::{SmcSettings, smc};
use std::collections::BTreeMap;

/// A reference posterior: equally weighted draws of `names`.
#[derive(Debug, Clone)]
pub struct ReferencePosterior {
    /// The prior's [`Prior::inferred_names`].
    pub names: Vec<String>,
    /// [draws, names]
    pub draws: Vec<f64>,
    pub n_draws: usize,
    /// ln of the evidence p(f | σ, z) (flux in µJy).
    pub log_evidence: f64,
    pub likelihood_evaluations: usize,
}

/// The posterior of one pixel or galaxy under `prior` (delayed-τ or dense_basis) by tempered SMC over the shape
/// space: fluxes and σ in µJy, band by band as `model`'s bands; `measured[b]` false (or a
/// non-finite value, σ ≤ 0) leaves band b out.
#[allow(clippy::too_many_arguments)]
pub fn reference_posterior(
    model: &SpsModel,
    prior: &Prior,
    flux: &[f64],
    sigma: &[f64],
    measured: &[bool],
    redshift: f64,
    settings: SmcSettings,
) -> Result<ReferencePosterior> {
    let compiled = crate::inference::likelihood::compile_for(model, prior, redshift)?;
    let lk = ShapeLikelihood::new(model, &compiled, prior, flux, sigma, measured, redshift, 0.0)?;
    let r = smc(lk.dim(), settings, &|u: &[f64]| lk.eval(u));
    let np = lk.names().len();
    let n = settings.particles.max(2);
    let mut draws = vec![0.0; n * np];
    let mut rng = sbipix_sim::simulate::sample_rng(settings.seed, sbipix_sim::streams::REFERENCE_MASS);
    let d = lk.dim();
    for i in 0..n {
        lk.theta_row(&r.samples[i * d..(i + 1) * d], &r.aux[i], rand::RngExt::random::<f64>(&mut rng), &mut draws[i * np..(i + 1) * np]);
    }
    Ok(ReferencePosterior {
        names: lk.names().to_vec(),
        draws,
        n_draws: n,
        log_evidence: r.log_evidence,
        likelihood_evaluations: r.evaluations,
    })
}

/// The test data the reference fits need.
pub(super) struct Refs<'a> {
    pub(super) fwd: &'a sbipix_sps::SpsModel,
    pub(super) prior: &'a Prior,
    pub(super) flux: &'a [f64],
    pub(super) sigma: &'a [f64],
    pub(super) seen: &'a [bool],
    pub(super) z: &'a [f64],
    pub(super) snr: &'a [f64],
    pub(super) nb: usize,
}

/// Fits `cases` with the reference posterior (in parallel, one SMC run per case, seeded by the
/// case) and compares its metrics with the network's on the same cases. Also returns
/// `reference_cases.csv`: per case its redshift, S/N, and per parameter the truth and the 16/50/84 %
/// points of both posteriors.
#[allow(clippy::too_many_arguments)]
pub(super) fn compare_with_reference(
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
    let fits: Vec<ReferencePosterior> = cases
        .par_iter()
        .map(|&i| {
            let settings = SmcSettings { particles, seed: sbipix_stats::index_seed(seed, i as u64), ..Default::default() };
            let r = reference_posterior(
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
        [0.16, 0.5, 0.84].map(|q| sbipix_stats::quantile_sorted(&s, q))
    };
    for (j, name) in names.iter().enumerate() {
        let Some(rj) = fits[0].names.iter().position(|x| x == name) else {
            return Err(Error::unsupported(format!("a reference posterior of `{name}`"), "the prior has no such parameter"));
        };
        let truth: Vec<f64> = cases.iter().map(|&i| theta[i * p + j] as f64).collect();
        let dn: Vec<f64> = cases.iter().flat_map(|&i| (0..n_draws).map(move |k| draws[(i * n_draws + k) * p + j] as f64)).collect();
        let np = fits[0].names.len();
        let dr: Vec<f64> = fits.iter().flat_map(|f| (0..particles).map(move |k| f.draws[k * np + rj])).collect();
        npe.insert(name.clone(), metrics(&Draws { truth: &truth, draws: &dn, n_draws }));
        refm.insert(name.clone(), metrics(&Draws { truth: &truth, draws: &dr, n_draws: particles }));
        let hits = (0..cases.len())
            .filter(|&c| {
                let m = sbipix_stats::median(&dn[c * n_draws..(c + 1) * n_draws]);
                let mut s = dr[c * particles..(c + 1) * particles].to_vec();
                s.sort_by(|a, b| a.total_cmp(b));
                m >= sbipix_stats::quantile_sorted(&s, 0.16) && m <= sbipix_stats::quantile_sorted(&s, 0.84)
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
