//! Which model made a product: the SHA-256 of its weights, and whether they are the shipped
//! default model's (recorded in `summary.json` and in `maps.fits`).

use crate::inference::model::DEFAULT_MODEL_FILES;
use std::path::Path;

/// SHA-256 (hex) of `model_dir/weights.safetensors`, as `sha256sum` prints it; None if it cannot
/// be read.
pub fn weights_sha256(model_dir: &Path) -> Option<String> {
    std::fs::read(model_dir.join("weights.safetensors")).ok().map(|b| sbipix_io::data::sha256_hex(&b))
}

/// Whether `sha256` is that of the shipped default model's weights.
pub fn is_default_weights(sha256: &str) -> bool {
    static DEFAULT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let default = DEFAULT.get_or_init(|| {
        let weights = DEFAULT_MODEL_FILES.iter().find(|(name, _)| *name == "weights.safetensors").map(|(_, b)| *b).unwrap_or_default();
        sbipix_io::data::sha256_hex(weights)
    });
    sha256 == default
}
