//! Inverse of the delayed-τ history: the history (age, τ) with a given mass-weighted age and
//! specific SFR.

use crate::sfh::{Sfh, SfhShape};

/// Delayed-τ histories at one redshift, tabulated for the inverse problem of the
/// posterior-predictive check when a model infers the physical quantities — log M*, log SFR₁₀₀,
/// mass-weighted age (`sbipix train --params`, the default model) — rather than the history's own
/// τ and onset: the check needs *a* history with that mass-weighted age and specific SFR.
///
/// Written here rather than with a root finder crate: the map (age, τ) → (age_mw, sSFR) is cheap
/// in closed form, not injective where the SFR is floored, and flow draws may lie slightly off the
/// reachable set, so a least-squares search over a table is the
/// robust choice (then Gauss–Newton from the nearest table entry); it returns the nearest
/// reachable history in (log age_mw, log sSFR).
///
/// Accuracy (tests/ppc_physical.rs): the forward-model photometry of the history found agrees
/// with that of the galaxy whose quantities were given within 1.7 % in every band for ages
/// ≥ 300 Myr. Younger histories lie mostly inside the 100 Myr window of SFR₁₀₀, so age_mw and
/// sSFR₁₀₀ pin them less well and the check is approximate there (measured: 25 % in F090W at the
/// Lyman break of a 170 Myr old galaxy at z = 6.5; other bands closer).
pub struct DelayedTauInverse {
    t_univ: f64,
    /// log10 sSFR floor (yr⁻¹) applied to the tabulated and the asked-for sSFR, as the prior does
    log_ssfr_floor: f64,
    log_age: (f64, f64),
    log_tau: (f64, f64),
    /// (log age, log τ, log age_mw, log sSFR per formed mass) on the grid
    table: Vec<[f64; 4]>,
    /// Indices of `table` ordered by log age_mw, for [`Self::nearest`].
    by_age_mw: Vec<u32>,
}

impl DelayedTauInverse {
    const GRID: usize = 81;
    const STARTS: usize = 4;

    /// Table at the age of the universe `t_univ` (Gyr), τ within 10^log_tau (Gyr); specific SFRs
    /// below 10^`log_ssfr_floor` yr⁻¹ count as the floor (the θ parameterisation's floor).
    pub fn new(t_univ: f64, log_tau: (f64, f64), log_ssfr_floor: f64) -> Self {
        let log_age = ((1e-4f64).min(0.5 * t_univ).log10(), t_univ.log10());
        let mut inv =
            Self { t_univ, log_ssfr_floor, log_age, log_tau, table: Vec::with_capacity(Self::GRID * Self::GRID), by_age_mw: Vec::new() };
        let step = |r: (f64, f64), i: usize| r.0 + (r.1 - r.0) * i as f64 / (Self::GRID - 1) as f64;
        for i in 0..Self::GRID {
            for j in 0..Self::GRID {
                let (la, lt) = (step(log_age, i), step(log_tau, j));
                if let Some((m, s)) = inv.eval(la, lt) {
                    inv.table.push([la, lt, m, s]);
                }
            }
        }
        inv.by_age_mw = (0..inv.table.len() as u32).collect();
        inv.by_age_mw.sort_by(|&a, &b| inv.table[a as usize][2].total_cmp(&inv.table[b as usize][2]));
        inv
    }

    /// (age, τ) in Gyr of a history near mass-weighted age `mwa_gyr` and log10 sSFR₁₀₀ per
    /// formed mass `log_ssfr` (yr⁻¹), without the search of [`Self::solve`]: the nearest table
    /// entry (81 × 81 over log age and log τ: ≈ 0.05 dex apart), then at most `steps`
    /// Gauss–Newton steps from it (each only accepted where it gets nearer). A start point for
    /// fits that need no precision: ≈ 1 µs + 5 µs per step, against ≈ 50 µs for `solve`. None if
    /// the target is not finite.
    pub fn near(&self, mwa_gyr: f64, log_ssfr: f64, steps: usize) -> Option<(f64, f64)> {
        let target = (mwa_gyr.max(1e-9).log10(), log_ssfr.max(self.log_ssfr_floor));
        let e = &self.table[self.nearest_entry(target)?];
        let (la, lt) = if steps > 0 { self.descend_steps(e[0], e[1], target, steps) } else { (e[0], e[1]) };
        Some((10f64.powf(la).min(self.t_univ), 10f64.powf(lt)))
    }

    /// Index of the table entry nearest to `target` (log age_mw, log sSFR).
    fn nearest_entry(&self, target: (f64, f64)) -> Option<usize> {
        if !(target.0.is_finite() && target.1.is_finite()) {
            return None;
        }
        let cost = |e: &[f64; 4]| (e[2] - target.0).powi(2) + (e[3] - target.1).powi(2);
        let start = self.by_age_mw.partition_point(|&i| self.table[i as usize][2] < target.0);
        let mut best = (f64::INFINITY, None);
        // outwards from the target's age_mw in both directions, while the age_mw difference
        // alone is below the best cost
        let mut visit = |k: usize| {
            let e = &self.table[k];
            if (e[2] - target.0).powi(2) >= best.0 {
                return false;
            }
            let c = cost(e);
            if c < best.0 {
                best = (c, Some(k));
            }
            true
        };
        for &k in &self.by_age_mw[start..] {
            if !visit(k as usize) {
                break;
            }
        }
        for &k in self.by_age_mw[..start].iter().rev() {
            if !visit(k as usize) {
                break;
            }
        }
        best.1
    }

    /// (log10 mass-weighted age in Gyr, log10 sSFR₁₀₀ per formed mass floored as in the prior).
    fn eval(&self, log_age: f64, log_tau: f64) -> Option<(f64, f64)> {
        let age = 10f64.powf(log_age).min(self.t_univ);
        let sm = Sfh::new(SfhShape::DelayedTau { age_gyr: age, tau_gyr: 10f64.powf(log_tau) }, 0.0, self.t_univ).ok()?.summary();
        Some((sm.mass_weighted_age_gyr.max(1e-9).log10(), sm.sfr_100myr.max(1e-300).log10().max(self.log_ssfr_floor)))
    }

    /// (age, τ) in Gyr of the history nearest to mass-weighted age `mwa_gyr` and
    /// log10 sSFR₁₀₀ per formed mass `log_ssfr` (yr⁻¹); None if nothing is reachable.
    pub fn solve(&self, mwa_gyr: f64, log_ssfr: f64) -> Option<(f64, f64)> {
        let target = (mwa_gyr.max(1e-9).log10(), log_ssfr.max(self.log_ssfr_floor));
        let cost = |m: f64, s: f64| (m - target.0).powi(2) + (s - target.1).powi(2);
        // Gauss–Newton from the few nearest table entries (the valley is narrow where the SFR
        // declines exponentially, so one start can end on the boundary); the best end wins
        let mut best = [(f64::INFINITY, 0usize); Self::STARTS];
        for (i, e) in self.table.iter().enumerate() {
            let c = cost(e[2], e[3]);
            if c < best[Self::STARTS - 1].0 {
                let mut k = Self::STARTS - 1;
                while k > 0 && best[k - 1].0 > c {
                    best[k] = best[k - 1];
                    k -= 1;
                }
                best[k] = (c, i);
            }
        }
        let (mut la, mut lt, mut c) = (f64::NAN, f64::NAN, f64::INFINITY);
        for &(c0, i) in best.iter().filter(|b| b.0.is_finite()) {
            let e = &self.table[i];
            let (a, t, ce) = self.descend(e[0], e[1], target, 16);
            if ce < c {
                (la, lt, c) = (a, t, ce);
            }
            if c < 1e-12 || c0 > 100.0 * c.max(1e-12) {
                break; // converged, or the remaining starts are much worse than the best end
            }
        }
        c.is_finite().then(|| (10f64.powf(la).min(self.t_univ), 10f64.powf(lt)))
    }

    /// [`Self::descend`] for `steps` iterations, returning only the end point.
    fn descend_steps(&self, la: f64, lt: f64, target: (f64, f64), steps: usize) -> (f64, f64) {
        let (a, t, _) = self.descend(la, lt, target, steps);
        (a, t)
    }

    /// Gauss–Newton on the two residuals from (log age, log τ): numerical Jacobian,
    /// the step halved until the cost falls; returns the end point and its cost.
    fn descend(&self, la: f64, lt: f64, target: (f64, f64), iterations: usize) -> (f64, f64, f64) {
        let cost = |m: f64, s: f64| (m - target.0).powi(2) + (s - target.1).powi(2);
        let Some(r) = self.eval(la, lt) else { return (la, lt, f64::INFINITY) };
        let (mut la, mut lt, mut c) = (la, lt, cost(r.0, r.1));
        let clamp = |a: f64, t: f64| (a.clamp(self.log_age.0, self.log_age.1), t.clamp(self.log_tau.0, self.log_tau.1));
        for _ in 0..iterations {
            if c < 1e-14 {
                break;
            }
            let Some(r0) = self.eval(la, lt) else { break };
            let h = 1e-5;
            let (Some(pa), Some(pt)) = (self.eval(la + h, lt), self.eval(la, lt + h)) else { break };
            let (r1, r2) = (r0.0 - target.0, r0.1 - target.1);
            let (j11, j12, j21, j22) = ((pa.0 - r0.0) / h, (pt.0 - r0.0) / h, (pa.1 - r0.1) / h, (pt.1 - r0.1) / h);
            // least-squares step (JᵀJ + λI) δ = −Jᵀr, λ tiny: well defined where J is singular
            let (a11, a12, a22) = (j11 * j11 + j21 * j21 + 1e-9, j11 * j12 + j21 * j22, j12 * j12 + j22 * j22 + 1e-9);
            let (g1, g2) = (j11 * r1 + j21 * r2, j12 * r1 + j22 * r2);
            let det = a11 * a22 - a12 * a12;
            if !(det.is_finite() && det.abs() > 1e-300) {
                break;
            }
            let (mut da, mut dt) = (-(a22 * g1 - a12 * g2) / det, -(a11 * g2 - a12 * g1) / det);
            let mut improved = false;
            for _ in 0..20 {
                let (na, nt) = clamp(la + da, lt + dt);
                if let Some((m, s)) = self.eval(na, nt) {
                    let nc = cost(m, s);
                    if nc < c {
                        (la, lt, c, improved) = (na, nt, nc, true);
                        break;
                    }
                }
                da *= 0.5;
                dt *= 0.5;
            }
            if !improved {
                break;
            }
        }
        (la, lt, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `near(…, 0)` is the brute-force nearest table entry (the pruned scan must not skip it), and
    /// a Gauss–Newton step from it only gets nearer to the target.
    #[test]
    fn nearest_is_the_brute_force_nearest_entry() {
        let inv = DelayedTauInverse::new(2.1, (-2.0, 2.0), -14.0);
        let mut state = 12345u64;
        let mut uniform = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..500 {
            let (mwa, lssfr) = (10f64.powf(-3.0 + 3.3 * uniform()), -13.0 + 5.5 * uniform());
            let t = (mwa.log10(), lssfr.max(-14.0));
            let brute = inv
                .table
                .iter()
                .min_by(|a, b| ((a[2] - t.0).powi(2) + (a[3] - t.1).powi(2)).total_cmp(&((b[2] - t.0).powi(2) + (b[3] - t.1).powi(2))))
                .unwrap();
            let (age, tau) = inv.near(mwa, lssfr, 0).unwrap();
            assert_eq!((age, tau), (10f64.powf(brute[0]).min(inv.t_univ), 10f64.powf(brute[1])), "target {t:?}");
            // a step only ever gets nearer
            let dist = |(a, tau): (f64, f64)| {
                let (m, s) = inv.eval(a.log10(), tau.log10()).unwrap();
                (m - t.0).powi(2) + (s - t.1).powi(2)
            };
            assert!(dist(inv.near(mwa, lssfr, 1).unwrap()) <= dist((age, tau)) + 1e-12);
        }
    }
}
