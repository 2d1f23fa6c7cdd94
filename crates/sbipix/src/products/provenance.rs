//! Which model made a product: the SHA-256 of its weights, and whether they are the shipped
//! default model's (recorded in `summary.json` and in `maps.fits`).

use crate::inference::model::DEFAULT_MODEL_FILES;

/// Whether `sha256` is that of the shipped default model's weights.
pub fn is_default_weights(sha256: &str) -> bool {
    static DEFAULT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let default = DEFAULT.get_or_init(|| {
        let file = |name: &str| DEFAULT_MODEL_FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
        // the companion network's folder, as model.json names it
        let manifest: Option<crate::inference::model::ModelManifest> = file("model.json").and_then(|b| serde_json::from_slice(b).ok());
        let companion = manifest.and_then(|m| m.companion).and_then(|sub| file(&format!("{sub}/weights.safetensors")));
        crate::inference::model::weights_identity(file("weights.safetensors").unwrap_or_default(), companion)
    });
    sha256 == default
}

#[cfg(test)]
mod tests {
    use crate::products::map::MapSummary;

    /// A `summary.json` written before sbipix recorded how the maps were made (the demo's, abridged)
    /// still reads: surveys resume from such files.
    #[test]
    fn older_summaries_still_read() {
        let old = r#"{"source": "synthetic demo galaxy", "model": "/m/default-153c965edaaf8e7c", "redshift": 1.8,
            "n_pixels": 790, "n_pixels_total": 4096, "bands_used": ["F277W", "F356W", "F444W"], "bands_missing": [],
            "pixel_scale_arcsec": 0.03, "pixel_area_kpc2": 0.064, "log_mstar_resolved": [9.42, 9.43, 9.45],
            "log_mstar_integrated": [9.20, 9.45, 9.64], "log_sfr_100myr_resolved": [0.64, 0.66, 0.69],
            "log_sfr_100myr_integrated": [-2.07, 0.52, 0.84], "seconds": 6.8, "ms_per_pixel": 8.6,
            "ppc_median_residual_sigma": {"F444W": 0.54}, "ppc_median_chi2_reduced": 1.02,
            "integrated": {"log_mstar": [9.20, 9.45, 9.64]}, "resolved_mass_weighted": {"av_mag": 1.77}}"#;
        let s: MapSummary = serde_json::from_str(old).unwrap();
        assert_eq!((s.n_pixels, s.seed, s.n_draws, s.snr_min), (790, None, None, None));
        assert!(s.snr_bands.is_empty() && s.model_weights_sha256.is_none() && s.model_is_default.is_none());
        assert!(s.sbipix_version.is_none() && s.integrated_error_floor.is_none() && s.segmentation_id.is_none());
    }
}
