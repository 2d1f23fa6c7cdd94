//! # sbipix-stats — generic numerics, astronomy-free
//!
//! The numerical building blocks that several sbipix crates share, each written once: quantiles of
//! samples ([`quantile`]). Works on plain slices of `f64`; knows nothing of galaxies, networks or
//! files.

pub mod quantile;

pub use quantile::{median, percentile, quantile_sorted, sort_f64};
