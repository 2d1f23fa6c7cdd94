//! # sbipix-flow — conditional normalizing flows for neural posterior estimation
//!
//! Density estimators q(θ | x) that know nothing of astronomy: a neural spline flow with
//! rational-quadratic coupling layers (the default; one network pass per layer in both
//! directions) and a masked autoregressive flow compatible with nflows/sbi (enough to run the
//! SBIPIX authors' released network). Inference runs on plain Rust matrix products (f32 or f64);
//! training uses candle.

mod checkpoint;
pub mod dense;
pub mod error;
pub mod maf;
pub mod model;
pub mod nsf;
pub mod real;
pub mod rqs;
pub mod rqs_batch;
pub mod sbipix_import;
pub mod support;
pub mod train;
mod train_net;

pub use error::{FlowError, Result};
pub use model::{Architecture, BoundMethod, DEFAULT_TAIL_BOUND, FlowConfig, FlowModel, ParamSpec, load_dir, save_dir};
