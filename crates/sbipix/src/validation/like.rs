//! `sbipix validate --like DATA`: test pixels that look like the user's data.
//!
//! A model's own simulations are not what a user maps: SBIPIX's prior puts most selected test
//! pixels at S/N in the hundreds, real maps sit at 5–50, and the user's depth and band coverage
//! are not the training survey's. Given images (as `sbipix map` reads them), the test cases get
//!
//! * **their noise**: a survey learnt from the data themselves (`sbipix survey learn`'s
//!   [`sbipix_sim::survey::learn`]: per-band background σ quantiles, Poisson term, depth
//!   correlation), bands the data lack (or cover in fewer than 100 pixels) at the model's survey's
//!   median σ — and no noise family: the user's noise, exactly;
//! * **their band masks**: each test case takes the measured-band mask of one of the data's
//!   selected pixels (in turn, from a seeded shuffle), instead of the training's random drop-out;
//! * **their S/N**: of the cases passing the map selection, as many are kept per S/N bin
//!   ([`super::simulated::SNR_BINS`]) as make the bins' shares those of the data's selected
//!   pixels (the largest such subset; cases are independent, so the first ones of each bin).
//!
//! The prior stays the model's: the parameters are what the model assumes, the photometry's
//! quality is the user's.

use crate::{Error, Result};
use sbipix_io::ImageSet;
use sbipix_sim::Survey;
use sbipix_sim::survey::{BandLimit, LearningData, quantile_at};
use serde::{Deserialize, Serialize};

/// The data the test cases are made to look like.
pub struct LikeData {
    pub source: String,
    /// The survey learnt from the data, in the model's band order.
    pub survey: Survey,
    /// The selected pixels' measured-band masks (model band order).
    masks: Vec<Vec<bool>>,
    /// Share of the selected pixels per S/N bin.
    snr_share: Vec<f64>,
    pub pixels: usize,
}

/// What `metrics.json` records of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LikeInfo {
    pub source: String,
    /// Data pixels passing the map selection.
    pub pixels: usize,
    /// Their shares per S/N bin (`SNR_BINS`).
    pub snr_share: Vec<f64>,
    /// Bands the data measure (in at least one selected pixel).
    pub bands_measured: Vec<String>,
}

impl LikeData {
    /// Learns the data's noise, masks and S/N distribution for a model whose survey is `model`.
    pub fn of(img: &ImageSet, model: &Survey, snr_min: f64, log: &dyn Fn(&str)) -> Result<Self> {
        img.check()?;
        let bands = model.band_names();
        let nb = bands.len();
        let (flux, err) = img.pixel_rows(&bands);
        let np = img.ny * img.nx;
        // bands the data cover too little take the model survey's median σ
        let limits: Vec<BandLimit> = model
            .bands
            .iter()
            .map(|b| BandLimit {
                band: b.name.clone(),
                sigma_ujy: quantile_at(&b.sigma_bg_quantiles_ujy, 0.5),
                source: format!("the model's survey `{}` (median σ)", model.name),
            })
            .collect();
        let data = LearningData { file: img.source.clone(), bands: bands.clone(), flux: &flux, err: &err };
        let mut survey =
            sbipix_sim::survey::learn(&data, &limits, "like", &format!("learnt from {}", img.source), "sbipix validate --like")?;
        for (b, m) in survey.bands.iter_mut().zip(&model.bands) {
            b.filter = m.filter.clone();
        }
        // the map's selection on the data
        let snr_idx: Vec<usize> = crate::products::map::SNR_BANDS.iter().filter_map(|s| bands.iter().position(|b| b == s)).collect();
        let mut masks = Vec::new();
        let mut counts = vec![0usize; super::simulated::SNR_BINS.len()];
        for p in 0..np {
            let row = |v: &[f64], j: usize| v[p * nb + j];
            let seen: Vec<bool> = (0..nb).map(|j| row(&err, j) > 0.0).collect();
            let s: Vec<f64> = snr_idx.iter().filter(|&&j| seen[j]).map(|&j| row(&flux, j) / row(&err, j)).collect();
            if s.is_empty() {
                continue;
            }
            let snr = s.iter().sum::<f64>() / s.len() as f64;
            if snr > snr_min
                && let Some(k) = snr_bin(snr)
            {
                counts[k] += 1;
                masks.push(seen);
            }
        }
        let pixels = masks.len();
        if pixels < 20 {
            return Err(Error::file(
                &img.source,
                format!("only {pixels} pixels pass S/N > {snr_min} in {}: too few to describe", crate::products::map::SNR_BANDS.join("+")),
            ));
        }
        let snr_share = counts.iter().map(|c| *c as f64 / pixels as f64).collect();
        log(&format!("sbipix: test cases like {}: {pixels} pixels above S/N {snr_min}, their noise, band masks and S/N", img.source));
        Ok(Self { source: img.source.clone(), survey, masks, snr_share, pixels })
    }

    /// Gives every simulation the band mask of a data pixel (a seeded shuffle of them, in turn).
    pub fn apply_masks(&self, set: &mut sbipix_sim::TrainingSet, seed: u64) {
        let nb = set.bands.len();
        let mut order: Vec<usize> = (0..self.masks.len()).collect();
        let mut rng = sbipix_stats::SplitMix64::new(seed ^ sbipix_sim::streams::VALIDATION_LIKE_MASKS);
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        for i in 0..set.len() {
            let m = &self.masks[order[i % order.len()]];
            for (b, seen) in m.iter().enumerate() {
                if !seen {
                    set.flux_obs_ujy[i * nb + b] = f32::NAN;
                    set.sigma_ujy[i * nb + b] = f32::NAN;
                    set.observed[i * nb + b] = 0;
                }
            }
        }
    }

    /// The largest subset of `selected` (in order within each bin) whose shares per S/N bin are
    /// the data's.
    pub fn match_snr(&self, selected: &[usize], snr: &[f64]) -> Vec<usize> {
        let nbins = self.snr_share.len();
        let mut by_bin: Vec<Vec<usize>> = vec![Vec::new(); nbins];
        for &i in selected {
            if let Some(k) = snr_bin(snr[i]) {
                by_bin[k].push(i);
            }
        }
        // total T such that T·share_k ≤ available_k for every bin with data
        let total = (0..nbins)
            .filter(|&k| self.snr_share[k] > 0.0)
            .map(|k| by_bin[k].len() as f64 / self.snr_share[k])
            .fold(f64::INFINITY, f64::min);
        let mut out: Vec<usize> =
            (0..nbins).flat_map(|k| by_bin[k].iter().copied().take((total * self.snr_share[k]).floor() as usize)).collect();
        out.sort_unstable();
        out
    }

    pub fn info(&self) -> LikeInfo {
        let bands = self.survey.band_names();
        let bands_measured = bands.iter().enumerate().filter(|(b, _)| self.masks.iter().any(|m| m[*b])).map(|(_, n)| n.clone()).collect();
        LikeInfo { source: self.source.clone(), pixels: self.pixels, snr_share: self.snr_share.clone(), bands_measured }
    }
}

/// The S/N bin of [`super::simulated::SNR_BINS`] holding `snr` (None below the first edge).
fn snr_bin(snr: f64) -> Option<usize> {
    let edges = super::simulated::SNR_BINS;
    if snr.is_nan() || snr <= edges[0] {
        return None;
    }
    Some(edges.iter().rposition(|e| snr > *e).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_cases_have_the_datas_snr_shares() {
        let like = LikeData {
            source: "t".into(),
            survey: Survey::jades(),
            masks: vec![vec![true; 19]],
            snr_share: vec![0.5, 0.25, 0.25, 0.0, 0.0],
            pixels: 4,
        };
        // 10 cases in 5–10, 4 in 10–20, 9 in 20–50, 3 above 100: the 10–20 bin limits it to 16
        let snr: Vec<f64> = [vec![7.0; 10], vec![15.0; 4], vec![30.0; 9], vec![200.0; 3]].concat();
        let selected: Vec<usize> = (0..snr.len()).collect();
        let kept = like.match_snr(&selected, &snr);
        let count = |lo: f64, hi: f64| kept.iter().filter(|&&i| snr[i] > lo && snr[i] <= hi).count();
        assert_eq!((count(5.0, 10.0), count(10.0, 20.0), count(20.0, 50.0), count(100.0, f64::INFINITY)), (8, 4, 4, 0));
    }

    #[test]
    fn bins_follow_the_edges() {
        assert_eq!(snr_bin(4.9), None);
        assert_eq!(snr_bin(5.1), Some(0));
        assert_eq!(snr_bin(10.0), Some(0));
        assert_eq!(snr_bin(10.1), Some(1));
        assert_eq!(snr_bin(1e4), Some(4));
        assert_eq!(snr_bin(f64::NAN), None);
    }
}
