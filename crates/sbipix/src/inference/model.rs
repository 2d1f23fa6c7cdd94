//! Trained models: a flow plus everything needed to use it on photometry — a model directory
//!
//! ```text
//! MODEL_DIR/
//!   model.json           parameters (names, units), bands, input encoding, survey, SFH family,
//!                        training-set provenance, training settings and result, sbipix version
//!   flow.json            the flow: architecture, bounds, standardisation (sbipix-flow)
//!   weights.safetensors  the network weights (float32)
//!   prior.toml, survey.toml   copied from the training set
//!   sparse/              optional: a companion network for sparse band sets (a model folder
//!                        of its own, named by model.json's `companion`; `sbipix attach`)
//! ```
//!
//! A companion is a second network with the same parameters, bands, input encoding and prior,
//! trained on band sets the main network rarely saw (e.g. COSMOS-Web's four NIRCam bands). Each
//! pixel is sampled by the network whose training set had more of its band set
//! ([`crate::inference::ood::TrainingDomain::uses_companion`]); the rest of sbipix sees one model.

use crate::inference::training_set::ParameterInfo;
use crate::{Error, Result};
use sbipix_flow::FlowModel;
use sbipix_flow::train::TrainConfig;
use sbipix_sim::InputEncoding;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "sbipix-model";
pub const FORMAT_VERSION: u32 = 1;

/// `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelManifest {
    pub format: String,
    pub format_version: u32,
    pub created_by: String,
    pub parameters: Vec<ParameterInfo>,
    pub conditions: Vec<String>,
    pub bands: Vec<String>,
    pub encoding: InputEncoding,
    pub survey: String,
    pub sfh: String,
    pub max_redshift_trained: f64,
    /// The forward-model settings the training set was simulated with.
    pub forward_model: sbipix_sps::ModelConfig,
    pub training_set: TrainingSetInfo,
    pub training: Option<TrainingInfo>,
    pub notes: String,
    /// The calibration maps applied to every draw (`sbipix calibrate`); absent: the network's
    /// draws as trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationInfo>,
    /// The folder, inside this one, of the companion network for sparse band sets (`sbipix
    /// attach`); absent: one network for every pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companion: Option<String>,
}

/// The calibration of a model's marginal posteriors ([`crate::validation::calibrate`]): per
/// parameter, a quantile map applied to every draw the network makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalibrationInfo {
    /// "quantile recalibration (Kuleshov, Fenner & Ermon 2018)".
    pub method: String,
    /// Per parameter: G⁻¹, the inverse CDF of the uncalibrated draws' PITs.
    pub maps: std::collections::BTreeMap<String, sbipix_diagnostics::QuantileMap>,
    /// Seed and number of the fresh test simulations, how many passed the S/N cut.
    pub seed: u64,
    pub n: usize,
    pub n_selected: usize,
    pub snr_min: f64,
    pub draws: usize,
    /// 68 % and 95 % coverage of the selected cases before and after (the same cases the maps
    /// were learnt on: check on fresh ones with `sbipix validate`).
    pub coverage_before: std::collections::BTreeMap<String, [f64; 2]>,
    pub coverage_after: std::collections::BTreeMap<String, [f64; 2]>,
    /// The model folder that was calibrated.
    pub calibrated_from: String,
    pub created_by: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingSetInfo {
    pub path: String,
    pub n: usize,
    pub seed: u64,
    pub drop_rate: f64,
    pub created_by: String,
    /// The S/N window the set was focused on (`sbipix simulate --focus-snr`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr_focus: Option<crate::inference::snr_focus::FocusRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub config: TrainConfig,
    pub epochs: usize,
    pub best_epoch: usize,
    pub best_val_log_prob: f64,
    pub stopped_early: bool,
    pub seconds: f64,
}

/// A trained posterior estimator ready for photometry.
pub struct Posterior {
    pub manifest: ModelManifest,
    pub flow: FlowModel<f32>,
    pub dir: PathBuf,
    /// The survey noise model the training set was simulated with (`survey.toml`), when the
    /// folder has it: integrated fits use it to map photometry into the training noise regime.
    pub survey: Option<sbipix_sim::Survey>,
    /// SHA-256 of `weights.safetensors` (what `sha256sum` prints), read once at load: the identity
    /// of the model that products record.
    pub weights_sha256: Option<String>,
    /// The pixel size (arcsec) of a physical prior's mass per kpc² (`prior.toml`): maps scale
    /// other pixels to it. None for SBIPIX's per-pixel prior.
    pub pixel_scale_arcsec: Option<f64>,
    /// The companion network for sparse band sets (`model.json`'s `companion`), if any.
    pub companion: Option<Box<Posterior>>,
    /// What the network(s) were trained on: the OOD flags, and which network samples a pixel.
    /// None when the folder has no `survey.toml`.
    pub domain: Option<crate::inference::ood::TrainingDomain>,
}

/// Writes a model directory atomically.
pub fn write_model_dir(
    out: &Path,
    flow: &FlowModel<f64>,
    manifest: &ModelManifest,
    extra: &[(&str, String)],
    overwrite: bool,
) -> Result<()> {
    crate::write_dir_atomic(out, overwrite, |d| -> Result<()> {
        sbipix_flow::save_dir(flow, d)?;
        std::fs::write(d.join("model.json"), serde_json::to_string_pretty(manifest).expect("manifest serialises"))
            .map_err(|e| Error::write(d.join("model.json"), e))?;
        for (name, text) in extra {
            std::fs::write(d.join(name), text).map_err(|e| Error::write(d.join(name), e))?;
        }
        Ok(())
    })
}

impl Posterior {
    /// Loads a model directory, checking that its files agree with each other.
    pub fn load(dir: &Path) -> Result<Self> {
        let ds = dir.display().to_string();
        let mpath = dir.join("model.json");
        let text = std::fs::read_to_string(&mpath).map_err(|e| Error::file(&mpath, format!("{e} (is {ds} an sbipix model directory?)")))?;
        let manifest: ModelManifest = serde_json::from_str(&text).map_err(|e| Error::read(&mpath, e))?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(Error::file(
                &mpath,
                format!("format {} v{} (this sbipix reads {FORMAT} v{FORMAT_VERSION})", manifest.format, manifest.format_version),
            ));
        }
        let flow = sbipix_flow::load_dir(dir)?;
        if let Some(c) = &manifest.calibration {
            let names: Vec<&str> = manifest.parameters.iter().map(|p| p.name.as_str()).collect();
            if let Some((name, _)) = c.maps.iter().find(|(name, m)| !names.contains(&name.as_str()) || !m.is_valid()) {
                return Err(Error::file(
                    &mpath,
                    format!("calibration map of `{name}`: not a model parameter, or not a valid quantile table"),
                ));
            }
        }
        if flow.dim_theta() != manifest.parameters.len() || flow.dim_x() != manifest.encoding.n_inputs() {
            return Err(Error::file(
                &ds,
                format!(
                    "flow.json ({} parameters, {} inputs) disagrees with model.json ({} parameters, {} inputs)",
                    flow.dim_theta(),
                    flow.dim_x(),
                    manifest.parameters.len(),
                    manifest.encoding.n_inputs()
                ),
            ));
        }
        let spath = dir.join("survey.toml");
        let survey = match std::fs::read_to_string(&spath) {
            Ok(t) if !t.trim().is_empty() => Some(sbipix_sim::Survey::from_toml_str(&t, &spath.display().to_string())?),
            _ => None,
        };
        if let Some(s) = &survey {
            let names = s.band_names();
            if names != manifest.bands {
                return Err(Error::file(
                    &spath,
                    format!("bands {} differ from model.json's {}", names.join(","), manifest.bands.join(",")),
                ));
            }
        }
        let ppath = dir.join("prior.toml");
        let pixel_scale_arcsec = match std::fs::read_to_string(&ppath) {
            Ok(t) => sbipix_sim::Prior::from_toml_str(&t, &ppath.display().to_string())?.pixel_scale_arcsec,
            Err(_) => None,
        };
        // None if it cannot be read (the flow itself was read above, so this is rare)
        let weights = std::fs::read(dir.join("weights.safetensors")).ok();
        let mut domain = survey.as_ref().map(|s| crate::inference::ood::TrainingDomain::new(s, manifest.training_set.drop_rate));
        let companion = match &manifest.companion {
            None => None,
            Some(sub) => {
                // a plain folder name inside this one (a path could point back at this folder)
                if sub.is_empty() || sub == "." || sub == ".." || sub.contains(['/', '\\']) {
                    return Err(Error::file(&mpath, format!("companion `{sub}`: not the name of a folder inside the model folder")));
                }
                let c = Self::load(&dir.join(sub))?;
                check_companion(dir, &manifest, pixel_scale_arcsec, &c)?;
                let (Some(main), Some(cd)) = (domain.take(), c.domain.clone()) else {
                    return Err(Error::file(dir, "a model with a companion network needs the survey.toml of both"));
                };
                domain = Some(main.with_companion(cd));
                Some(Box::new(c))
            }
        };
        let companion_weights = companion.as_ref().and_then(|c| std::fs::read(c.dir.join("weights.safetensors")).ok());
        let weights_sha256 = weights.map(|w| weights_identity(&w, companion_weights.as_deref()));
        Ok(Self { manifest, flow: flow.cast(), dir: dir.to_path_buf(), survey, weights_sha256, pixel_scale_arcsec, companion, domain })
    }

    pub fn parameter_names(&self) -> Vec<String> {
        self.manifest.parameters.iter().map(|p| p.name.clone()).collect()
    }

    /// `n` posterior draws per pixel from photometry: flux and σ [pixels × bands] in µJy in the
    /// model's band order (NaN or `measured = false` for missing bands), redshift per pixel.
    /// Returns [pixels × n × parameters].
    pub fn sample(&self, flux: &[f64], sigma: &[f64], measured: &[bool], redshift: &[f64], n: usize, seed: u64) -> Result<Vec<f32>> {
        self.sample_from(flux, sigma, measured, redshift, n, seed, 0)
    }

    /// As [`Self::sample`] for pixels numbered from `first` (their random streams), so a long
    /// list can be sampled in chunks with the same result.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_from(
        &self,
        flux: &[f64],
        sigma: &[f64],
        measured: &[bool],
        redshift: &[f64],
        n: usize,
        seed: u64,
        first: usize,
    ) -> Result<Vec<f32>> {
        if n == 0 {
            return Err(Error::invalid("draws", n, "the number of posterior draws per pixel must be at least 1"));
        }
        let x = self.encode(flux, sigma, measured, redshift)?;
        let Some(companion) = &self.companion else {
            return self.sample_encoded(&x, redshift.len(), n, seed, first);
        };
        // runs of consecutive pixels sampled by the same network; each pixel's random stream is
        // its number, so the draws do not depend on how the list is split
        let nb = self.manifest.bands.len();
        let (ni, d, np) = (self.manifest.encoding.n_inputs(), self.manifest.parameters.len(), redshift.len());
        let uses: Vec<bool> = (0..np).map(|p| self.uses_companion(&measured[p * nb..(p + 1) * nb])).collect();
        let mut draws = Vec::with_capacity(np * n * d);
        let mut start = 0;
        while start < np {
            let end = (start..np).find(|&p| uses[p] != uses[start]).unwrap_or(np);
            let net = if uses[start] { companion.as_ref() } else { self };
            draws.extend(net.sample_encoded(&x[start * ni..end * ni], end - start, n, seed, first + start)?);
            start = end;
        }
        Ok(draws)
    }

    /// Whether the pixel measuring `measured` (one per band) is sampled by the companion network.
    pub fn uses_companion(&self, measured: &[bool]) -> bool {
        self.domain.as_ref().is_some_and(|d| d.uses_companion(measured))
    }

    /// This network's draws for encoded inputs, calibrated with its own maps.
    fn sample_encoded(&self, x: &[f64], pixels: usize, n: usize, seed: u64, first: usize) -> Result<Vec<f32>> {
        let mut draws = self.flow.sample_from(x, pixels, n, seed, first as u64)?;
        if let Some(c) = &self.manifest.calibration {
            self.recalibrate(c, &mut draws, n);
        }
        Ok(draws)
    }

    /// Applies the model's calibration maps to draws [pixels × n × parameters] in place.
    fn recalibrate(&self, c: &CalibrationInfo, draws: &mut [f32], n: usize) {
        use rayon::prelude::*;
        let d = self.manifest.parameters.len();
        let maps: Vec<(usize, &sbipix_diagnostics::QuantileMap)> =
            self.manifest.parameters.iter().enumerate().filter_map(|(j, p)| Some((j, c.maps.get(&p.name)?))).collect();
        draws.par_chunks_mut(n * d).for_each_init(Vec::new, |scratch, pixel| {
            for (j, m) in &maps {
                m.apply_strided(&mut pixel[*j..], n, d, scratch);
            }
        });
    }

    /// The network inputs for pixels (see [`InputEncoding`]).
    pub fn encode(&self, flux: &[f64], sigma: &[f64], measured: &[bool], redshift: &[f64]) -> Result<Vec<f64>> {
        let enc = &self.manifest.encoding;
        let (nb, np) = (enc.bands.len(), redshift.len());
        if flux.len() != np * nb || sigma.len() != np * nb || measured.len() != np * nb {
            return Err(Error::shape(
                "pixel photometry (flux, σ, measured)",
                format!("{np} pixels × {nb} bands = {} values each", np * nb),
                format!("{}, {}, {}", flux.len(), sigma.len(), measured.len()),
            ));
        }
        let zmax = self.manifest.max_redshift_trained;
        if let Some(i) = redshift.iter().position(|z| !(z.is_finite() && *z >= 0.0 && *z <= zmax)) {
            return Err(Error::invalid("redshift", redshift[i], format!("(pixel {i}) outside the trained range [0, {zmax}]")));
        }
        let ni = enc.n_inputs();
        let mut out = vec![0f32; np * ni];
        for p in 0..np {
            enc.encode(
                &flux[p * nb..(p + 1) * nb],
                &sigma[p * nb..(p + 1) * nb],
                &measured[p * nb..(p + 1) * nb],
                redshift[p],
                &mut out[p * ni..(p + 1) * ni],
            );
        }
        Ok(out.iter().map(|v| *v as f64).collect())
    }
}

/// The regular files of a model folder and of its companion's folder `companion` (if any), by
/// path inside the folder.
pub(crate) fn read_model_files(dir: &Path, companion: Option<&str>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for sub in std::iter::once("").chain(companion) {
        let d = dir.join(sub);
        let entries = std::fs::read_dir(&d).map_err(|e| Error::file(&d, e.to_string()))?;
        for e in entries {
            let e = e.map_err(|e| Error::file(&d, e.to_string()))?;
            if e.file_type().map_err(|err| Error::file(e.path(), err.to_string()))?.is_file() {
                let bytes = std::fs::read(e.path()).map_err(|err| Error::file(e.path(), err.to_string()))?;
                let name = e.file_name().to_string_lossy().into_owned();
                files.push((if sub.is_empty() { name } else { format!("{sub}/{name}") }, bytes));
            }
        }
    }
    Ok(files)
}

/// Writes `out` atomically: `files` (paths inside the folder, [`read_model_files`]) as they were
/// but the top-level `model.json`, which becomes `manifest`.
pub(crate) fn write_model_copy(out: &Path, overwrite: bool, files: &[(String, Vec<u8>)], manifest: &ModelManifest) -> Result<()> {
    crate::write_dir_atomic(out, overwrite, |d| -> Result<()> {
        for (name, bytes) in files {
            let text: Vec<u8> = match name.as_str() {
                "model.json" => serde_json::to_string_pretty(manifest).expect("manifest serialises").into_bytes(),
                _ => bytes.clone(),
            };
            let path = d.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
            }
            std::fs::write(&path, text).map_err(|e| Error::write(&path, e))?;
        }
        Ok(())
    })
}

/// The folder a companion network gets inside its model's folder.
pub const COMPANION_DIR: &str = "sparse";

/// Writes `out`: a copy of the model folder `main` whose pixels with sparse band sets are sampled
/// by the model folder `companion` (copied into `out/sparse`; see the module docs). Both are
/// loaded and checked first (same parameters, bands, encoding, prior; both with their
/// `survey.toml`); a companion `main` had is replaced. Returns the loaded result.
pub fn attach_companion(main: &Path, companion: &Path, out: &Path, overwrite: bool) -> Result<Posterior> {
    crate::check_output(out, overwrite)?;
    let mut m = Posterior::load(main)?;
    let c = Posterior::load(companion)?;
    check_companion(main, &m.manifest, m.pixel_scale_arcsec, &c)?;
    if m.survey.is_none() || c.survey.is_none() {
        return Err(Error::file(
            if m.survey.is_none() { main } else { companion },
            "no survey.toml: the networks' domains decide which samples a pixel",
        ));
    }
    // everything is read before anything is written (out may be main)
    let mut files = read_model_files(main, None)?;
    files.extend(read_model_files(companion, None)?.into_iter().map(|(name, bytes)| (format!("{COMPANION_DIR}/{name}"), bytes)));
    m.manifest.companion = Some(COMPANION_DIR.into());
    write_model_copy(out, overwrite, &files, &m.manifest)?;
    Posterior::load(out)
}

/// Checks that a companion network answers the same question as the model it completes.
fn check_companion(dir: &Path, m: &ModelManifest, pixel_scale_arcsec: Option<f64>, c: &Posterior) -> Result<()> {
    let cm = &c.manifest;
    fn json<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap_or_default()
    }
    let prior = |d: &Path| std::fs::read_to_string(d.join("prior.toml")).ok();
    let differs = [
        ("parameters", json(&m.parameters) != json(&cm.parameters)),
        ("bands", m.bands != cm.bands),
        ("input encoding", json(&m.encoding) != json(&cm.encoding)),
        ("SFH family", m.sfh != cm.sfh),
        ("trained redshift range", m.max_redshift_trained != cm.max_redshift_trained),
        ("forward model", json(&m.forward_model) != json(&cm.forward_model)),
        ("prior (prior.toml)", pixel_scale_arcsec != c.pixel_scale_arcsec || prior(dir) != prior(&c.dir)),
        ("companion (a companion cannot have one)", cm.companion.is_some()),
    ];
    match differs.iter().find(|(_, d)| *d) {
        Some((what, _)) => Err(Error::file(&c.dir, format!("the companion network of {} differs from it in its {what}", dir.display()))),
        None => Ok(()),
    }
}

/// The identity products record of a model's weights: the SHA-256 of `weights.safetensors`, or
/// with a companion network, of both weight files one after the other.
pub fn weights_identity(weights: &[u8], companion: Option<&[u8]>) -> String {
    match companion {
        None => sbipix_io::data::sha256_hex(weights),
        Some(c) => sbipix_io::data::sha256_hex(&[weights, c].concat()),
    }
}

/// The files of a built-in model folder `models/<name>` (and of its companion network's folder
/// `models/<name>/<sub>`, if given), embedded in the binary.
macro_rules! builtin_files {
    ($name:literal $(, $sub:literal)?) => {
        &[
            ("model.json", include_bytes!(concat!("../../../../models/", $name, "/model.json")).as_slice()),
            ("flow.json", include_bytes!(concat!("../../../../models/", $name, "/flow.json")).as_slice()),
            ("weights.safetensors", include_bytes!(concat!("../../../../models/", $name, "/weights.safetensors")).as_slice()),
            ("prior.toml", include_bytes!(concat!("../../../../models/", $name, "/prior.toml")).as_slice()),
            ("survey.toml", include_bytes!(concat!("../../../../models/", $name, "/survey.toml")).as_slice()),
            ("training_report.json", include_bytes!(concat!("../../../../models/", $name, "/training_report.json")).as_slice()),
            $(
                (concat!($sub, "/model.json"), include_bytes!(concat!("../../../../models/", $name, "/", $sub, "/model.json")).as_slice()),
                (concat!($sub, "/flow.json"), include_bytes!(concat!("../../../../models/", $name, "/", $sub, "/flow.json")).as_slice()),
                (
                    concat!($sub, "/weights.safetensors"),
                    include_bytes!(concat!("../../../../models/", $name, "/", $sub, "/weights.safetensors")).as_slice(),
                ),
                (concat!($sub, "/prior.toml"), include_bytes!(concat!("../../../../models/", $name, "/", $sub, "/prior.toml")).as_slice()),
                (concat!($sub, "/survey.toml"), include_bytes!(concat!("../../../../models/", $name, "/", $sub, "/survey.toml")).as_slice()),
                (
                    concat!($sub, "/training_report.json"),
                    include_bytes!(concat!("../../../../models/", $name, "/", $sub, "/training_report.json")).as_slice(),
                ),
            )?
        ]
    };
}

/// The files of a built-in model: (path inside the folder, contents).
pub type ModelFiles = &'static [(&'static str, &'static [u8])];

/// The files of the built-in default model (`models/default`).
pub(crate) const DEFAULT_MODEL_FILES: ModelFiles = builtin_files!("default", "sparse");

/// The built-in models by name: `default` (trained across depths and band sets on the physical
/// per-kpc² prior, docs/validation.md) and `sbipix2025`, the default until December 2026
/// (SBIPIX's per-pixel prior, noise learnt from one JADES cube), kept so that every number
/// measured with it stays reproducible and for data at that cube's depth.
pub const BUILTIN_MODELS: [(&str, ModelFiles); 2] = [("default", DEFAULT_MODEL_FILES), ("sbipix2025", builtin_files!("sbipix2025"))];

/// The built-in default model folder: `$SBIPIX_DEFAULT_MODEL` if set, else the model embedded in
/// the binary, written once into the data folder (`$SBIPIX_DATA/models/default-<hash>`).
pub fn default_model_dir() -> Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("SBIPIX_DEFAULT_MODEL") {
        return Ok(p.into());
    }
    builtin_model_dir("default")?.ok_or_else(|| Error::invalid("model", "default", "no built-in model of that name"))
}

/// The folder of the built-in model `name` ([`BUILTIN_MODELS`]), written once into the data folder
/// (`$SBIPIX_DATA/models/<name>-<hash>`); `None` if there is no built-in model of that name.
pub fn builtin_model_dir(name: &str) -> Result<Option<std::path::PathBuf>> {
    let Some((_, files)) = BUILTIN_MODELS.iter().find(|(n, _)| *n == name) else {
        return Ok(None);
    };
    let store = sbipix_io::DataStore::from_env()?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, bytes) in files.iter() {
        for b in bytes.iter() {
            h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    let root = store.dir().parent().map(|p| p.to_path_buf()).unwrap_or_else(|| store.dir());
    let dir = root.join("models").join(format!("{name}-{h:016x}"));
    if dir.join("model.json").is_file() {
        return Ok(Some(dir));
    }
    let parent = root.join("models");
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, e))?;
    let tmp = tempfile::Builder::new().prefix(&format!(".{name}-")).tempdir_in(&parent).map_err(|e| Error::write(&parent, e))?;
    for (file, bytes) in files.iter() {
        let path = tmp.path().join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| Error::write(&path, e))?;
    }
    let kept = tmp.keep();
    if std::fs::rename(&kept, &dir).is_err() {
        // another process won the race
        let _ = std::fs::remove_dir_all(&kept);
    }
    Ok(Some(dir))
}
