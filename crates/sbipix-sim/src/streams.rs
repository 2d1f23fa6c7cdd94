//! Named random streams. Every random step of the pipeline draws from its own stream, derived
//! from the user's seed by a fixed tag (`seed ^ TAG`, or [`crate::simulate::sample_rng`]`(seed,
//! TAG)`), so that a step never shares draws with another and adding draws to one step never
//! shifts another's. The tags are part of the reproducibility contract: changing one changes every
//! seeded output of its step (and the numbers in the docs measured with it).

/// Network draws of a validation's test cases (`seed ^ VALIDATION_DRAWS`).
pub const VALIDATION_DRAWS: u64 = 0xA5A5_5A5A;
/// Network draws of a calibration's test cases, from which its maps are learnt
/// (`seed ^ CALIBRATION_DRAWS`).
pub const CALIBRATION_DRAWS: u64 = 0xCA11_B0A7;
/// Network draws of the integrated photometry of a mapped galaxy (`seed ^ INTEGRATED_FIT`).
pub const INTEGRATED_FIT: u64 = 0x1D;
/// Likelihood refinement of pixel or catalogue posteriors (`seed ^ REFINE`).
pub const REFINE: u64 = 0x0EF1;
/// Likelihood refinement of a mapped galaxy's integrated posterior (`seed ^ REFINE_INTEGRATED`).
pub const REFINE_INTEGRATED: u64 = 0x1E;
/// Network draws of the model-mismatch atlas (`seed ^ MISMATCH_DRAWS`).
pub const MISMATCH_DRAWS: u64 = 0x77;
/// Within one refinement: the importance-sampling and resampling stream
/// (`sample_rng(seed, REFINE_SAMPLING)`).
pub const REFINE_SAMPLING: u64 = 0x005E_F14E;
/// Within one reference posterior: the draws of the mass from its conditional
/// (`sample_rng(seed, REFERENCE_MASS)`).
pub const REFERENCE_MASS: u64 = 0x4D41_5353;
/// Added noise of the replicas of integrated photometry (`seed ^ INTEGRATED_REPLICA_NOISE·(object + 1)`).
pub const INTEGRATED_REPLICA_NOISE: u64 = 0x5EED_1D00;
/// The order in which `sbipix validate --like` hands the data's band masks to its test cases
/// (`SplitMix64(seed ^ VALIDATION_LIKE_MASKS)`).
pub const VALIDATION_LIKE_MASKS: u64 = 0x11CE;
