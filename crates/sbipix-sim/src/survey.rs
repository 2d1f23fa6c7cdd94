//! Survey noise models: what a pixel's photometric errors look like in a given survey.
//!
//! A survey is its bands and, per band,
//! * the distribution of the background (sky + read) noise σ_bg over the pixels — tabulated as
//!   101 quantiles, learnt from real error maps;
//! * how σ grows with the source's own flux: σ² = σ_bg² + a·max(f, 0) (Poisson noise of the
//!   source; a in µJy);
//! * how the depths of different bands go together: a Gaussian copula whose correlation matrix is
//!   that of the normal scores of σ_bg across pixels (deep regions of a mosaic are often deep in
//!   some bands and not in others — in the JADES field below the short- and long-wavelength
//!   NIRCam depths are uncorrelated, within each group strongly correlated).
//!
//! Noise is drawn in flux: f_obs = f + σ·N(0, 1), so faint pixels keep negative fluxes and a
//! non-detection stays a measurement with its σ.

use crate::error::{Result, SimError};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use sbipix_stats::normal;
use sbipix_stats::{median, quantile_sorted, sort_f64};
use serde::{Deserialize, Serialize};

/// Number of tabulated quantiles of σ_bg (probabilities 0, 0.01, …, 1).
pub const N_QUANTILES: usize = 101;

/// Pixels with S/N above this measure the Poisson coefficient.
const POISSON_MIN_SNR: f64 = 20.0;
/// … and at least this many of them are needed.
const POISSON_MIN_PIXELS: usize = 20;
/// A band needs this many covered pixels to be learnt.
const MIN_PIXELS: usize = 100;

/// One band of a survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyBand {
    /// Band name, e.g. `F444W`.
    pub name: String,
    /// Filter curve: `sedpy:<name>` for a curve of sedpy's (fetched with the model data), or a
    /// file path relative to the survey file.
    pub filter: String,
    /// Quantiles of the background σ (µJy) at probabilities 0, 0.01, …, 1 (or one value).
    pub sigma_bg_quantiles_ujy: Vec<f64>,
    /// Poisson coefficient a (µJy): σ² = σ_bg² + a·max(f, 0).
    pub poisson_ujy: f64,
    /// Fraction of the learning pixels that had this band.
    pub coverage: f64,
    /// How the numbers were obtained.
    pub source: String,
}

/// A survey noise model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    pub name: String,
    pub description: String,
    pub provenance: String,
    pub bands: Vec<SurveyBand>,
    /// Correlation matrix of the normal scores of σ_bg (bands × bands, row-major).
    pub depth_correlation: Vec<Vec<f64>>,
    /// Noise as a family around the learnt survey (other depths, error maps with or without the
    /// source's Poisson term, band coverage patterns); None: exactly the learnt survey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<DepthFamily>,
}

/// Noise as a family, not one field: what a network that serves other surveys' data learns
/// from. Per simulated pixel,
///
/// * **depth**: every band's σ_bg (drawn from the learnt survey as usual) is multiplied by
///   exp(g + s·η_b), g uniform in [ln `depth_factor_min`, ln `depth_factor_max`] (one common
///   factor: a mosaic is deep or shallow as a whole) and η_b normal scores correlated by the
///   survey's `depth_correlation` (bands that go deep together in the real mosaic do here too),
///   s = `band_scatter_dex`·ln 10;
/// * **Poisson term**: with probability `no_poisson_probability` none (error maps of the
///   background alone, as many catalogues and some reductions give), else the learnt coefficient
///   times a log-uniform factor in [`poisson_factor_min`, `poisson_factor_max`], common to all
///   bands (one exposure time and gain per mosaic);
/// * **band coverage**: one of `band_patterns` (weights need not sum to 1), whose bands are
///   marked missing, on top of the independent random drop-out of the training set.
///
/// With these, the error bar stops standing in for the flux: at a given flux σ spans a factor
/// of ≈ 30 whatever the source's Poisson term, so the network has to read the flux itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthFamily {
    pub depth_factor_min: f64,
    pub depth_factor_max: f64,
    pub band_scatter_dex: f64,
    pub no_poisson_probability: f64,
    pub poisson_factor_min: f64,
    pub poisson_factor_max: f64,
    pub band_patterns: Vec<BandPattern>,
}

/// A band coverage pattern of a family: these bands are missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandPattern {
    pub name: String,
    pub weight: f64,
    pub missing: Vec<String>,
}

/// The HST/ACS bands of the JADES band set.
const ACS_BANDS: [&str; 5] = ["F435W", "F606W", "F775W", "F814W", "F850LP"];
/// JADES's NIRCam medium bands other than F410M.
const MEDIUM_BANDS_NOT_F410M: [&str; 6] = ["F182M", "F210M", "F335M", "F430M", "F460M", "F480M"];

impl DepthFamily {
    /// sbipix's default family (the shipped model's): depths ×0.25–×8 of the learnt survey's
    /// (JADES's deepest and shallowest regions span ≈ ×3; CEERS, PRIMER and COSMOS-Web are 1.5–4×
    /// shallower than JADES per pixel), band scatter 0.15 dex, a quarter of the pixels without a
    /// Poisson term and the others ×0.1–×10 of the learnt one, and these coverage patterns of
    /// real programmes: all bands; no F430M/F460M/F480M (JADES outside its medium-band parallels,
    /// as in the GS-z14 field); NIRCam only (CEERS, PRIMER, COSMOS-Web without HST);
    /// NIRCam wide bands + F410M only (the common CEERS/PRIMER/JADES set). Bands a survey lacks
    /// are dropped from the patterns.
    pub fn default_for(bands: &[String]) -> Self {
        let keep =
            |list: Vec<&str>| -> Vec<String> { list.into_iter().filter(|b| bands.iter().any(|x| x == b)).map(String::from).collect() };
        let mut wide = ACS_BANDS.to_vec();
        wide.extend(MEDIUM_BANDS_NOT_F410M);
        DepthFamily {
            depth_factor_min: 0.25,
            depth_factor_max: 8.0,
            band_scatter_dex: 0.15,
            no_poisson_probability: 0.25,
            poisson_factor_min: 0.1,
            poisson_factor_max: 10.0,
            band_patterns: vec![
                BandPattern { name: "all".into(), weight: 0.25, missing: vec![] },
                BandPattern { name: "no_f430m_f460m_f480m".into(), weight: 0.25, missing: keep(vec!["F430M", "F460M", "F480M"]) },
                BandPattern { name: "no_hst".into(), weight: 0.2, missing: keep(ACS_BANDS.to_vec()) },
                BandPattern { name: "nircam_wide_f410m".into(), weight: 0.3, missing: keep(wide) },
            ],
        }
    }

    fn validate(&self, bands: &[String]) -> std::result::Result<(), String> {
        let pos = |name: &str, v: f64| if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("family.{name} = {v} must be > 0")) };
        pos("depth_factor_min", self.depth_factor_min)?;
        pos("poisson_factor_min", self.poisson_factor_min)?;
        if !(self.depth_factor_max.is_finite() && self.depth_factor_max >= self.depth_factor_min) {
            return Err(format!("family.depth_factor_max = {} must be ≥ depth_factor_min", self.depth_factor_max));
        }
        if !(self.poisson_factor_max.is_finite() && self.poisson_factor_max >= self.poisson_factor_min) {
            return Err(format!("family.poisson_factor_max = {} must be ≥ poisson_factor_min", self.poisson_factor_max));
        }
        if !(self.band_scatter_dex.is_finite() && (0.0..=2.0).contains(&self.band_scatter_dex)) {
            return Err(format!("family.band_scatter_dex = {} must lie in [0, 2]", self.band_scatter_dex));
        }
        if !(0.0..=1.0).contains(&self.no_poisson_probability) {
            return Err(format!("family.no_poisson_probability = {} must lie in [0, 1]", self.no_poisson_probability));
        }
        if self.band_patterns.len() > 200 {
            return Err(format!("family.band_patterns: {} patterns (at most 200)", self.band_patterns.len()));
        }
        if self.band_patterns.is_empty() {
            return Err("family.band_patterns: give at least one (`missing = []` for all bands)".into());
        }
        for p in &self.band_patterns {
            if !(p.weight.is_finite() && p.weight > 0.0) {
                return Err(format!("family.band_patterns `{}`: weight {} must be > 0", p.name, p.weight));
            }
            if let Some(b) = p.missing.iter().find(|b| !bands.contains(b)) {
                return Err(format!("family.band_patterns `{}`: unknown band {b} (the survey has {})", p.name, bands.join(", ")));
            }
            if p.missing.len() >= bands.len() {
                return Err(format!("family.band_patterns `{}` leaves no band", p.name));
            }
        }
        Ok(())
    }
}

/// Name of the built-in survey [`Survey::jades_any_depth`].
pub const ANY_DEPTH: &str = "jades_any_depth";

/// The built-in JADES survey (`data/survey_jades.toml`).
pub const JADES_TOML: &str = include_str!("../data/survey_jades.toml");

/// The sedpy curve name of a JADES/HST band name (F090W → jwst_f090w, F435W → acs_wfc_f435w).
pub fn sedpy_name(band: &str) -> Option<String> {
    let b = band.to_ascii_lowercase();
    match band {
        "F435W" | "F606W" | "F775W" | "F814W" | "F850LP" => Some(format!("acs_wfc_{b}")),
        _ if band.starts_with('F') && band.len() >= 5 => Some(format!("jwst_{b}")),
        _ => None,
    }
}

impl Survey {
    /// The built-in `jades` survey.
    pub fn jades() -> Self {
        Self::from_toml_str(JADES_TOML, "built-in jades survey").expect("built-in survey parses")
    }

    /// A built-in survey by name.
    pub fn builtin(name: &str) -> Option<Self> {
        match name {
            "jades" => Some(Self::jades()),
            ANY_DEPTH => Some(Self::jades_any_depth()),
            _ => None,
        }
    }

    /// The built-in `jades_any_depth` survey: the JADES bands and noise learnt from real pixels,
    /// widened into sbipix's default [`DepthFamily`] — what the default model learns from.
    pub fn jades_any_depth() -> Self {
        let mut s = Self::jades();
        s.family = Some(DepthFamily::default_for(&s.band_names()));
        s.name = ANY_DEPTH.into();
        s.description = format!("{} — widened to other depths, Poisson terms and band sets (sbipix's default family)", s.description);
        s
    }

    pub fn from_toml_str(text: &str, file: &str) -> Result<Self> {
        let s: Survey = toml::from_str(text).map_err(|e| SimError::Survey { file: file.into(), reason: e.to_string() })?;
        s.validate(file)?;
        Ok(s)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("survey serialises")
    }

    pub fn band_names(&self) -> Vec<String> {
        self.bands.iter().map(|b| b.name.clone()).collect()
    }

    fn validate(&self, file: &str) -> Result<()> {
        let bad = |reason: String| Err(SimError::Survey { file: file.into(), reason });
        if self.bands.is_empty() {
            return bad("no bands".into());
        }
        let nb = self.bands.len();
        for (i, b) in self.bands.iter().enumerate() {
            if self.bands[..i].iter().any(|o| o.name == b.name) {
                return bad(format!("band {} appears twice", b.name));
            }
            let q = &b.sigma_bg_quantiles_ujy;
            if !(q.len() == 1 || q.len() == N_QUANTILES) {
                return bad(format!("band {}: {} σ quantiles (1 or {N_QUANTILES} expected)", b.name, q.len()));
            }
            if q.iter().any(|v| !(v.is_finite() && *v > 0.0)) || q.windows(2).any(|w| w[1] < w[0]) {
                return bad(format!("band {}: σ quantiles must be positive, finite and ascending", b.name));
            }
            if !(b.poisson_ujy.is_finite() && b.poisson_ujy >= 0.0) {
                return bad(format!("band {}: poisson_ujy = {} must be ≥ 0", b.name, b.poisson_ujy));
            }
            if !(0.0..=1.0).contains(&b.coverage) {
                return bad(format!("band {}: coverage {} outside [0, 1]", b.name, b.coverage));
            }
        }
        let c = &self.depth_correlation;
        if c.len() != nb || c.iter().any(|r| r.len() != nb) {
            return bad(format!("depth_correlation must be {nb} × {nb}"));
        }
        for (i, row) in c.iter().enumerate() {
            if (row[i] - 1.0).abs() > 1e-9 {
                return bad(format!("depth_correlation[{i}][{i}] must be 1"));
            }
            for (j, v) in row.iter().enumerate() {
                if v.is_nan() || v.abs() > 1.0 || (v - c[j][i]).abs() > 1e-9 {
                    return bad(format!("depth_correlation[{i}][{j}] must be symmetric and in [-1, 1]"));
                }
            }
        }
        if sbipix_stats::cholesky(&c.concat(), nb).is_none() {
            return bad("depth_correlation is not positive definite".into());
        }
        if let Some(f) = &self.family {
            f.validate(&self.band_names()).or_else(bad)?;
        }
        Ok(())
    }

    /// A sampler for this survey, in the order of `bands` (a subset/reordering of the survey's
    /// bands; an unknown band is an error).
    pub fn sampler(&self, bands: &[String]) -> Result<NoiseSampler> {
        let idx: Vec<usize> = bands
            .iter()
            .map(|b| {
                self.bands.iter().position(|s| &s.name == b).ok_or_else(|| SimError::Survey {
                    file: self.name.clone(),
                    reason: format!("unknown band {b} (the survey has {})", self.band_names().join(", ")),
                })
            })
            .collect::<Result<_>>()?;
        if idx.len() > 64 {
            return Err(SimError::Survey { file: self.name.clone(), reason: format!("{} bands (at most 64 are supported)", idx.len()) });
        }
        let corr: Vec<f64> = idx.iter().flat_map(|&i| idx.iter().map(move |&j| self.depth_correlation[i][j])).collect();
        let chol = sbipix_stats::cholesky(&corr, idx.len()).expect("validated correlation");
        let family = self.family.clone().map(|f| {
            let masks = f.band_patterns.iter().map(|p| bands.iter().map(|b| !p.missing.contains(b)).collect()).collect();
            let total: f64 = f.band_patterns.iter().map(|p| p.weight).sum();
            let mut acc = 0.0;
            let cumulative = f.band_patterns.iter().map(|p| {
                acc += p.weight / total;
                acc
            });
            FamilySampler { cumulative: cumulative.collect(), masks, family: f }
        });
        Ok(NoiseSampler { bands: idx.iter().map(|&i| self.bands[i].clone()).collect(), chol, family })
    }

    /// Median background σ of each band (µJy): the flux scale of the network input encoding.
    pub fn median_sigma_ujy(&self) -> Vec<f64> {
        self.bands.iter().map(|b| quantile_at(&b.sigma_bg_quantiles_ujy, 0.5)).collect()
    }
}

/// Draws survey-like noise.
#[derive(Debug, Clone)]
pub struct NoiseSampler {
    bands: Vec<SurveyBand>,
    /// Lower Cholesky factor of the depth correlation (bands × bands, row-major).
    chol: Vec<f64>,
    family: Option<FamilySampler>,
}

#[derive(Debug, Clone)]
struct FamilySampler {
    family: DepthFamily,
    /// cumulative pattern probabilities
    cumulative: Vec<f64>,
    /// per pattern, per sampler band: measured
    masks: Vec<Vec<bool>>,
}

/// What the family drew for one pixel (all 1 and no pattern without a family).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseDraw {
    /// The common depth factor exp(g) on σ_bg.
    pub depth_factor: f64,
    /// The factor on the learnt Poisson coefficient (0: none).
    pub poisson_factor: f64,
    /// Index of the band pattern drawn, into [`DepthFamily::band_patterns`].
    pub pattern: Option<usize>,
}

impl NoiseSampler {
    pub fn n_bands(&self) -> usize {
        self.bands.len()
    }

    /// The family of this sampler's survey, if any.
    pub fn family(&self) -> Option<&DepthFamily> {
        self.family.as_ref().map(|f| &f.family)
    }

    /// Whether band `b` (in the sampler's order) is measured under band pattern `pattern`.
    pub fn pattern_measures(&self, pattern: usize, b: usize) -> bool {
        self.family.as_ref().is_none_or(|f| f.masks[pattern][b])
    }

    /// σ (µJy) of each band for one pixel whose noiseless fluxes are `flux_true`, and the noisy
    /// fluxes; with a family, what it drew (the random stream of a survey without a family is
    /// the same as before families existed: every training set's noise is drawn through it).
    pub fn draw<R: rand::Rng + ?Sized>(&self, rng: &mut R, flux_true: &[f64], sigma: &mut [f64], flux_obs: &mut [f64]) -> NoiseDraw {
        let n = self.bands.len();
        let mut e = [0.0f64; 64];
        let e = &mut e[..n];
        for v in e.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        let mut depth = [1.0f64; 64];
        let mut out = NoiseDraw { depth_factor: 1.0, poisson_factor: 1.0, pattern: None };
        if let Some(fs) = &self.family {
            let f = &fs.family;
            let (lo, hi) = (f.depth_factor_min.ln(), f.depth_factor_max.ln());
            let g = lo + (hi - lo) * rng.random::<f64>();
            let scatter = f.band_scatter_dex * std::f64::consts::LN_10;
            let mut eta = [0.0f64; 64];
            for v in eta[..n].iter_mut() {
                *v = StandardNormal.sample(rng);
            }
            for (i, d) in depth[..n].iter_mut().enumerate() {
                let zi: f64 = (0..=i).map(|k| self.chol[i * n + k] * eta[k]).sum();
                *d = (g + scatter * zi).exp();
            }
            out.depth_factor = g.exp();
            out.poisson_factor = if rng.random::<f64>() < f.no_poisson_probability {
                0.0
            } else {
                let (a, b) = (f.poisson_factor_min.ln(), f.poisson_factor_max.ln());
                (a + (b - a) * rng.random::<f64>()).exp()
            };
            let u = rng.random::<f64>();
            out.pattern = Some(fs.cumulative.iter().position(|c| u < *c).unwrap_or(fs.cumulative.len() - 1));
        }
        for i in 0..n {
            // correlated normal score → depth quantile of this band
            let zi: f64 = (0..=i).map(|k| self.chol[i * n + k] * e[k]).sum();
            let b = &self.bands[i];
            let s_bg = quantile_at(&b.sigma_bg_quantiles_ujy, normal::cdf(zi)) * depth[i];
            let s = (s_bg * s_bg + out.poisson_factor * b.poisson_ujy * flux_true[i].max(0.0)).sqrt();
            sigma[i] = s;
            let g: f64 = StandardNormal.sample(rng);
            flux_obs[i] = flux_true[i] + s * g;
        }
        out
    }
}

/// Value of a quantile table (probabilities 0, 1/(K−1), …, 1) at probability `p`, linear between
/// entries. For p < 1 this is [`sbipix_stats::quantile_sorted`] of the table; at p = 1 it
/// extrapolates the last segment (q[K−2] + 1·(q[K−1] − q[K−2])), which can differ from q[K−1] in
/// the last bit, so it is kept as written: every training set's noise is drawn through it.
pub fn quantile_at(q: &[f64], p: f64) -> f64 {
    if q.len() == 1 {
        return q[0];
    }
    let pos = p.clamp(0.0, 1.0) * (q.len() - 1) as f64;
    let k = (pos as usize).min(q.len() - 2);
    let f = pos - k as f64;
    q[k] + f * (q[k + 1] - q[k])
}

/// Per-pixel photometry to learn a survey from: `flux[p][b]` and `err[p][b]` in µJy; err = 0 marks
/// a pixel without coverage in that band.
pub struct LearningData<'a> {
    /// Where the data came from (for messages).
    pub file: String,
    pub bands: Vec<String>,
    pub flux: &'a [f64],
    pub err: &'a [f64],
}

/// What to do with a band that has no (or too little) coverage.
#[derive(Debug, Clone)]
pub struct BandLimit {
    pub band: String,
    /// 1σ background limit, µJy.
    pub sigma_ujy: f64,
    pub source: String,
}

/// Learns a survey from real per-pixel fluxes and errors.
///
/// Per band: the Poisson coefficient a is the median of (σ² − σ²_bg,med)/f over pixels with
/// S/N > 20 (needs 20 such pixels; otherwise the median a of the bands that have them, or 0);
/// σ_bg = √(σ² − a·max(f, 0)) per background-dominated pixel (a·f ≤ σ²/2), summarised by 101
/// quantiles; the depth correlation is
/// that of the normal scores of σ_bg over pixels covered in both bands. Bands with fewer than 100
/// covered pixels take a constant σ from `limits` (an error if none is given).
pub fn learn(data: &LearningData, limits: &[BandLimit], name: &str, description: &str, provenance: &str) -> Result<Survey> {
    let nb = data.bands.len();
    let bad = |reason: String| SimError::Data { file: data.file.clone(), reason };
    if nb == 0 || data.flux.len() != data.err.len() || !data.flux.len().is_multiple_of(nb) {
        return Err(bad(format!("flux ({}) and error ({}) arrays must both be pixels × {nb} bands", data.flux.len(), data.err.len())));
    }
    let np = data.flux.len() / nb;
    check_values(data, np)?;
    let covered = |b: usize| (0..np).filter(move |&p| data.err[p * nb + b] > 0.0);
    let poisson = poisson_coefficients(data, np);
    let measured: Vec<f64> = poisson.iter().flatten().copied().collect();
    let fallback_a = if measured.is_empty() { 0.0 } else { median(&measured) };

    let mut bands = Vec::with_capacity(nb);
    let mut sbg: Vec<Vec<f64>> = vec![Vec::new(); nb]; // per band, per pixel (NaN if not covered)
    for b in 0..nb {
        let name_b = &data.bands[b];
        let filter = match sedpy_name(name_b) {
            Some(s) => format!("sedpy:{s}"),
            None => format!("{name_b}.dat"),
        };
        let n_cov = covered(b).count();
        if n_cov < MIN_PIXELS {
            let lim = limits.iter().find(|l| &l.band == name_b).ok_or_else(|| {
                bad(format!("band {name_b} has only {n_cov} pixels with coverage (≥ {MIN_PIXELS} needed); give its 1σ limit"))
            })?;
            if !(lim.sigma_ujy.is_finite() && lim.sigma_ujy > 0.0) {
                return Err(bad(format!("band {name_b}: limit {} must be > 0", lim.sigma_ujy)));
            }
            sbg[b] = vec![f64::NAN; np];
            bands.push(SurveyBand {
                name: name_b.clone(),
                filter,
                sigma_bg_quantiles_ujy: vec![lim.sigma_ujy],
                poisson_ujy: round_sig(fallback_a),
                coverage: n_cov as f64 / np as f64,
                source: format!(
                    "no coverage in the learning data: constant σ from {}; Poisson coefficient = median of the measured bands",
                    lim.source
                ),
            });
            continue;
        }
        let (a, a_src) = match poisson[b] {
            Some(a) => (
                a,
                format!(
                    "Poisson coefficient from {} pixels with S/N > {POISSON_MIN_SNR}",
                    covered(b).filter(|&p| data.flux[p * nb + b] / data.err[p * nb + b] > POISSON_MIN_SNR).count()
                ),
            ),
            None => (
                fallback_a,
                format!(
                    "fewer than {POISSON_MIN_PIXELS} pixels with S/N > {POISSON_MIN_SNR}: Poisson coefficient = median of the measured bands"
                ),
            ),
        };
        let mut col = vec![f64::NAN; np];
        let mut vals = Vec::with_capacity(n_cov);
        // Background-dominated pixels only (source Poisson term ≤ half the variance): in
        // brighter ones σ_bg would hinge on the exact value of a.
        for p in covered(b) {
            let e = data.err[p * nb + b];
            let poisson = a * data.flux[p * nb + b].max(0.0);
            if poisson <= 0.5 * e * e {
                let v = (e * e - poisson).sqrt();
                col[p] = v;
                vals.push(v);
            }
        }
        if vals.len() < MIN_PIXELS {
            return Err(bad(format!("band {name_b}: fewer than {MIN_PIXELS} background-dominated pixels")));
        }
        sort_f64(&mut vals);
        let q: Vec<f64> = (0..N_QUANTILES).map(|k| round_sig(quantile_sorted(&vals, k as f64 / (N_QUANTILES - 1) as f64))).collect();
        sbg[b] = col;
        bands.push(SurveyBand {
            name: name_b.clone(),
            filter,
            sigma_bg_quantiles_ujy: q,
            poisson_ujy: round_sig(a),
            coverage: n_cov as f64 / np as f64,
            source: format!("learnt from {n_cov} pixels; {a_src}"),
        });
    }
    let corr = depth_correlation(&sbg, np);
    let s = Survey {
        name: name.into(),
        description: description.into(),
        provenance: provenance.into(),
        bands,
        depth_correlation: corr,
        family: None,
    };
    s.validate(&data.file)?;
    Ok(s)
}

/// Every flux and error finite, every error ≥ 0 (0 marks missing coverage).
fn check_values(data: &LearningData, np: usize) -> Result<()> {
    let nb = data.bands.len();
    let bad = |reason: String| SimError::Data { file: data.file.clone(), reason };
    for p in 0..np {
        for b in 0..nb {
            let (f, e) = (data.flux[p * nb + b], data.err[p * nb + b]);
            if !f.is_finite() || !e.is_finite() {
                return Err(bad(format!(
                    "pixel {p}, band {}: flux {f}, error {e} (NaN/inf are not allowed; mark missing coverage with error 0)",
                    data.bands[b]
                )));
            }
            if e < 0.0 {
                return Err(bad(format!("pixel {p}, band {}: negative error {e}", data.bands[b])));
            }
        }
    }
    Ok(())
}

/// The Poisson coefficient a of each band (σ² = σ_bg² + a·f), from its pixels with S/N above
/// [`POISSON_MIN_SNR`] against the median error of its faint pixels; None where too few pixels.
fn poisson_coefficients(data: &LearningData, np: usize) -> Vec<Option<f64>> {
    let nb = data.bands.len();
    let covered = |b: usize| (0..np).filter(move |&p| data.err[p * nb + b] > 0.0);
    let mut poisson: Vec<Option<f64>> = vec![None; nb];
    for (b, slot) in poisson.iter_mut().enumerate() {
        let errs: Vec<f64> =
            covered(b).filter(|&p| (data.flux[p * nb + b] / data.err[p * nb + b]).abs() < 3.0).map(|p| data.err[p * nb + b]).collect();
        if errs.len() < MIN_PIXELS {
            continue;
        }
        let s_med = median(&errs);
        let ratios: Vec<f64> = covered(b)
            .filter(|&p| data.flux[p * nb + b] / data.err[p * nb + b] > POISSON_MIN_SNR)
            .map(|p| (data.err[p * nb + b].powi(2) - s_med * s_med) / data.flux[p * nb + b])
            .collect();
        if ratios.len() >= POISSON_MIN_PIXELS {
            *slot = Some(median(&ratios).max(0.0));
        }
    }
    poisson
}

/// The correlation of the bands' depths: Pearson correlation of the normal scores of the σ_bg
/// ranks, shrunk slightly towards the identity so the matrix is safely positive definite.
fn depth_correlation(sbg: &[Vec<f64>], np: usize) -> Vec<Vec<f64>> {
    let nb = sbg.len();
    let scores: Vec<Vec<f64>> = sbg.iter().map(|col| normal_scores(col)).collect();
    let mut corr = vec![vec![0.0; nb]; nb];
    for i in 0..nb {
        corr[i][i] = 1.0;
        for j in 0..i {
            let pairs: Vec<(f64, f64)> =
                (0..np).filter(|&p| scores[i][p].is_finite() && scores[j][p].is_finite()).map(|p| (scores[i][p], scores[j][p])).collect();
            let r = if pairs.len() >= MIN_PIXELS { pearson(&pairs) } else { 0.0 };
            corr[i][j] = r;
            corr[j][i] = r;
        }
    }
    // Shrink slightly towards the identity so the matrix is safely positive definite.
    for (i, row) in corr.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            if i != j {
                *v = (*v * 0.999 * 1e6).round() / 1e6;
            }
        }
    }
    corr
}

/// Rounds to 6 significant digits (the survey file stays readable; far below the scatter).
fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let e = v.abs().log10().floor() as i32 - 5;
    let m = 10f64.powi(-e);
    (v * m).round() / m
}

/// Φ⁻¹((rank + 0.5)/n) of the finite values (average ranks for ties), NaN elsewhere.
fn normal_scores(col: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..col.len()).filter(|&i| col[i].is_finite()).collect();
    idx.sort_by(|&a, &b| col[a].partial_cmp(&col[b]).unwrap());
    let n = idx.len();
    let mut out = vec![f64::NAN; col.len()];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && col[idx[j + 1]] == col[idx[i]] {
            j += 1;
        }
        let rank = 0.5 * (i + j) as f64;
        for &k in &idx[i..=j] {
            out[k] = normal::quantile((rank + 0.5) / n as f64);
        }
        i = j + 1;
    }
    out
}

fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let (mx, my) = pairs.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 || syy == 0.0 { 0.0 } else { sxy / (sxx * syy).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn learns_a_synthetic_survey_back() {
        // Two bands, σ_bg uniform in [1, 2] (band 0, perfectly correlated with band 1's [3, 4]),
        // Poisson a = 0.5 in band 0; fluxes spanning faint to bright.
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let n = 20_000;
        let (mut flux, mut err) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
        for p in 0..n {
            let u: f64 = rng.random();
            let f = if p % 10 == 0 { 1e3 * rng.random::<f64>() } else { 0.0 };
            let s0 = ((1.0 + u) * (1.0 + u) + 0.5 * f).sqrt();
            let s1 = 3.0 + u;
            flux[2 * p] = f;
            flux[2 * p + 1] = 0.0;
            err[2 * p] = s0;
            err[2 * p + 1] = s1;
        }
        let data = LearningData { file: "synthetic".into(), bands: vec!["F090W".into(), "F444W".into()], flux: &flux, err: &err };
        let s = learn(&data, &[], "t", "", "").unwrap();
        assert!((s.bands[0].poisson_ujy - 0.5).abs() < 0.05, "{}", s.bands[0].poisson_ujy);
        assert!((quantile_at(&s.bands[0].sigma_bg_quantiles_ujy, 0.5) - 1.5).abs() < 0.02);
        assert!((quantile_at(&s.bands[1].sigma_bg_quantiles_ujy, 0.25) - 3.25).abs() < 0.02);
        assert!(s.depth_correlation[0][1] > 0.99);
        assert_eq!(s.bands[0].filter, "sedpy:jwst_f090w");
        // NaN and missing bands are errors naming the pixel/band
        let mut bad_flux = flux.clone();
        bad_flux[7] = f64::NAN;
        let e = learn(&LearningData { file: "x.npy".into(), bands: data.bands.clone(), flux: &bad_flux, err: &err }, &[], "t", "", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.npy") && e.contains("pixel 3") && e.contains("F444W"), "{e}");
        let zero = vec![0.0; 2 * n];
        let mut err2 = err.clone();
        for p in 0..n {
            err2[2 * p + 1] = 0.0;
        }
        let e = learn(&LearningData { file: "x.npy".into(), bands: data.bands.clone(), flux: &zero, err: &err2 }, &[], "t", "", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("F444W") && e.contains("limit"), "{e}");
    }

    #[test]
    fn copula_reproduces_marginals_and_correlation() {
        let s = two_band((0..N_QUANTILES).map(|k| 1.0 + k as f64 / 100.0).collect(), |_| 0.0, 0.0, None);
        let smp = s.sampler(&["B1".into(), "B0".into()]).unwrap();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let (mut sig, mut obs) = (vec![0.0; 2], vec![0.0; 2]);
        let n = 50_000;
        let mut v0 = Vec::new();
        let mut pairs = Vec::new();
        for _ in 0..n {
            smp.draw(&mut rng, &[0.0, 0.0], &mut sig, &mut obs);
            v0.push(sig[0]);
            pairs.push((sig[0], sig[1]));
        }
        // uniform on [1, 2]
        sort_f64(&mut v0);
        for p in [0.1, 0.5, 0.9] {
            assert!((quantile_sorted(&v0, p) - (1.0 + p)).abs() < 0.01);
        }
        // Spearman-type correlation of the uniforms is (6/π) asin(ρ/2) ≈ 0.786 for ρ = 0.8
        let r = pearson(&pairs);
        assert!((r - 6.0 / std::f64::consts::PI * (0.4f64).asin()).abs() < 0.01, "{r}");
        assert!(s.sampler(&["B9".into()]).is_err());
    }

    /// A two-band survey (B0, B1; depth correlation 0.8) with σ_bg quantiles `q` + `offset(band)`
    /// and Poisson coefficient `poisson`.
    fn two_band(q: Vec<f64>, offset: impl Fn(usize) -> f64, poisson: f64, family: Option<DepthFamily>) -> Survey {
        Survey {
            name: "t".into(),
            description: String::new(),
            provenance: String::new(),
            bands: (0..2)
                .map(|i| SurveyBand {
                    name: format!("B{i}"),
                    filter: String::new(),
                    sigma_bg_quantiles_ujy: q.iter().map(|v| v + offset(i)).collect(),
                    poisson_ujy: poisson,
                    coverage: 1.0,
                    source: String::new(),
                })
                .collect(),
            depth_correlation: vec![vec![1.0, 0.8], vec![0.8, 1.0]],
            family,
        }
    }

    /// A two-band survey with constant σ_bg = 1, 2 and Poisson coefficient 0.5 in both bands.
    fn two_band_family(family: DepthFamily) -> Survey {
        two_band(vec![1.0], |i| i as f64, 0.5, Some(family))
    }

    #[test]
    fn a_family_draws_depths_poisson_terms_and_patterns_as_specified() {
        let fam = DepthFamily {
            depth_factor_min: 0.25,
            depth_factor_max: 8.0,
            band_scatter_dex: 0.1,
            no_poisson_probability: 0.25,
            poisson_factor_min: 0.1,
            poisson_factor_max: 10.0,
            band_patterns: vec![
                BandPattern { name: "all".into(), weight: 1.0, missing: vec![] },
                BandPattern { name: "no B1".into(), weight: 3.0, missing: vec!["B1".into()] },
            ],
        };
        let s = two_band_family(fam.clone());
        // a family survives the TOML round trip
        assert_eq!(Survey::from_toml_str(&s.to_toml(), "x").unwrap(), s);
        let smp = s.sampler(&s.band_names()).unwrap();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
        let (mut sig, mut obs) = (vec![0.0; 2], vec![0.0; 2]);
        let n = 40_000;
        let (mut g, mut band_dev, mut pairs, mut no_poisson, mut logp, mut pattern1) = (vec![], vec![], vec![], 0usize, vec![], 0usize);
        let flux = [4.0, 4.0];
        for _ in 0..n {
            let d = smp.draw(&mut rng, &flux, &mut sig, &mut obs);
            // σ² = (q·depth_b)² + P·0.5·f: recover depth_b from band 0 and 1 via the drawn P
            let pois = d.poisson_factor * 0.5 * 4.0;
            let d0 = (sig[0] * sig[0] - pois).sqrt();
            let d1 = (sig[1] * sig[1] - pois).sqrt() / 2.0;
            g.push(d.depth_factor.ln());
            band_dev.push((d0 / d.depth_factor).ln());
            pairs.push(((d0 / d.depth_factor).ln(), (d1 / d.depth_factor).ln()));
            if d.poisson_factor == 0.0 {
                no_poisson += 1;
            } else {
                logp.push(d.poisson_factor.ln());
            }
            pattern1 += (d.pattern == Some(1)) as usize;
        }
        // the common factor: uniform in ln over [ln 0.25, ln 8]
        sort_f64(&mut g);
        let (lo, hi) = (0.25f64.ln(), 8f64.ln());
        for p in [0.05, 0.25, 0.5, 0.75, 0.95] {
            assert!((quantile_sorted(&g, p) - (lo + p * (hi - lo))).abs() < 0.05, "depth quantile {p}");
        }
        // per-band scatter: normal, σ = 0.1 dex, correlated as the survey's depths (ρ 0.8)
        let sd = (band_dev.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
        assert!((sd - 0.1 * std::f64::consts::LN_10).abs() < 0.005, "{sd}");
        assert!((pearson(&pairs) - 0.8).abs() < 0.02, "{}", pearson(&pairs));
        // Poisson term: none in a quarter, else log-uniform over ×0.1–×10 (binomial 4σ ≈ 0.009)
        assert!((no_poisson as f64 / n as f64 - 0.25).abs() < 0.009, "{no_poisson}");
        sort_f64(&mut logp);
        for p in [0.1, 0.5, 0.9] {
            assert!((quantile_sorted(&logp, p) - (0.1f64.ln() + p * 100f64.ln())).abs() < 0.08, "poisson quantile {p}");
        }
        // patterns by weight (3/4 for "no B1"), and what each measures
        assert!((pattern1 as f64 / n as f64 - 0.75).abs() < 0.009, "{pattern1}");
        assert!(smp.pattern_measures(0, 1) && smp.pattern_measures(1, 0) && !smp.pattern_measures(1, 1));
        // a sampler over a reordered subset keeps the masks by name
        let sub = s.sampler(&["B1".into()]).unwrap();
        assert!(!sub.pattern_measures(1, 0) && sub.pattern_measures(0, 0));
    }

    #[test]
    fn bad_families_are_refused_naming_the_key() {
        let base = DepthFamily::default_for(&["B0".into(), "B1".into()]);
        let cases: Vec<(DepthFamily, &str)> = vec![
            (DepthFamily { depth_factor_min: 0.0, ..base.clone() }, "depth_factor_min"),
            (DepthFamily { depth_factor_max: 0.1, ..base.clone() }, "depth_factor_max"),
            (DepthFamily { no_poisson_probability: 1.5, ..base.clone() }, "no_poisson_probability"),
            (DepthFamily { band_patterns: vec![], ..base.clone() }, "band_patterns"),
            (
                DepthFamily {
                    band_patterns: vec![BandPattern { name: "x".into(), weight: 1.0, missing: vec!["F999W".into()] }],
                    ..base.clone()
                },
                "F999W",
            ),
            (
                DepthFamily {
                    band_patterns: vec![BandPattern { name: "x".into(), weight: 1.0, missing: vec!["B0".into(), "B1".into()] }],
                    ..base.clone()
                },
                "leaves no band",
            ),
        ];
        for (f, want) in cases {
            let e = Survey::from_toml_str(&two_band_family(f).to_toml(), "f.toml").unwrap_err().to_string();
            assert!(e.contains("f.toml") && e.contains(want), "{want}: {e}");
        }
        // the built-in family: its patterns name only JADES bands, and it parses back
        let any = Survey::jades_any_depth();
        assert_eq!(Survey::builtin(ANY_DEPTH).unwrap(), any);
        assert_eq!(Survey::from_toml_str(&any.to_toml(), "x").unwrap(), any);
        assert_eq!(any.family.as_ref().unwrap().band_patterns[3].missing.len(), 11);
    }
}
