//! Posterior draws for integrated photometry (whole galaxies, or the sum of a galaxy's pixels)
//! from a network trained on single pixels.

use super::model::Posterior;
use crate::{Error, Result};
use sbipix_stats::SplitMix64;
use sbipix_stats::normal::box_muller;

pub use crate::request::DEFAULT_ERROR_FLOOR;

/// Replicas of each object's photometry with added noise in [`sample_integrated`]: the posterior
/// is the mixture over these noise realisations.
pub const INTEGRATED_REPLICAS: usize = 8;

/// Posterior draws for integrated photometry (whole galaxies, or the sum of a galaxy's pixels):
/// flux and σ [objects × bands] in µJy in the model's band order, `measured` likewise; returns
/// [objects × n × parameters]. `error_floor` (e.g. 0.05) is added in quadrature as a fraction of
/// the flux before fitting.
///
/// The network was trained on single pixels with the survey's noise: integrated photometry is
/// brighter, has larger errors and another error pattern across bands. Two facts make it usable:
/// 1. Flux scales linearly with mass at fixed SFH shape, dust, metallicity and redshift, so an
///    object can be fitted as a pixel k times fainter (f/k) and log10 k added to the extensive
///    parameters (masses, SFRs) afterwards.
/// 2. A measurement can always be made *noisier*: adding Gaussian noise of variance
///    σ_t² − (σ/k)² to f/k gives an exact measurement of the true f/k with error σ_t.
///
/// The network reads σ as well as f (in the training noise model σ² = σ_bg² + a·f, so σ carries
/// information about the flux; measured: fixing σ at the median background for simulated pixels
/// biases log M* by −0.3 to −0.6 dex). So each band is mapped onto the σ the survey gives a
/// median-depth pixel of that flux, σ_t² = σ_bg,50² + a·f/k: per band, k_b solves
/// (σ_b/k)² = σ_bg,50² + a_b f_b/k, and k = max k_b makes σ_b/k ≤ σ_t in every band; the bands
/// with smaller errors get the difference as added noise. The result is photometry the network
/// saw in training, at the price of some information (the posterior can only widen). The added
/// noise is random (seeded); the draws are spread over [`INTEGRATED_REPLICAS`] realisations so
/// one unlucky draw does not decide the answer. Without a survey model (old model folders) σ_t
/// is the encoding scale and a = 0.
#[allow(clippy::too_many_arguments)]
pub fn sample_integrated(
    post: &Posterior,
    flux: &[f64],
    sigma: &[f64],
    measured: &[bool],
    redshift: &[f64],
    n: usize,
    seed: u64,
    error_floor: f64,
) -> Result<Vec<f32>> {
    let nb = post.manifest.bands.len();
    let no = redshift.len();
    if flux.len() != no * nb || sigma.len() != no * nb || measured.len() != no * nb {
        return Err(Error::shape(
            "integrated photometry (flux, σ, measured)",
            format!("{no} objects × {nb} bands = {} values each", no * nb),
            format!("{}, {}, {}", flux.len(), sigma.len(), measured.len()),
        ));
    }
    if !(error_floor.is_finite() && error_floor >= 0.0) {
        return Err(Error::invalid("error_floor", error_floor, "must be a finite fraction ≥ 0"));
    }
    // checked here, per object (the network sees replicas of each)
    let zmax = post.manifest.max_redshift_trained;
    if let Some(i) = redshift.iter().position(|z| !(z.is_finite() && *z >= 0.0 && *z <= zmax)) {
        return Err(Error::invalid("redshift", redshift[i], format!("(object {i}) outside the trained range [0, {zmax}]")));
    }
    let scales = &post.manifest.encoding.scale_ujy;
    // per band: (median σ_bg, Poisson coefficient)
    let noise: Vec<(f64, f64)> = match &post.survey {
        Some(s) => {
            s.bands.iter().map(|b| (sbipix_sim::survey::quantile_at(&b.sigma_bg_quantiles_ujy, 0.5), b.poisson_ujy.max(0.0))).collect()
        }
        None => scales.iter().map(|s| (*s, 0.0)).collect(),
    };
    let reps = INTEGRATED_REPLICAS.min(n).max(1);
    let per = n.div_ceil(reps);
    let rows = no * reps;
    let (mut fs, mut ss, mut ms, mut zs) = (vec![f64::NAN; rows * nb], vec![f64::NAN; rows * nb], vec![false; rows * nb], vec![0.0; rows]);
    let mut ks = Vec::with_capacity(no);
    for o in 0..no {
        let usable = |b: usize| {
            let i = o * nb + b;
            measured[i] && flux[i].is_finite() && sigma[i].is_finite() && sigma[i] > 0.0
        };
        let sig = |b: usize| {
            let i = o * nb + b;
            (sigma[i] * sigma[i] + (error_floor * flux[i]).powi(2)).sqrt()
        };
        let k = fainter_by(&noise, (0..nb).filter(|&b| usable(b)).map(|b| (b, flux[o * nb + b], sig(b))));
        ks.push(k);
        for r in 0..reps {
            let row = o * reps + r;
            zs[row] = redshift[o];
            // a small counter-based generator: reproducible for (seed, object, replica, band)
            let mut uniforms =
                SplitMix64::new(seed ^ sbipix_sim::streams::INTEGRATED_REPLICA_NOISE.wrapping_mul(o as u64 + 1) ^ ((r as u64) << 48));
            for b in 0..nb {
                // one pair of uniforms in (0, 1) per band whether used or not, so streams do not shift
                let (u1, u2) = (uniforms.next_f64_open(), uniforms.next_f64_open());
                if !usable(b) {
                    continue;
                }
                let i = row * nb + b;
                let fk = flux[o * nb + b] / k;
                let sk = sig(b) / k;
                let (s50, a) = noise[b];
                let target = (s50 * s50 + a * fk.max(0.0)).sqrt().max(sk);
                let extra = (target * target - sk * sk).max(0.0).sqrt();
                let g = box_muller(u1, u2);
                fs[i] = fk + extra * g;
                ss[i] = target;
                ms[i] = true;
            }
        }
    }
    let raw = post.sample(&fs, &ss, &ms, &zs, per, seed)?;
    let np = post.parameter_names().len();
    // [objects × reps × per × np] → the first n of each object's reps·per draws
    let mut draws = Vec::with_capacity(no * n * np);
    for o in 0..no {
        let start = o * reps * per * np;
        draws.extend_from_slice(&raw[start..start + n * np]);
    }
    shift_extensive(&post.parameter_names(), &mut draws, &ks, n);
    Ok(draws)
}

/// The factor k by which an object is fitted as a fainter pixel: per usable band b (flux f, σ s),
/// k_b solves (s/k)² = σ_bg,50² + a·f/k with the band's `noise` (median σ_bg, Poisson coefficient
/// a); k = max k_b makes s/k ≤ the pixel σ in every band. 1 when no band gives one.
fn fainter_by(noise: &[(f64, f64)], bands: impl Iterator<Item = (usize, f64, f64)>) -> f64 {
    let mut k: f64 = 0.0;
    for (b, f, s) in bands {
        let (s50, a) = noise[b];
        let af = a * f.max(0.0);
        let u = (af + (af * af + 4.0 * s * s * s50 * s50).sqrt()) / (2.0 * s * s);
        if u.is_finite() && u > 0.0 {
            k = k.max(1.0 / u);
        }
    }
    if k.is_finite() && k > 0.0 { k } else { 1.0 }
}

/// Adds log10 k of each object to its draws of the extensive parameters (masses, SFRs): draws
/// [objects × n × names].
fn shift_extensive(names: &[String], draws: &mut [f32], ks: &[f64], n: usize) {
    let np = names.len();
    for (j, name) in names.iter().enumerate() {
        if sbipix_sim::theta::is_extensive(name) {
            for (o, k) in ks.iter().enumerate() {
                let shift = k.log10() as f32;
                for d in 0..n {
                    draws[(o * n + d) * np + j] += shift;
                }
            }
        }
    }
}
