//! # sbipix-sim — what the network learns from
//!
//! Priors over pixel parameters ([`prior`]), survey noise models learnt from real error maps
//! ([`survey`]), the network's input encoding ([`encoding`]) and reproducible parallel simulation
//! of training sets ([`mod@simulate`]), the θ parameterisation ([`theta`]) and named random streams
//! ([`streams`]). Knows nothing of networks.

pub mod encoding;
pub mod error;
pub mod prior;
pub mod simulate;
pub mod streams;
pub mod survey;
pub mod theta;

pub use encoding::{EncodingKind, InputEncoding};
pub use error::{Result, SimError};
pub use prior::{ModelLimits, ParamPrior, Prior, SfhPrior};
pub use simulate::{SimulationSpec, TrainingSet, simulate};
pub use survey::{BandLimit, BandPattern, DepthFamily, LearningData, NoiseDraw, NoiseSampler, Survey, SurveyBand};
