//! # sbipix-stats — generic numerics, astronomy-free
//!
//! The numerical building blocks that several sbipix crates share, each written once:
//! * [`quantile`] — quantiles and medians of samples (numpy's linear interpolation);
//! * [`lowdiscrepancy`] — quasi-random (Halton) points;
//! * [`linalg`] — Cholesky factorisation, triangular solves, inverses, normal equations;
//! * [`normal`] — standard normal draws (Box–Muller), Φ and Φ⁻¹;
//! * [`rng`] — SplitMix64 and the seed mixing of the named random streams;
//! * [`importance`] — effective sample size and systematic resampling of weighted samples;
//! * [`smc`] — tempered sequential Monte Carlo and random-walk Metropolis moves;
//! * [`simplex`] — ascending points of (0, 1) as cube points, Dirichlet densities over them.
//!
//! Works on plain slices of `f64`; knows nothing of galaxies, networks or files. Deterministic:
//! the same inputs and seed give the same bits.

pub mod importance;
pub mod linalg;
pub mod lowdiscrepancy;
pub mod normal;
pub mod quadrature;
pub mod quantile;
pub mod rng;
pub mod simplex;
pub mod smc;

pub use importance::{effective_sample_size, systematic};
pub use linalg::{Summation, cholesky, solve_spd};
pub use lowdiscrepancy::{HALTON_MAX_DIM, halton};
pub use normal::std_normal;
pub use quadrature::gauss_legendre;
pub use quantile::{median, percentile, quantile_sorted, sort_f64};
pub use rng::{SplitMix64, index_seed, splitmix64};
