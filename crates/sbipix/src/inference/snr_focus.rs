//! Training sets focused on the S/N of real maps (`sbipix simulate --focus-snr`).
//!
//! Why: the prior's pixels are not the pixels users map. Of the default's 10⁶ training pixels
//! (physical prior, `jades_any_depth` noise) only 17 % have the S/N of real map pixels (5–50;
//! the real JADES cube: median 9, 90th percentile 22), 44 % are below 5 — pixels a map never
//! fits — and 33 % above 100. A focused set keeps every simulation whose selection S/N lies in
//! a window and a random fraction of the others, so the network spends its examples where maps
//! need them and still sees every S/N.
//!
//! This does not change the posterior the network learns. Keeping a simulation with a
//! probability w(x) that depends only on its noisy photometry x turns p(θ, x) into
//! p(θ, x) w(x) / Z, whose conditional p(θ | x) is unchanged (w cancels). The S/N used is
//! [`selection_snr`]: computed from the noisy fluxes and their σ, never from θ or the noiseless
//! fluxes (that would bias the posterior). For the same reason sets with different focus (or
//! none) may be merged.
//!
//! The decision for simulation i depends only on the seed, i and its photometry, and the rows are
//! drawn in rounds of consecutive indices, so a focused set is the same bytes whatever the thread
//! count or round size: the first `n` kept simulations of the seed's sequence.

use crate::{Error, Result};
use sbipix_sim::simulate::{TrainingSet, sample_rng, simulate_indices};
use sbipix_sim::{NoiseSampler, Prior, SimulationSpec};
use sbipix_sps::SpsModel;
use serde::{Deserialize, Serialize};

/// Which simulations a focused training set keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SnrFocus {
    /// Every simulation whose [`selection_snr`] lies in `snr_min ..= snr_max` is kept …
    pub snr_min: f64,
    pub snr_max: f64,
    /// … and this fraction of the others (including those with no S/N band observed), at random.
    pub outside_fraction: f64,
}

/// The S/N window of the recipe in `docs/training-sets.md`: S/N 3–100 holds the real maps'
/// pixels (selected at S/N > 5; the JADES cube's brightest reach ≈ 60) with room for their
/// noise, and a fifth of the rest keeps the network's training family complete.
impl Default for SnrFocus {
    fn default() -> Self {
        Self { snr_min: 3.0, snr_max: 100.0, outside_fraction: 0.2 }
    }
}

/// A focused set's record in its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FocusRecord {
    #[serde(flatten)]
    pub focus: SnrFocus,
    /// Simulations drawn to keep `n`: indices `0 .. n_drawn` of the seed's sequence.
    pub n_drawn: usize,
}

/// Stream of the keep/drop draws, apart from the simulations' own (any fixed constant would do).
const KEEP_STREAM: u64 = 0x5EED_F0C5_0000_0001;
/// The most simulations held in memory in one round (≈ 0.3 kB each with 19 bands).
const MAX_ROUND: usize = 2_000_000;
/// The first round, which measures the fraction kept.
const PILOT: usize = 20_000;

impl SnrFocus {
    /// Refuses windows that keep nothing or everything by mistake.
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = (self.snr_min, self.snr_max);
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo < hi) {
            return Err(Error::invalid("focus_snr", format!("{lo},{hi}"), "needs 0 ≤ MIN < MAX, both finite (e.g. 3,100)"));
        }
        let f = self.outside_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(Error::invalid(
                "outside_fraction",
                f,
                "must lie in (0, 1]: with 0 the network would never see pixels outside the window, and could not flag them",
            ));
        }
        Ok(())
    }

    /// Whether simulation `index` of `seed`, with selection S/N `snr`, is kept.
    pub fn keeps(&self, snr: f64, seed: u64, index: usize) -> bool {
        if snr >= self.snr_min && snr <= self.snr_max {
            return true;
        }
        use rand::RngExt;
        sample_rng(seed ^ KEEP_STREAM, index as u64).random::<f64>() < self.outside_fraction
    }
}

/// SBIPIX's pixel selection on the noisy photometry: mean S/N over the map's S/N bands
/// ([`crate::request::SNR_BANDS`]) per simulation, NaN where none is observed.
pub fn selection_snr(set: &TrainingSet) -> Vec<f64> {
    let nb = set.bands.len();
    let sel_bands: Vec<usize> = crate::request::SNR_BANDS.iter().filter_map(|b| set.bands.iter().position(|x| x == b)).collect();
    (0..set.len())
        .map(|i| {
            let v: Vec<f64> = sel_bands
                .iter()
                .filter(|&&b| set.observed[i * nb + b] == 1)
                .map(|&b| (set.flux_obs_ujy[i * nb + b] / set.sigma_ujy[i * nb + b]) as f64)
                .collect();
            if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
        })
        .collect()
}

/// The first `spec.n` simulations of `spec.seed`'s sequence that `focus` keeps, and how many
/// were drawn to find them. `progress(kept)`.
pub fn simulate_focused(
    model: &SpsModel,
    prior: &Prior,
    noise: &NoiseSampler,
    spec: SimulationSpec,
    focus: SnrFocus,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(TrainingSet, usize)> {
    focus.validate()?;
    let mut kept: Option<TrainingSet> = None;
    let (mut drawn, mut n_kept, mut last_kept) = (0usize, 0usize, 0usize);
    while n_kept < spec.n {
        let need = spec.n - n_kept;
        // the fraction kept so far (≥ outside_fraction; none measured before the pilot)
        let rate = if drawn == 0 { 0.0 } else { (n_kept as f64 / drawn as f64).max(focus.outside_fraction) };
        let block = if drawn == 0 { PILOT.min(spec.n) } else { ((need as f64 / rate * 1.03).ceil() as usize + 256).min(MAX_ROUND) };
        let before = n_kept;
        let within = |done: usize| progress((before + (done as f64 * rate) as usize).min(spec.n - 1));
        let part = simulate_indices(model, prior, noise, SimulationSpec { n: block, ..spec }, drawn, &within)?;
        let snr = selection_snr(&part);
        let rows: Vec<usize> = (0..block).filter(|&j| focus.keeps(snr[j], spec.seed, drawn + j)).take(need).collect();
        if let Some(&j) = rows.last() {
            last_kept = drawn + j;
        }
        n_kept += rows.len();
        let part = part.rows(&rows);
        match kept.as_mut() {
            None => kept = Some(part),
            Some(k) => k.append(&part),
        }
        drawn += block;
        progress(n_kept);
    }
    Ok((kept.expect("n ≥ 1"), last_kept + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_kept_and_a_fraction_of_the_rest() {
        let f = SnrFocus { snr_min: 3.0, snr_max: 100.0, outside_fraction: 0.2 };
        assert!((0..1000).all(|i| f.keeps(3.0, 7, i) && f.keeps(50.0, 7, i) && f.keeps(100.0, 7, i)));
        for snr in [f64::NAN, 1.0, 500.0] {
            let k = (0..20_000).filter(|&i| f.keeps(snr, 7, i)).count() as f64 / 20_000.0;
            // binomial σ of 0.2 on 20 000 draws is 0.0028
            assert!((k - 0.2).abs() < 0.012, "kept {k} outside the window (S/N {snr})");
        }
        // the same (seed, index) always decides the same way; another seed decides otherwise
        let a: Vec<bool> = (0..500).map(|i| f.keeps(1.0, 7, i)).collect();
        assert_eq!(a, (0..500).map(|i| f.keeps(1.0, 7, i)).collect::<Vec<_>>());
        assert_ne!(a, (0..500).map(|i| f.keeps(1.0, 8, i)).collect::<Vec<_>>());
    }

    #[test]
    fn bad_windows_are_refused() {
        let bad = [(5.0, 3.0, 0.2), (-1.0, 3.0, 0.2), (3.0, f64::INFINITY, 0.2), (3.0, 100.0, 0.0), (3.0, 100.0, 1.5)];
        for (lo, hi, f) in bad {
            assert!(SnrFocus { snr_min: lo, snr_max: hi, outside_fraction: f }.validate().is_err(), "{lo} {hi} {f}");
        }
        assert!(SnrFocus::default().validate().is_ok());
    }
}
