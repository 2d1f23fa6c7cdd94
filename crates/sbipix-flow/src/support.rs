//! The training support of a flow's parameters ([`crate::FlowConfig::theta_support`]): the range
//! of the training θ, outside which the sampler redraws (`FlowModel::sample`).

/// Fraction of a parameter's training range added on each side of it in [`support_of`]: the
/// sample's extremes fall short of the prior's bounds by about range/n, far less than this.
pub const SUPPORT_MARGIN: f64 = 0.05;

/// The support of each parameter from training θ [n × d]: [min − m, max + m] with m =
/// [`SUPPORT_MARGIN`] × (max − min), over the finite values (a parameter with none gets
/// (−∞, ∞)).
pub fn support_of(theta: &[f32], d: usize) -> Vec<[f64; 2]> {
    (0..d)
        .map(|i| {
            let (lo, hi) = theta
                .iter()
                .skip(i)
                .step_by(d)
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v as f64), hi.max(v as f64)));
            if lo > hi {
                [f64::NEG_INFINITY, f64::INFINITY]
            } else {
                let m = SUPPORT_MARGIN * (hi - lo);
                [lo - m, hi + m]
            }
        })
        .collect()
}

/// Whether every value of `th` lies in its parameter's support.
pub fn contains(support: &[[f64; 2]], th: &[f64]) -> bool {
    support.iter().zip(th).all(|([lo, hi], v)| *v >= *lo && *v <= *hi)
}
