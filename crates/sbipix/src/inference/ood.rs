//! Out-of-distribution flags: does a pixel's input lie inside what the network was trained on?
//!
//! A network posterior is only as good as its training set's coverage of the input: the old
//! default model, trained on one JADES cube's noise, put bagpipes-made galaxies seen at four
//! times that background 1–2 dex off with nothing to warn (`scripts/bagpipes_depths.py`). Three
//! checks, each a bit of the map's `OOD` layer and a count in `summary.json`:
//!
//! * **noise** ([`OOD_NOISE`]): some measured band's σ lies outside what the training noise could
//!   produce: below the survey's smallest learnt background σ × the family's smallest depth
//!   factor × 10^(−3·band scatter), or above √(σ_bg,max² + a_max·max(f, 0)) with σ_bg,max the
//!   largest learnt σ × the largest depth factor × 10^(3·band scatter) and a_max the largest
//!   Poisson coefficient — each with a further ×0.8 / ×1.25 margin (the learnt quantile tables end
//!   at the learning data's extremes, and f stands in for the true flux);
//! * **bands** ([`OOD_BANDS`]): fewer than 0.1 % of the training pixels lacked this many bands:
//!   Σ over the family's coverage patterns that measure every band the pixel has, of the pattern's
//!   weight × P(Binomial(bands of the pattern, drop rate) ≥ the bands of the pattern the pixel
//!   lacks), is below 10⁻³;
//! * **colours** ([`OOD_COLOURS`]): the posterior-predictive reduced χ² over the n measured bands
//!   is above the 99.9 % point of χ²ₙ/n (Wilson & Hilferty 1931; within 2 % of the exact point for
//!   n ≥ 3): colours the model does not
//!   reproduce (only where the check ran).
//!
//! The exact posterior (the default) does not depend on the network beyond its use as a proposal,
//! so the flags matter most for `--fast`; they are reported either way.

use crate::inference::model::Posterior;
use sbipix_sim::survey::quantile_at;

/// Bit of the `OOD` layer: a σ outside the training noise.
pub const OOD_NOISE: u8 = 1;
/// Bit of the `OOD` layer: a band coverage the training rarely or never had.
pub const OOD_BANDS: u8 = 2;
/// Bit of the `OOD` layer: colours the model does not reproduce (PPC).
pub const OOD_COLOURS: u8 = 4;
/// Below this share of the training pixels a band coverage counts as unseen.
const MIN_COVERAGE_SHARE: f64 = 1e-3;
/// Standard-normal point of the PPC threshold (99.9 %).
const CHI2_Z: f64 = 3.090_232_306;
/// A pixel goes to a model's companion network when the companion's training set had more than
/// this many times the main network's share of pixels lacking the pixel's bands
/// ([`TrainingDomain::coverage_share`]). 2, not 1: where both saw a band set about equally often
/// (NIRCam's eight wide bands and F410M are a pattern of both) the main network, validated across
/// every depth and band set, keeps it.
pub const COMPANION_SHARE_RATIO: f64 = 2.0;

/// What the network was trained on, per band of the model.
#[derive(Debug, Clone)]
pub struct TrainingDomain {
    sigma_lo: Vec<f64>,
    sigma_bg_hi: Vec<f64>,
    poisson_hi: Vec<f64>,
    /// (weight, measured per band) of each coverage pattern
    patterns: Vec<(f64, Vec<bool>)>,
    drop_rate: f64,
    /// The domain of the model's companion network for sparse band sets, if it has one: pixels
    /// it samples ([`Self::uses_companion`]) are judged against it.
    companion: Option<Box<TrainingDomain>>,
}

/// Counts of flagged pixels, in `summary.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OodCounts {
    /// Pixels with any flag.
    pub any: usize,
    pub noise: usize,
    pub bands: usize,
    pub colours: usize,
}

impl OodCounts {
    /// Counts the flags of an `OOD` layer (NaN: not fitted).
    pub fn of(layer: &[f32]) -> Self {
        let mut c = Self::default();
        for v in layer.iter().filter(|v| v.is_finite()) {
            let b = *v as u8;
            c.any += (b != 0) as usize;
            c.noise += (b & OOD_NOISE != 0) as usize;
            c.bands += (b & OOD_BANDS != 0) as usize;
            c.colours += (b & OOD_COLOURS != 0) as usize;
        }
        c
    }
}

impl TrainingDomain {
    /// The domain of a model, from the survey (and its family) it was trained with; None when
    /// the model folder has no `survey.toml`.
    pub fn of(post: &Posterior) -> Option<Self> {
        post.domain.clone()
    }

    /// This domain with a companion network's: pixels whose band set the companion saw more of
    /// are judged against (and sampled by) the companion.
    pub fn with_companion(mut self, companion: TrainingDomain) -> Self {
        self.companion = Some(Box::new(companion));
        self
    }

    /// Whether a pixel measuring `measured` goes to the companion network: its training set had
    /// more than [`COMPANION_SHARE_RATIO`] times the main network's share of such band sets.
    pub fn uses_companion(&self, measured: &[bool]) -> bool {
        self.companion.as_ref().is_some_and(|c| c.coverage_share(measured) > COMPANION_SHARE_RATIO * self.coverage_share(measured))
    }

    /// The domain a pixel is judged against: the companion's where it samples the pixel.
    fn active(&self, measured: &[bool]) -> &TrainingDomain {
        match &self.companion {
            Some(c) if self.uses_companion(measured) => c,
            _ => self,
        }
    }

    /// The domain of a network trained on `survey`'s noise with random band drop-out `drop_rate`.
    pub fn new(survey: &sbipix_sim::Survey, drop_rate: f64) -> Self {
        let fam = survey.family.as_ref();
        let (dmin, dmax, scatter, pmax) =
            fam.map_or((1.0, 1.0, 0.0, 1.0), |f| (f.depth_factor_min, f.depth_factor_max, f.band_scatter_dex, f.poisson_factor_max));
        let spread = 10f64.powf(3.0 * scatter);
        let mut sigma_lo = Vec::new();
        let mut sigma_bg_hi = Vec::new();
        let mut poisson_hi = Vec::new();
        for b in &survey.bands {
            let q = &b.sigma_bg_quantiles_ujy;
            sigma_lo.push(quantile_at(q, 0.0) * dmin / spread * 0.8);
            sigma_bg_hi.push(quantile_at(q, 1.0) * dmax * spread * 1.25);
            poisson_hi.push(b.poisson_ujy * pmax * 1.25);
        }
        let names = survey.band_names();
        let patterns = match fam {
            None => vec![(1.0, vec![true; names.len()])],
            Some(f) => f.band_patterns.iter().map(|p| (p.weight, names.iter().map(|n| !p.missing.contains(n)).collect())).collect(),
        };
        let total: f64 = patterns.iter().map(|p| p.0).sum();
        let patterns = patterns.into_iter().map(|(w, m)| (w / total, m)).collect();
        Self { sigma_lo, sigma_bg_hi, poisson_hi, patterns, drop_rate, companion: None }
    }

    /// Whether some measured band's σ lies outside the training noise (of the network that
    /// samples the pixel).
    pub fn noise_outside(&self, flux: &[f64], sigma: &[f64], measured: &[bool]) -> bool {
        let d = self.active(measured);
        (0..d.sigma_lo.len()).any(|b| {
            measured[b] && {
                let hi = (d.sigma_bg_hi[b].powi(2) + d.poisson_hi[b] * flux[b].max(0.0)).sqrt();
                !(d.sigma_lo[b]..=hi).contains(&sigma[b])
            }
        })
    }

    /// The share of the training pixels that lacked at least as many bands, in a coverage pattern
    /// that measures every band this pixel has.
    pub fn coverage_share(&self, measured: &[bool]) -> f64 {
        self.patterns
            .iter()
            .filter(|(_, m)| measured.iter().zip(m).all(|(have, pat)| !*have || *pat))
            .map(|(w, m)| {
                let n = m.iter().filter(|v| **v).count();
                let lacking = m.iter().zip(measured).filter(|(pat, have)| **pat && !**have).count();
                w * binomial_tail(n, lacking, self.drop_rate)
            })
            .sum()
    }

    /// Whether fewer than 0.1 % of the training pixels (of the network that samples the pixel)
    /// lacked this many bands ([`Self::coverage_share`]).
    pub fn bands_outside(&self, measured: &[bool]) -> bool {
        self.active(measured).coverage_share(measured) < MIN_COVERAGE_SHARE
    }

    /// The flags of one pixel (without the PPC's).
    pub fn flags(&self, flux: &[f64], sigma: &[f64], measured: &[bool]) -> u8 {
        let mut f = 0;
        if self.noise_outside(flux, sigma, measured) {
            f |= OOD_NOISE;
        }
        if self.bands_outside(measured) {
            f |= OOD_BANDS;
        }
        f
    }
}

/// The one line the command line prints about the flags of `n` fitted `items` ("pixels",
/// "rows") kept in `place` (the `OOD` layer, the `ood` column); `exact`: whether the posteriors
/// are the exact ones (which the flags concern only as proposals).
pub fn describe(c: &OodCounts, n: usize, items: &str, place: &str, exact: bool) -> String {
    if c.any == 0 {
        return format!("  inside the network's training domain: all {n} {items} ({place})");
    }
    let advice = if exact {
        "the exact posteriors do not depend on it (the network is only their proposal)"
    } else {
        "their network posteriors (--fast) are not to be trusted: drop --fast for exact posteriors, or learn this survey's noise \
         (sbipix survey learn) and train on it (sbipix simulate --survey …, sbipix train)"
    };
    format!(
        "  outside the network's training domain: {} of {n} {items} (noise {}, bands {}, colours {}; {place}) — {advice}",
        c.any, c.noise, c.bands, c.colours
    )
}

/// The flags of a catalogue row of integrated photometry: bands and colours only — the network
/// sees such rows mapped into its training noise by construction
/// ([`crate::inference::integrated::sample_integrated`]), so their noise is never outside.
pub fn row_flags(domain: &TrainingDomain, measured: &[bool], ppc_chi2: f64) -> u8 {
    let mut f = 0;
    if domain.bands_outside(measured) {
        f |= OOD_BANDS;
    }
    if ppc_chi2.is_finite() && ppc_chi2 > chi2_reduced_limit(measured.iter().filter(|v| **v).count()) {
        f |= OOD_COLOURS;
    }
    f
}

/// The reduced χ² above which a posterior-predictive check over `n` bands flags the colours: the
/// 99.9 % point of χ²ₙ/n (Wilson–Hilferty).
pub fn chi2_reduced_limit(n: usize) -> f64 {
    let n = n.max(1) as f64;
    let a = 2.0 / (9.0 * n);
    (1.0 - a + CHI2_Z * a.sqrt()).powi(3)
}

/// P(X ≥ k) for X ~ Binomial(n, p).
fn binomial_tail(n: usize, k: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    // Σ_{j<k} C(n, j) p^j (1−p)^(n−j), in logs
    let ln_below: Vec<f64> =
        (0..k).map(|j| ln_choose(n, j) + j as f64 * p.ln() + (n - j) as f64 * (1.0 - p).max(f64::MIN_POSITIVE).ln()).collect();
    (1.0 - ln_below.iter().map(|v| v.exp()).sum::<f64>()).clamp(0.0, 1.0)
}

fn ln_choose(n: usize, k: usize) -> f64 {
    (1..=k).map(|i| ((n + 1 - i) as f64 / i as f64).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tails_and_chi2_limits_match_exact_values() {
        // P(X ≥ 1) = 1 − 0.9^8; P(X ≥ 3) for n = 8, p = 0.1 = 0.03809179 (exact sum)
        assert!((binomial_tail(8, 1, 0.1) - (1.0 - 0.9f64.powi(8))).abs() < 1e-12);
        assert!((binomial_tail(8, 3, 0.1) - 0.038_091_8).abs() < 1e-6);
        assert_eq!(binomial_tail(8, 0, 0.1), 1.0);
        assert_eq!(binomial_tail(8, 9, 0.1), 0.0);
        assert_eq!(binomial_tail(8, 1, 0.0), 0.0);
        // χ² 99.9 % points, scipy.stats.chi2.ppf(0.999, n) / n; Wilson–Hilferty is within 2 % from n = 3 on
        for (n, exact) in [(3, 5.422_079), (8, 3.265_560), (19, 2.306_326)] {
            let v = chi2_reduced_limit(n);
            assert!((v / exact - 1.0).abs() < 0.02, "n = {n}: {v} against {exact}");
        }
    }

    fn survey(family: Option<sbipix_sim::DepthFamily>) -> sbipix_sim::Survey {
        sbipix_sim::Survey {
            name: "t".into(),
            description: String::new(),
            provenance: String::new(),
            bands: (0..3)
                .map(|i| sbipix_sim::SurveyBand {
                    name: format!("B{i}"),
                    filter: String::new(),
                    sigma_bg_quantiles_ujy: vec![1.0, 2.0],
                    poisson_ujy: 0.5,
                    coverage: 1.0,
                    source: String::new(),
                })
                .collect(),
            depth_correlation: vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]],
            family,
        }
    }

    #[test]
    fn noise_and_band_limits_follow_the_training_survey() {
        let all = [true; 3];
        // one survey, no family: σ_bg in [1, 2] (× 0.8 / × 1.25), Poisson 0.5·1.25 per µJy
        let d = TrainingDomain::new(&survey(None), 0.1);
        assert!(!d.noise_outside(&[0.0; 3], &[1.5; 3], &all));
        assert!(!d.noise_outside(&[0.0; 3], &[0.81, 2.49, 1.0], &all));
        assert!(d.noise_outside(&[0.0; 3], &[0.79, 1.0, 1.0], &all));
        assert!(d.noise_outside(&[0.0; 3], &[1.0, 2.51, 1.0], &all));
        // a bright source may have a larger σ: √(2.5² + 0.625·100) = 8.29
        assert!(!d.noise_outside(&[100.0, 0.0, 0.0], &[8.2, 1.0, 1.0], &all));
        assert!(d.noise_outside(&[100.0, 0.0, 0.0], &[8.4, 1.0, 1.0], &all));
        // an unmeasured band is not judged
        assert!(!d.noise_outside(&[0.0; 3], &[100.0, 1.0, 1.0], &[false, true, true]));
        // bands: one missing of 3 at drop rate 0.1: P(≥1) = 0.271; all three: 0.001 (not < 1e-3)
        assert!((d.coverage_share(&[false, true, true]) - (1.0 - 0.9f64.powi(3))).abs() < 1e-12);
        assert_eq!(d.flags(&[0.0; 3], &[1.5; 3], &[false, false, true]), 0);
        let d0 = TrainingDomain::new(&survey(None), 0.0);
        assert_eq!(d0.flags(&[0.0; 3], &[1.5; 3], &[false, true, true]), OOD_BANDS);
        // a family widens the noise (×0.25…×8, 0.1 dex scatter: 10^0.3 ≈ ×2 more either way)
        let fam = sbipix_sim::DepthFamily {
            band_scatter_dex: 0.1,
            band_patterns: vec![
                sbipix_sim::BandPattern { name: "all".into(), weight: 1.0, missing: vec![] },
                sbipix_sim::BandPattern { name: "no B0".into(), weight: 1.0, missing: vec!["B0".into()] },
            ],
            ..sbipix_sim::DepthFamily::default_for(&[])
        };
        let f = TrainingDomain::new(&survey(Some(fam)), 0.0);
        let lo = 1.0 * 0.25 / 10f64.powf(0.3) * 0.8;
        assert!(!f.noise_outside(&[0.0; 3], &[lo * 1.01, 10.0, 30.0], &all));
        assert!(f.noise_outside(&[0.0; 3], &[lo * 0.99, 10.0, 1.0], &all));
        // with drop rate 0 the pattern "no B0" makes B0's absence seen (weight ½), B1's never
        assert_eq!(f.coverage_share(&[false, true, true]), 0.5);
        assert_eq!(f.flags(&[0.0; 3], &[1.0; 3], &[true, false, true]), OOD_BANDS);
    }

    #[test]
    fn pixels_go_to_the_companion_that_saw_more_of_their_band_set() {
        let fam = |missing: Vec<&str>| sbipix_sim::DepthFamily {
            band_patterns: vec![sbipix_sim::BandPattern {
                name: "p".into(),
                weight: 1.0,
                missing: missing.into_iter().map(String::from).collect(),
            }],
            ..sbipix_sim::DepthFamily::default_for(&[])
        };
        let alone = TrainingDomain::new(&survey(Some(fam(vec![]))), 0.0);
        let d = alone.clone().with_companion(TrainingDomain::new(&survey(Some(fam(vec!["B0"]))), 0.1));
        let no_b0 = [false, true, true];
        // all bands: only the main network's pattern measures B0
        assert!(!d.uses_companion(&[true; 3]));
        // B0 missing: never in the main training (drop rate 0), always in the companion's
        assert!(d.uses_companion(&no_b0));
        // B0, B1 missing: the companion's drop-out reaches it (P = 0.1), the main network's not
        assert!(d.uses_companion(&[false, false, true]));
        // the bands flag judges the pixel by the network that samples it
        assert_eq!(alone.flags(&[0.0; 3], &[1.5; 3], &no_b0), OOD_BANDS);
        assert_eq!(d.flags(&[0.0; 3], &[1.5; 3], &no_b0), 0);
        // a companion that saw a band set less than twice as often leaves it to the main network:
        // main drop rate 0.1 → P(≥1 of 3 missing) = 0.271; companion share 0.5 < 2 × 0.271
        let main = TrainingDomain::new(&survey(Some(fam(vec![]))), 0.1);
        let both = sbipix_sim::DepthFamily {
            band_patterns: vec![
                sbipix_sim::BandPattern { name: "all".into(), weight: 1.0, missing: vec![] },
                sbipix_sim::BandPattern { name: "no B0".into(), weight: 1.0, missing: vec!["B0".into()] },
            ],
            ..sbipix_sim::DepthFamily::default_for(&[])
        };
        let half = main.with_companion(TrainingDomain::new(&survey(Some(both)), 0.0));
        assert!(!half.uses_companion(&no_b0));
        assert!(!TrainingDomain::new(&survey(None), 0.1).uses_companion(&no_b0));
    }

    #[test]
    fn counts_read_the_bits() {
        let c = OodCounts::of(&[f32::NAN, 0.0, 1.0, 3.0, 4.0, 7.0]);
        assert_eq!(c, OodCounts { any: 4, noise: 3, bands: 2, colours: 2 });
    }
}
