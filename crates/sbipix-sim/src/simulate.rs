//! Training sets: draws from the prior → forward model → survey noise, in parallel and
//! reproducibly (sample i depends only on the seed and i, so any thread count gives the same
//! bytes).

use crate::error::{Result, SimError};
use crate::prior::Prior;
use crate::survey::NoiseSampler;
use crate::theta::{Parameter, theta_row};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use sbipix_sps::{SpsModel, Workspace};

/// How many simulations, which seed, how often a band is dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulationSpec {
    pub n: usize,
    pub seed: u64,
    /// Probability that a band is marked missing in a simulation (independently per band), so
    /// that one model serves data lacking some bands.
    pub drop_rate: f64,
}

/// A simulated training set; arrays are row-major, one row per simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    pub parameter_names: Vec<String>,
    pub bands: Vec<String>,
    /// [n, parameters]
    pub theta: Vec<f32>,
    /// `[n]`
    pub redshift: Vec<f32>,
    /// [n, bands], µJy
    pub flux_true_ujy: Vec<f32>,
    /// [n, bands], µJy; NaN where the band is missing
    pub flux_obs_ujy: Vec<f32>,
    /// [n, bands], µJy; NaN where the band is missing
    pub sigma_ujy: Vec<f32>,
    /// [n, bands]: 1 = measured, 0 = missing
    pub observed: Vec<u8>,
    /// `[n]`: the common depth factor a survey's noise family drew (1 without a family;
    /// [`crate::survey::NoiseDraw`]). Kept in memory for validation, not written to files.
    pub noise_depth: Vec<f32>,
    /// `[n]`: the band pattern it drew ([`NO_PATTERN`] without a family).
    pub noise_pattern: Vec<u8>,
}

/// [`TrainingSet::noise_pattern`] of a simulation without a noise family.
pub const NO_PATTERN: u8 = u8::MAX;

impl TrainingSet {
    pub fn len(&self) -> usize {
        self.redshift.len()
    }
    pub fn is_empty(&self) -> bool {
        self.redshift.is_empty()
    }

    /// Appends `other`'s rows (same parameters and bands) after these.
    pub fn append(&mut self, other: &TrainingSet) {
        debug_assert!(self.parameter_names == other.parameter_names && self.bands == other.bands);
        self.theta.extend_from_slice(&other.theta);
        self.redshift.extend_from_slice(&other.redshift);
        self.flux_true_ujy.extend_from_slice(&other.flux_true_ujy);
        self.flux_obs_ujy.extend_from_slice(&other.flux_obs_ujy);
        self.sigma_ujy.extend_from_slice(&other.sigma_ujy);
        self.observed.extend_from_slice(&other.observed);
        self.noise_depth.extend_from_slice(&other.noise_depth);
        self.noise_pattern.extend_from_slice(&other.noise_pattern);
    }

    /// The rows `rows` (in that order) as a new set.
    pub fn rows(&self, rows: &[usize]) -> TrainingSet {
        let (np, nb) = (self.parameter_names.len(), self.bands.len());
        let pick = |v: &[f32], w: usize| rows.iter().flat_map(|&i| v[i * w..(i + 1) * w].iter().copied()).collect::<Vec<f32>>();
        TrainingSet {
            parameter_names: self.parameter_names.clone(),
            bands: self.bands.clone(),
            theta: pick(&self.theta, np),
            redshift: pick(&self.redshift, 1),
            flux_true_ujy: pick(&self.flux_true_ujy, nb),
            flux_obs_ujy: pick(&self.flux_obs_ujy, nb),
            sigma_ujy: pick(&self.sigma_ujy, nb),
            observed: rows.iter().flat_map(|&i| self.observed[i * nb..(i + 1) * nb].iter().copied()).collect(),
            noise_depth: pick(&self.noise_depth, 1),
            noise_pattern: rows.iter().map(|&i| self.noise_pattern[i]).collect(),
        }
    }
}

/// The RNG of simulation `i`: SplitMix64 of (seed, i) seeds a PCG-64 (MCG) stream.
pub fn sample_rng(seed: u64, i: u64) -> rand_pcg::Pcg64Mcg {
    use sbipix_stats::splitmix64;
    rand_pcg::Pcg64Mcg::seed_from_u64(splitmix64(seed) ^ splitmix64(i.wrapping_add(0xD1B5_4A32_D192_ED03)))
}

/// Runs `spec.n` simulations. `model` and `noise` must have the same bands in the same order.
/// `progress` is called with the number of simulations done so far.
pub fn simulate(
    model: &SpsModel,
    prior: &Prior,
    noise: &NoiseSampler,
    spec: SimulationSpec,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<TrainingSet> {
    simulate_indices(model, prior, noise, spec, 0, progress)
}

/// Simulations `first .. first + spec.n` of the seed's sequence: the rows [`simulate`] with a
/// larger `n` would give at those indices, bit for bit (so a set can be drawn in rounds).
pub fn simulate_indices(
    model: &SpsModel,
    prior: &Prior,
    noise: &NoiseSampler,
    spec: SimulationSpec,
    first: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<TrainingSet> {
    let nb = model.n_bands();
    if noise.n_bands() != nb {
        return Err(SimError::Survey {
            file: "(survey)".into(),
            reason: format!("{} survey bands for a {nb}-band model", noise.n_bands()),
        });
    }
    if !(0.0..1.0).contains(&spec.drop_rate) {
        return Err(SimError::Prior {
            file: "(options)".into(),
            key: "drop_rate".into(),
            reason: format!("{} must lie in [0, 1)", spec.drop_rate),
        });
    }
    let layout = prior.theta_layout();
    let names: Vec<String> = layout.iter().map(Parameter::name).collect();
    let np = names.len();
    let n = spec.n;
    let mut set = TrainingSet {
        parameter_names: names.clone(),
        bands: model.band_names(),
        theta: vec![0.0; n * np],
        redshift: vec![0.0; n],
        flux_true_ujy: vec![0.0; n * nb],
        flux_obs_ujy: vec![0.0; n * nb],
        sigma_ujy: vec![0.0; n * nb],
        observed: vec![0; n * nb],
        noise_depth: vec![1.0; n],
        noise_pattern: vec![NO_PATTERN; n],
    };
    const CHUNK: usize = 512;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let cosmology = model.config().cosmology;
    set.theta
        .par_chunks_mut(CHUNK * np)
        .zip(set.redshift.par_chunks_mut(CHUNK))
        .zip(set.flux_true_ujy.par_chunks_mut(CHUNK * nb))
        .zip(set.flux_obs_ujy.par_chunks_mut(CHUNK * nb))
        .zip(set.sigma_ujy.par_chunks_mut(CHUNK * nb))
        .zip(set.observed.par_chunks_mut(CHUNK * nb))
        .zip(set.noise_depth.par_chunks_mut(CHUNK))
        .zip(set.noise_pattern.par_chunks_mut(CHUNK))
        .enumerate()
        .try_for_each(|(c, (((((((theta, z), ft), fo), sg), ob), nd), npat))| -> Result<()> {
            let mut ws = Workspace::default();
            let (mut flux, mut sig, mut obs) = (vec![0.0; nb], vec![0.0; nb], vec![0.0; nb]);
            for k in 0..z.len() {
                let i = first + c * CHUNK + k;
                let mut rng = sample_rng(spec.seed, i as u64);
                let draw = prior.sample(&mut rng, &cosmology);
                let d = model.photometry_into(&draw.params, &mut ws, &mut flux).map_err(|source| SimError::Draw {
                    index: i,
                    seed: spec.seed,
                    source,
                })?;
                let drawn = noise.draw(&mut rng, &flux, &mut sig, &mut obs);
                nd[k] = drawn.depth_factor as f32;
                npat[k] = drawn.pattern.map_or(NO_PATTERN, |p| p.min(NO_PATTERN as usize - 1) as u8);
                let p = &draw.params;
                let mut row = vec![0.0; np];
                theta_row(&layout, &d, p, &draw.shape, &mut row);
                for (t, v) in theta[k * np..(k + 1) * np].iter_mut().zip(&row) {
                    *t = *v as f32;
                }
                z[k] = p.redshift as f32;
                for b in 0..nb {
                    let kept = spec.drop_rate == 0.0 || rng.random::<f64>() >= spec.drop_rate;
                    let keep = kept && drawn.pattern.is_none_or(|p| noise.pattern_measures(p, b));
                    ft[k * nb + b] = flux[b] as f32;
                    fo[k * nb + b] = if keep { obs[b] as f32 } else { f32::NAN };
                    sg[k * nb + b] = if keep { sig[b] as f32 } else { f32::NAN };
                    ob[k * nb + b] = keep as u8;
                }
            }
            let total = done.fetch_add(z.len(), std::sync::atomic::Ordering::Relaxed) + z.len();
            progress(total);
            Ok(())
        })?;
    Ok(set)
}
