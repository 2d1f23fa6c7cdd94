//! `sbipix validate`: a model on fresh simulations (or on another code's atlas).

use super::log;
use crate::args::RefineArgs;
use anyhow::Result;
use sbipix::request::{ValidateRequest, Validation};
use sbipix::validation::report::metrics_table;
use std::path::PathBuf;

fn d() -> ValidateRequest {
    ValidateRequest::default()
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Model folder, or a built-in model: `default`, `sbipix2025` (the default until December 2026).
    #[arg(long, default_value_t = d().model)]
    pub model: String,
    /// Number of fresh test simulations.
    #[arg(long, default_value_t = d().n)]
    pub n: usize,
    /// Seed of the test simulations (use one the training set did not).
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    /// Posterior draws per test case.
    #[arg(long, default_value_t = d().draws)]
    pub draws: usize,
    /// The map selection applied to the headline metrics: mean S/N over F277W, F356W, F444W.
    #[arg(long, default_value_t = d().snr_min)]
    pub snr_min: f64,
    /// With --refine: every test case's posterior is refined (as `sbipix map --refine`) and the
    /// refined posteriors are validated.
    #[command(flatten)]
    pub refine: RefineArgs,
    /// Also fit the first N selected test cases with a likelihood-based reference posterior
    /// (tempered SMC over the same forward model and prior; ≈ 5–15 s per case per core) and
    /// compare: how close the network is to the best the data allow. Delayed-τ priors only.
    #[arg(long, default_value_t = d().reference)]
    pub reference: usize,
    /// SMC particles (= draws) per reference posterior (at least 100).
    #[arg(long, default_value_t = d().reference_particles)]
    pub reference_particles: usize,
    /// Model mismatch instead: apply the model to a delayed-τ atlas made by another code (the
    /// SBIPIX FSPS atlas CSV format) with the survey's noise added.
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// With --against: the atlas fluxes already include the (1+z) factor of f_ν (the SBIPIX tau
    /// atlases do not).
    #[arg(long)]
    pub atlas_has_1pz: bool,
    /// Test pixels like these data: a FITS cube with FLUX and ERR HDUs (as `sbipix map --cube`
    /// reads it; or per-band images, --like-images). The test cases get a noise model learnt
    /// from it, its pixels' band masks, and its S/N distribution (docs/validation.md).
    #[arg(long, group = "like_source", conflicts_with_all = ["against", "like_images"])]
    pub like: Option<PathBuf>,
    /// Or test pixels like these per-band FITS images (as `sbipix map --images` reads them) …
    #[arg(long, num_args = 1.., group = "like_source", conflicts_with = "against")]
    pub like_images: Vec<PathBuf>,
    /// … with their error (or weight) maps, in the same order …
    #[arg(long, num_args = 1.., requires = "like_images", conflicts_with = "like_noise_from")]
    pub like_errors: Vec<PathBuf>,
    /// … or an empty-sky cutout per band (σ from its MAD), as `sbipix map --noise-from`.
    #[arg(long, num_args = 1.., requires = "like_images")]
    pub like_noise_from: Vec<PathBuf>,
    /// Whether --like-errors are σ or inverse-variance maps.
    #[arg(long, value_enum, default_value_t = sbipix::request::ImageInput::default().error_maps.into())]
    pub like_error_kind: crate::args::ErrorKind,
    /// Band names of the --like images, comma-separated (default: from the file names).
    #[arg(long, requires = "like_images")]
    pub like_bands: Option<String>,
    /// Unit of the --like data (default: BUNIT).
    #[arg(long, requires = "like_source")]
    pub like_unit: Option<String>,
    /// Test cases from another model's prior and survey (a model folder, or `sbipix2025`): two
    /// models scored on identical pixels (docs/validation.md).
    #[arg(long, conflicts_with = "against")]
    pub cases_from: Option<String>,
    /// Output folder: metrics.json, report.md and figures.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub overwrite: bool,
}

impl ValidateArgs {
    fn request(self) -> ValidateRequest {
        ValidateRequest {
            model: self.model,
            n: self.n,
            seed: self.seed,
            draws: self.draws,
            snr_min: self.snr_min,
            refine: self.refine.refine,
            sys_err: self.refine.sys_err,
            reference: self.reference,
            reference_particles: self.reference_particles,
            against: self.against,
            atlas_has_1pz: self.atlas_has_1pz,
            like: match (self.like, self.like_images.is_empty()) {
                (Some(p), _) => Some(sbipix::request::ImageInput::cube(p, self.like_unit)),
                (None, false) => Some(
                    crate::args::ImageInputArgs {
                        cube: None,
                        images: self.like_images,
                        errors: self.like_errors,
                        noise_from: self.like_noise_from,
                        error_kind: self.like_error_kind,
                        bands: self.like_bands,
                        unit: self.like_unit,
                    }
                    .input(),
                ),
                (None, true) => None,
            },
            cases_from: self.cases_from,
            out: self.out,
            overwrite: self.overwrite,
        }
    }
}

pub fn run(a: ValidateArgs) -> Result<()> {
    let req = a.request();
    let r = match req.run(&log)? {
        Validation::Against(r) => {
            let names: Vec<String> = r.parameters.keys().cloned().collect();
            outln!("{} of {} rows of {} (S/N > {}):\n{}", r.n_used, r.n_rows, r.atlas, r.snr_min, metrics_table(&r.parameters, &names))?;
            return Ok(());
        }
        Validation::Simulated(r) => r,
    };
    let names: Vec<String> = r.parameters.keys().cloned().collect();
    outln!("test cases with S/N > {} ({} of {}):\n{}", r.snr_min, r.n_selected, r.n, metrics_table(&r.parameters, &names))?;
    outln!("all test cases:\n{}", metrics_table(&r.parameters_all, &names))?;
    if let Some(c) = &r.reference {
        outln!("against the likelihood-based reference posterior ({} cases):", c.cases)?;
        outln!("{:<24} {:>10} {:>12} {:>16} {:>18}", "parameter", "R² sbipix", "R² reference", "R² ref. mean", "median in ref 68 %")?;
        for n in &names {
            outln!(
                "{:<24} {:>10.3} {:>12.3} {:>16.3} {:>18.2}",
                n,
                c.model[n].r2,
                c.reference[n].r2,
                c.reference_mean_r2[n],
                c.model_median_in_reference_68[n]
            )?;
        }
    }
    log(&format!(
        "sbipix: TARP max |ECP − α| = {:.3}; report in {} ({:.0} s)",
        r.tarp.max_deviation,
        req.out.join("report.md").display(),
        r.seconds
    ));
    Ok(())
}
