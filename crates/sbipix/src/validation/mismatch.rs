//! Model mismatch: the model applied to photometry made by another code (an FSPS atlas).

use super::report::metrics_table;
use crate::error::write_file;
use crate::inference::model::Posterior;
use crate::{Error, Result};
use sbipix_diagnostics::{Draws, ParamMetrics, metrics};
use sbipix_sim::Survey;
use sbipix_sim::streams;
use sbipix_sim::theta::floored_log_sfr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Result of [`validate_against`]: the model applied to photometry made by another code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MismatchReport {
    pub atlas: String,
    pub model: String,
    pub n_rows: usize,
    pub n_used: usize,
    pub snr_min: f64,
    pub multiplied_by_1pz: bool,
    /// Metrics of the parameters whose truth the atlas gives (in this model's definitions).
    pub parameters: BTreeMap<String, ParamMetrics>,
    pub seed: u64,
    pub created_by: String,
}

/// Model mismatch: applies the model to a delayed-τ atlas made by another code (the SBIPIX FSPS
/// atlases: columns `zred`, `log_mformed`, `tau_Gyr`, `t_start_Gyr`, `dust2`, `logzsol`,
/// `flux_uJy_<…F090W…>`), with the model's survey noise added, and compares the posterior
/// medians with the atlas' parameters, expressed in this model's definitions (SFRs and
/// mass-weighted age recomputed from the atlas SFH; A_V = 1.086·dust2). The SBIPIX tau atlases
/// omit the (1+z) of f_ν: `multiply_1pz` restores it.
#[allow(clippy::too_many_arguments)]
pub fn validate_against(
    model_dir: &Path,
    atlas: &Path,
    seed: u64,
    n_draws: usize,
    snr_min: f64,
    multiply_1pz: bool,
    out: &Path,
    overwrite: bool,
    log: &dyn Fn(&str),
) -> Result<MismatchReport> {
    crate::check_output(out, overwrite)?;
    let post = Posterior::load(model_dir)?;
    let read = |name: &str| -> Result<String> {
        let p = model_dir.join(name);
        crate::error::read_file(&p)
    };
    let survey = Survey::from_toml_str(&read("survey.toml")?, "survey.toml")?;
    let bands = post.manifest.bands.clone();
    let noise = survey.sampler(&bands)?;
    let af = atlas.display().to_string();
    let names = post.parameter_names();
    let AtlasCases { flux, sigma: sig, seen, redshift: zs, truth, n_rows } =
        read_atlas(atlas, &post, &names, &noise, seed, snr_min, multiply_1pz)?;
    let zmax = post.manifest.max_redshift_trained;
    let np = names.len();
    let n = zs.len();
    if n < 10 {
        return Err(Error::file(&af, format!("only {n} usable rows (z ≤ {zmax}, positive fluxes, S/N > {snr_min})")));
    }
    log(&format!("sbipix: {n} of {n_rows} atlas rows usable; sampling {n_draws} draws each…"));
    let draws = post.sample(&flux, &sig, &seen, &zs, n_draws, seed ^ streams::MISMATCH_DRAWS)?;
    let mut params = BTreeMap::new();
    for (j, name) in names.iter().enumerate() {
        if !truth[j].is_finite() {
            continue;
        }
        let t: Vec<f64> = (0..n).map(|i| truth[i * np + j]).collect();
        let d: Vec<f64> = (0..n * n_draws).map(|k| draws[k * np + j] as f64).collect();
        params.insert(name.clone(), metrics(&Draws { truth: &t, draws: &d, n_draws }));
    }
    let report = MismatchReport {
        atlas: af,
        model: model_dir.display().to_string(),
        n_rows,
        n_used: n,
        snr_min,
        multiplied_by_1pz: multiply_1pz,
        parameters: params,
        seed,
        created_by: format!("sbipix {}", env!("CARGO_PKG_VERSION")),
    };
    write_mismatch(out, overwrite, &report)?;
    Ok(report)
}

/// The usable atlas rows with the model's survey noise added: photometry [cases × bands] in the
/// model's band order, redshifts, and the truth of every parameter of `names` in this model's
/// definitions (NaN where the atlas does not give it).
struct AtlasCases {
    flux: Vec<f64>,
    sigma: Vec<f64>,
    seen: Vec<bool>,
    redshift: Vec<f64>,
    truth: Vec<f64>,
    n_rows: usize,
}

/// Reads the atlas, keeps the rows within the model's redshift range with positive fluxes that
/// pass the map selection after noise is added (seeded per row).
#[allow(clippy::too_many_arguments)]
fn read_atlas(
    atlas: &Path,
    post: &Posterior,
    names: &[String],
    noise: &sbipix_sim::NoiseSampler,
    seed: u64,
    snr_min: f64,
    multiply_1pz: bool,
) -> Result<AtlasCases> {
    use sbipix_sps::{Sfh, SfhShape};
    let af = atlas.display().to_string();
    let bands = &post.manifest.bands;
    let mut rdr = csv::ReaderBuilder::new().comment(Some(b'#')).from_path(atlas).map_err(|e| Error::read(&af, e))?;
    let header: Vec<String> = rdr.headers().map_err(|e| Error::read(&af, e))?.iter().map(String::from).collect();
    let col = |n: &str| header.iter().position(|h| h == n).ok_or_else(|| Error::file(&af, format!("missing column `{n}`")));
    let (cz, cm, ct, cs, cd, cl) =
        (col("zred")?, col("log_mformed")?, col("tau_Gyr")?, col("t_start_Gyr")?, col("dust2")?, col("logzsol")?);
    // flux columns: flux_uJy_<anything ending in _<BAND>>
    let fcols: Vec<Option<usize>> = bands
        .iter()
        .map(|b| header.iter().position(|h| h.starts_with("flux_uJy_") && (h.ends_with(&format!("_{b}")) || h == &format!("flux_uJy_{b}"))))
        .collect();
    let cosmo = post.manifest.forward_model.cosmology;
    let zmax = post.manifest.max_redshift_trained;
    let nb = bands.len();
    let (mut flux, mut sig, mut seen, mut zs, mut truth) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut n_rows = 0;
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::Row { file: af.clone(), row: i + 1, line: 0, column: String::new(), reason: e.to_string() })?;
        n_rows += 1;
        let g = |c: usize| rec.get(c).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        let z = g(cz);
        if !(z.is_finite() && z > 0.0 && z <= zmax) {
            continue;
        }
        let t_univ = cosmo.age_gyr(z);
        let (logm, tau, ts) = (g(cm), g(ct), g(cs));
        let age = t_univ - ts;
        let Ok(sfh) = Sfh::new(SfhShape::DelayedTau { age_gyr: age, tau_gyr: tau }, logm, t_univ) else { continue };
        let f: Vec<f64> = fcols.iter().map(|c| c.map(|c| g(c) * if multiply_1pz { 1.0 + z } else { 1.0 }).unwrap_or(f64::NAN)).collect();
        if f.iter().any(|v| *v <= 0.0) {
            continue;
        }
        let mut rng = sbipix_sim::simulate::sample_rng(seed, i as u64);
        let ftrue: Vec<f64> = f.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect();
        let (mut s, mut o) = (vec![0.0; nb], vec![0.0; nb]);
        noise.draw(&mut rng, &ftrue, &mut s, &mut o);
        // map selection
        let sel: Vec<f64> = crate::products::map::SNR_BANDS
            .iter()
            .filter_map(|b| bands.iter().position(|x| x == b))
            .filter(|&b| f[b].is_finite())
            .map(|b| o[b] / s[b])
            .collect();
        if sel.is_empty() || sel.iter().sum::<f64>() / (sel.len() as f64) <= snr_min {
            continue;
        }
        let sm = sfh.summary();
        let known = |n: &str| -> f64 {
            match n {
                "log_mass_formed" => logm,
                "log_sfr_100myr" => floored_log_sfr(sm.sfr_100myr.log10(), sm.log_mass_formed),
                "log_sfr_10myr" => floored_log_sfr(sm.sfr_10myr.log10(), sm.log_mass_formed),
                "mass_weighted_age_gyr" => sm.mass_weighted_age_gyr,
                "av_mag" => 1.086 * g(cd),
                "logzsol" => g(cl),
                "log_tau_gyr" => tau.log10(),
                "onset_fraction" => ts / t_univ, // the atlas gives the onset as a time since the Big Bang
                "log_age_fraction" => (1.0 - ts / t_univ).log10(),
                _ => f64::NAN,
            }
        };
        truth.extend(names.iter().map(|n| known(n)));
        for b in 0..nb {
            flux.push(if f[b].is_finite() { o[b] } else { f64::NAN });
            sig.push(s[b]);
            seen.push(f[b].is_finite());
        }
        zs.push(z);
    }
    Ok(AtlasCases { flux, sigma: sig, seen, redshift: zs, truth, n_rows })
}

/// Writes `mismatch.json` and `mismatch.md` into the folder `out`, atomically.
fn write_mismatch(out: &Path, overwrite: bool, report: &MismatchReport) -> Result<()> {
    let names_known: Vec<String> = report.parameters.keys().cloned().collect();
    let md = format!(
        "# Model mismatch: `{}` on `{}`\n\n{} of {} rows used (S/N > {}, fluxes × (1+z): {}).\n\n{}",
        report.model,
        report.atlas,
        report.n_used,
        report.n_rows,
        report.snr_min,
        report.multiplied_by_1pz,
        metrics_table(&report.parameters, &names_known)
    );
    crate::write_dir_atomic(out, overwrite, |d| -> Result<()> {
        write_file(&d.join("mismatch.json"), serde_json::to_string_pretty(report).expect("report serialises"))?;
        write_file(&d.join("mismatch.md"), md)
    })
}
