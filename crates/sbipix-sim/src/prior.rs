//! Priors over the physical parameters of a pixel, read from TOML.
//!
//! Two SFH families, each with SBIPIX's defaults (`data/prior_*.toml`, built in): `delayed_tau`
//! (formed mass, τ, onset as a fraction of the age of the universe — or, naming
//! `log_age_fraction` instead, the age uniform in log) and `dense_basis` (formed
//! mass, SFR at observation, t_x with a Dirichlet prior). A user file overrides any of the
//! defaults; unknown keys, impossible ranges and values outside the model's grids are errors
//! naming the key.

use crate::error::{Result, SimError};
use crate::theta::{Parameter, delayed_tau_age_gyr};
use rand::RngExt;
use rand_distr::{Distribution, Gamma};
use sbipix_sps::{Cosmology, DenseBasisTuple, GalaxyParams, SfhShape, SfhSpec};
use serde::{Deserialize, Serialize};

/// The built-in delayed-τ prior file.
pub const DELAYED_TAU_TOML: &str = include_str!("../data/prior_delayed_tau.toml");
/// The built-in physical delayed-τ prior file (mass per kpc²).
pub const DELAYED_TAU_PHYSICAL_TOML: &str = include_str!("../data/prior_delayed_tau_physical.toml");
/// The built-in dense_basis prior file.
pub const DENSE_BASIS_TOML: &str = include_str!("../data/prior_dense_basis.toml");

/// Prior of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamPrior {
    Uniform { min: f64, max: f64 },
    Fixed { value: f64 },
}

impl ParamPrior {
    pub fn is_fixed(&self) -> bool {
        matches!(self, ParamPrior::Fixed { .. })
    }
    fn range(&self) -> (f64, f64) {
        match *self {
            ParamPrior::Uniform { min, max } => (min, max),
            ParamPrior::Fixed { value } => (value, value),
        }
    }
    fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match *self {
            ParamPrior::Uniform { min, max } => min + (max - min) * rng.random::<f64>(),
            ParamPrior::Fixed { value } => value,
        }
    }
}

/// The SFH family of a prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "sfh")]
pub enum SfhPrior {
    DelayedTau,
    DenseBasis { n_tx: usize, dirichlet_alpha: f64 },
}

/// A prior: the SFH family and one [`ParamPrior`] per parameter, in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    pub sfh: SfhPrior,
    /// (name, prior), in the family's parameter order.
    pub params: Vec<(String, ParamPrior)>,
    /// Where the prior came from (file name or "built-in …").
    pub source: String,
    /// A physical per-pixel prior: the mass formed is given per kpc² (`log_sigma_mass_formed`)
    /// and a pixel of this size (arcsec) sets the mass at each redshift. None: SBIPIX's mass per
    /// pixel (`log_mass_formed`) whatever the redshift.
    pub pixel_scale_arcsec: Option<f64>,
}

/// The name of the surface-density mass parameter of a physical prior (log10 M☉ formed per kpc²).
pub const LOG_SIGMA_MASS_FORMED: &str = "log_sigma_mass_formed";
/// The lowest redshift a surface-density prior may reach (the area of a pixel vanishes at z = 0).
pub const MIN_REDSHIFT_SURFACE_DENSITY: f64 = 0.005;

/// The name of the log-age coordinate of a delayed-τ prior: log10 of the time since the onset as a
/// fraction of the age of the universe, an alternative to `onset_fraction` (uniform in age).
pub const LOG_AGE_FRACTION: &str = "log_age_fraction";

/// Parameters a prior file may give in place of one of its family's own: (the alternative, the
/// parameter it replaces, what the alternative means, what the replaced one means). One rule for
/// both: only where the family has the replaced parameter, never both in one file, and the
/// alternative takes the replaced one's place in the parameter list.
const ALTERNATIVES: [(&str, &str, &str, &str); 2] = [
    (LOG_SIGMA_MASS_FORMED, "log_mass_formed", "per kpc²", "per pixel"),
    (LOG_AGE_FRACTION, "onset_fraction", "uniform in log age", "uniform in age"),
];

/// log10 of the area (kpc²) of a square pixel of `scale_arcsec` at redshift `z`.
pub fn log_pixel_area_kpc2(z: f64, scale_arcsec: f64, cosmology: &Cosmology) -> f64 {
    2.0 * (scale_arcsec * cosmology.kpc_per_arcsec(z)).log10()
}

/// Bounds the model itself imposes, checked against the prior ranges.
#[derive(Debug, Clone, Copy)]
pub struct ModelLimits {
    pub max_redshift: f64,
    pub logzsol: (f64, f64),
    pub logu: (f64, f64),
}

/// One draw: the model inputs and the values of the SFH-shape parameters.
#[derive(Debug, Clone)]
pub struct Draw {
    pub params: GalaxyParams,
    /// Values of [`Prior::shape_names`], in order.
    pub shape: Vec<f64>,
}

fn keys_of(sfh: &SfhPrior) -> &'static [&'static str] {
    match sfh {
        SfhPrior::DelayedTau => &["redshift", "log_mass_formed", "log_tau_gyr", "onset_fraction", "logzsol", "av_mag", "logu", "eta"],
        SfhPrior::DenseBasis { .. } => &["redshift", "log_mass_formed", "log_sfr_inst", "logzsol", "av_mag", "logu", "eta"],
    }
}

impl Prior {
    /// SBIPIX's delayed-τ prior.
    pub fn sbipix_delayed_tau() -> Self {
        Self::from_toml_str(DELAYED_TAU_TOML, "built-in delayed_tau prior").expect("built-in prior parses")
    }

    /// sbipix's physical delayed-τ prior: mass formed per kpc² on 0.03″ pixels
    /// (`data/prior_delayed_tau_physical.toml`).
    pub fn physical_delayed_tau() -> Self {
        Self::from_toml_str(DELAYED_TAU_PHYSICAL_TOML, "built-in physical delayed_tau prior").expect("built-in prior parses")
    }

    /// SBIPIX's dense_basis prior.
    pub fn sbipix_dense_basis() -> Self {
        Self::from_toml_str(DENSE_BASIS_TOML, "built-in dense_basis prior").expect("built-in prior parses")
    }

    /// Reads a prior file: `sfh = "delayed_tau" | "dense_basis"`, a `[parameters]` table, and for
    /// dense_basis an optional `[dense_basis]` table. Keys not given take SBIPIX's defaults.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self> {
        let err = |key: &str, reason: String| SimError::Prior { file: file.into(), key: key.into(), reason };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| err("(syntax)", e.to_string()))?;
        for k in table.keys() {
            if !["sfh", "pixel_scale_arcsec", "parameters", "dense_basis"].contains(&k.as_str()) {
                return Err(err(k, "unknown key (expected `sfh`, `pixel_scale_arcsec`, `[parameters]`, `[dense_basis]`)".into()));
            }
        }
        let pixel_scale_arcsec = match table.get("pixel_scale_arcsec") {
            None => None,
            Some(v) => match as_f64(v) {
                Some(x) if x.is_finite() && x > 0.0 && x <= 10.0 => Some(x),
                _ => return Err(err("pixel_scale_arcsec", format!("{v} must be a number of arcsec in (0, 10]"))),
            },
        };
        let family = match table.get("sfh") {
            None => "delayed_tau",
            Some(toml::Value::String(s)) => s.as_str(),
            Some(v) => return Err(err("sfh", format!("expected a string, found {v}"))),
        };
        let defaults_text = match family {
            "delayed_tau" => DELAYED_TAU_TOML,
            "dense_basis" => DENSE_BASIS_TOML,
            other => return Err(err("sfh", format!("unknown SFH family `{other}` (delayed_tau or dense_basis)"))),
        };
        let defaults: toml::Table = defaults_text.parse().expect("built-in prior parses");
        let mut sfh = match family {
            "delayed_tau" => SfhPrior::DelayedTau,
            _ => SfhPrior::DenseBasis { n_tx: 3, dirichlet_alpha: 1.0 },
        };
        if let Some(db) = table.get("dense_basis") {
            let SfhPrior::DenseBasis { n_tx, dirichlet_alpha } = &mut sfh else {
                return Err(err("dense_basis", "only allowed with sfh = \"dense_basis\"".into()));
            };
            let db = db.as_table().ok_or_else(|| err("dense_basis", "expected a table".into()))?;
            for (k, v) in db {
                match k.as_str() {
                    "n_tx" => {
                        let n = v.as_integer().ok_or_else(|| err("dense_basis.n_tx", format!("expected an integer, found {v}")))?;
                        if !(1..=10).contains(&n) {
                            return Err(err("dense_basis.n_tx", format!("{n} is outside 1…10")));
                        }
                        *n_tx = n as usize;
                    }
                    "dirichlet_alpha" => {
                        let a = as_f64(v).ok_or_else(|| err("dense_basis.dirichlet_alpha", format!("expected a number, found {v}")))?;
                        if !(a.is_finite() && a > 0.0) {
                            return Err(err("dense_basis.dirichlet_alpha", format!("{a} must be > 0")));
                        }
                        *dirichlet_alpha = a;
                    }
                    _ => return Err(err(&format!("dense_basis.{k}"), "unknown key (n_tx, dirichlet_alpha)".into())),
                }
            }
        }
        let keys = keys_of(&sfh);
        let given = match table.get("parameters") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t.clone(),
            Some(v) => return Err(err("parameters", format!("expected a table, found {v}"))),
        };
        let surface = given.contains_key(LOG_SIGMA_MASS_FORMED);
        match (surface, pixel_scale_arcsec.is_some()) {
            (true, false) => {
                return Err(err(
                    &format!("parameters.{LOG_SIGMA_MASS_FORMED}"),
                    "a mass per kpc² needs the pixel size it applies to: add `pixel_scale_arcsec = …` (e.g. 0.03)".into(),
                ));
            }
            (false, true) => {
                return Err(err("pixel_scale_arcsec", format!("only used with `{LOG_SIGMA_MASS_FORMED}` in [parameters]")));
            }
            _ => {}
        }
        for &(alt, own, alt_means, own_means) in &ALTERNATIVES {
            if !given.contains_key(alt) {
                continue;
            }
            if !keys.contains(&own) {
                return Err(err(&format!("parameters.{alt}"), format!("replaces {own}, which sfh = \"{family}\" does not have")));
            }
            if given.contains_key(own) {
                return Err(err(&format!("parameters.{own}"), format!("give either {own} ({own_means}) or {alt} ({alt_means}), not both")));
            }
        }
        for k in given.keys() {
            if !keys.contains(&k.as_str()) && !ALTERNATIVES.iter().any(|a| a.0 == k) {
                return Err(err(
                    &format!("parameters.{k}"),
                    format!("unknown parameter for sfh = \"{family}\"; known: {}", keys.join(", ")),
                ));
            }
        }
        let def_params = defaults["parameters"].as_table().expect("defaults have parameters");
        let mut params = Vec::new();
        for k in keys {
            // the alternative the file gives in its place, if any
            let k = ALTERNATIVES.iter().find(|a| a.1 == *k && given.contains_key(a.0)).map_or(*k, |a| a.0);
            let key = format!("parameters.{k}");
            let v = given.get(k).unwrap_or_else(|| &def_params[k]);
            params.push((k.to_string(), parse_param(v).map_err(|r| err(&key, r))?));
        }
        let prior = Prior { sfh, params, source: file.into(), pixel_scale_arcsec };
        prior.check_ranges()?;
        Ok(prior)
    }

    fn err(&self, key: &str, reason: String) -> SimError {
        SimError::Prior { file: self.source.clone(), key: format!("parameters.{key}"), reason }
    }

    /// The same prior with parameter `name` given prior `p` instead (ranges checked again); an
    /// error if the family has no such parameter.
    pub fn with_parameter(&self, name: &str, p: ParamPrior) -> Result<Prior> {
        let mut out = self.clone();
        match out.params.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = p,
            None => return Err(self.err(name, "this prior family has no such parameter".into())),
        }
        out.check_ranges()?;
        Ok(out)
    }

    /// The prior of one pixel at redshift `z` with SBIPIX's parameters: for a physical prior the
    /// mass per kpc² becomes `log_mass_formed` of a pixel of the prior's size at `z`, the
    /// redshift is fixed at `z`; other priors only get the redshift fixed. What the likelihood of
    /// a pixel at a known redshift needs.
    pub fn at_redshift(&self, z: f64, cosmology: &Cosmology) -> Prior {
        let mut out = self.clone();
        if let Some(scale) = self.pixel_scale_arcsec {
            let da = log_pixel_area_kpc2(z, scale, cosmology);
            for (name, p) in out.params.iter_mut() {
                if name == LOG_SIGMA_MASS_FORMED {
                    *name = "log_mass_formed".into();
                    *p = match *p {
                        ParamPrior::Uniform { min, max } => ParamPrior::Uniform { min: min + da, max: max + da },
                        ParamPrior::Fixed { value } => ParamPrior::Fixed { value: value + da },
                    };
                }
            }
            out.pixel_scale_arcsec = None;
            out.source = format!("{} at z = {z}", self.source);
        }
        if let Some(slot) = out.params.iter_mut().find(|(n, _)| n == "redshift") {
            slot.1 = ParamPrior::Fixed { value: z };
        }
        out
    }

    /// The prior of parameter `name`.
    pub fn get(&self, name: &str) -> Option<ParamPrior> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }

    fn check_ranges(&self) -> Result<()> {
        // physical bounds of each parameter (before the model's grids are known)
        let bounds: &[(&str, f64, f64)] = &[
            ("redshift", 0.0, 50.0),
            ("log_mass_formed", -10.0, 20.0),
            (LOG_SIGMA_MASS_FORMED, -5.0, 20.0),
            ("log_tau_gyr", -4.0, 3.0),
            ("onset_fraction", 0.0, 1.0),
            (LOG_AGE_FRACTION, -6.0, 0.0),
            ("log_sfr_inst", -20.0, 10.0),
            ("logzsol", -5.0, 2.0),
            ("av_mag", 0.0, 20.0),
            ("logu", -10.0, 2.0),
            ("eta", 1.0, 10.0),
        ];
        for (name, p) in &self.params {
            let (lo, hi) = p.range();
            if let ParamPrior::Uniform { min, max } = p
                && min >= max
            {
                return Err(self.err(name, format!("min = {min} must be < max = {max} (use {{ value = … }} to fix it)")));
            }
            if let Some((_, blo, bhi)) = bounds.iter().find(|b| b.0 == name)
                && (lo < *blo || hi > *bhi)
            {
                return Err(self.err(name, format!("range [{lo}, {hi}] is outside the allowed [{blo}, {bhi}]")));
            }
        }
        if self.pixel_scale_arcsec.is_some() && self.get("redshift").is_some_and(|p| p.range().0 < MIN_REDSHIFT_SURFACE_DENSITY) {
            return Err(self
                .err("redshift", format!("a mass per kpc² needs z ≥ {MIN_REDSHIFT_SURFACE_DENSITY} (a pixel's area vanishes at z = 0)")));
        }
        if self.get("onset_fraction").is_some_and(|p| p.range().0 >= 1.0) {
            return Err(self.err("onset_fraction", "star formation must start before observation (onset < 1)".into()));
        }
        Ok(())
    }

    /// Checks the ranges against the forward model's grids.
    pub fn check_model(&self, limits: ModelLimits) -> Result<()> {
        let check = |name: &str, lo: f64, hi: f64| -> Result<()> {
            if let Some(p) = self.get(name) {
                let (a, b) = p.range();
                if a < lo - 1e-9 || b > hi + 1e-9 {
                    return Err(self.err(name, format!("range [{a}, {b}] is outside the model's [{lo}, {hi}]")));
                }
            }
            Ok(())
        };
        check("redshift", 0.0, limits.max_redshift)?;
        check("logzsol", limits.logzsol.0, limits.logzsol.1)?;
        check("logu", limits.logu.0, limits.logu.1)
    }

    /// Names of the SFH-shape parameters carried in θ besides the physical ones
    /// ([`Prior::shape_parameters`]).
    pub fn shape_names(&self) -> Vec<String> {
        self.shape_parameters().iter().map(Parameter::name).collect()
    }

    /// Names of the parameters θ a network infers, in order ([`Prior::theta_layout`]).
    pub fn inferred_names(&self) -> Vec<String> {
        self.theta_layout().iter().map(Parameter::name).collect()
    }

    /// Draws one set of parameters. `cosmology` gives the age of the universe at the drawn z.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R, cosmology: &Cosmology) -> Draw {
        let g = |name: &str| self.get(name).expect("every family parameter is present");
        // Draw in the file's parameter order so a draw depends only on the prior and the RNG.
        let z = g("redshift").sample(rng);
        let log_mass = match self.pixel_scale_arcsec {
            None => g("log_mass_formed").sample(rng),
            Some(scale) => g(LOG_SIGMA_MASS_FORMED).sample(rng) + log_pixel_area_kpc2(z, scale, cosmology),
        };
        let t_univ = cosmology.age_gyr(z);
        let (sfh, shape) = match self.sfh {
            SfhPrior::DelayedTau => {
                let log_tau = g("log_tau_gyr").sample(rng);
                let coordinate = self.age_coordinate();
                let age = g(&coordinate.name()).sample(rng);
                let age_gyr = delayed_tau_age_gyr(coordinate, age, t_univ);
                (
                    SfhSpec::Parametric {
                        shape: SfhShape::DelayedTau { age_gyr, tau_gyr: 10f64.powf(log_tau) },
                        log_mass_formed: log_mass,
                    },
                    vec![log_tau, age],
                )
            }
            SfhPrior::DenseBasis { n_tx, dirichlet_alpha } => {
                let log_sfr = g("log_sfr_inst").sample(rng);
                let gamma = Gamma::new(dirichlet_alpha, 1.0).expect("alpha > 0 checked");
                let w: Vec<f64> = (0..=n_tx).map(|_| gamma.sample(rng)).collect();
                let total: f64 = w.iter().sum();
                let mut acc = 0.0;
                let tx: Vec<f64> = w[..n_tx]
                    .iter()
                    .map(|x| {
                        acc += x / total;
                        acc.clamp(1e-6, 1.0 - 1e-6)
                    })
                    .collect();
                let mut shape = vec![log_sfr];
                shape.extend(&tx);
                (SfhSpec::DenseBasis(DenseBasisTuple { log_mass_formed: log_mass, log_sfr, tx }), shape)
            }
        };
        let params = GalaxyParams {
            redshift: z,
            sfh,
            logzsol: g("logzsol").sample(rng),
            av_mag: g("av_mag").sample(rng),
            logu: g("logu").sample(rng),
            eta: g("eta").sample(rng),
        };
        Draw { params, shape }
    }

    /// The resolved prior as TOML (written beside every output).
    pub fn to_toml(&self) -> String {
        let mut s = format!("# resolved prior (source: {})\n", self.source);
        match self.sfh {
            SfhPrior::DelayedTau => s.push_str("sfh = \"delayed_tau\"\n"),
            SfhPrior::DenseBasis { .. } => s.push_str("sfh = \"dense_basis\"\n"),
        }
        if let Some(scale) = self.pixel_scale_arcsec {
            s.push_str(&format!("pixel_scale_arcsec = {scale:?}\n"));
        }
        s.push_str("\n[parameters]\n");
        for (n, p) in &self.params {
            match p {
                ParamPrior::Uniform { min, max } => s.push_str(&format!("{n} = {{ min = {min:?}, max = {max:?} }}\n")),
                ParamPrior::Fixed { value } => s.push_str(&format!("{n} = {{ value = {value:?} }}\n")),
            }
        }
        if let SfhPrior::DenseBasis { n_tx, dirichlet_alpha } = self.sfh {
            s.push_str(&format!("\n[dense_basis]\nn_tx = {n_tx}\ndirichlet_alpha = {dirichlet_alpha:?}\n"));
        }
        s
    }
}

fn as_f64(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

fn parse_param(v: &toml::Value) -> std::result::Result<ParamPrior, String> {
    let t = v.as_table().ok_or_else(|| format!("expected {{ min = …, max = … }} or {{ value = … }}, found {v}"))?;
    let num = |k: &str| -> std::result::Result<Option<f64>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(x) => {
                let f = as_f64(x).ok_or_else(|| format!("`{k}` must be a number, found {x}"))?;
                if !f.is_finite() {
                    return Err(format!("`{k}` = {f} is not finite"));
                }
                Ok(Some(f))
            }
        }
    };
    for k in t.keys() {
        if !["min", "max", "value"].contains(&k.as_str()) {
            return Err(format!("unknown key `{k}` (min, max, value)"));
        }
    }
    match (num("min")?, num("max")?, num("value")?) {
        (Some(min), Some(max), None) => Ok(ParamPrior::Uniform { min, max }),
        (None, None, Some(value)) => Ok(ParamPrior::Fixed { value }),
        _ => Err("give either both `min` and `max`, or `value`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_parameter_replaces_one_prior_and_checks_it() {
        let p = Prior::sbipix_delayed_tau();
        assert!(p.get("logu").unwrap().is_fixed());
        let q = p.with_parameter("logu", ParamPrior::Uniform { min: -4.0, max: -1.0 }).unwrap();
        assert_eq!(q.get("logu"), Some(ParamPrior::Uniform { min: -4.0, max: -1.0 }));
        assert_eq!(q.inferred_names().len(), p.inferred_names().len() + 1);
        assert!(q.inferred_names().iter().any(|n| n == "logu"));
        assert!(p.with_parameter("logu", ParamPrior::Uniform { min: -1.0, max: -4.0 }).is_err());
        assert!(p.with_parameter("log_sfr_inst", ParamPrior::Fixed { value: 0.0 }).is_err());
    }
    use rand::SeedableRng;

    #[test]
    fn defaults_are_sbipix() {
        let p = Prior::sbipix_delayed_tau();
        assert_eq!(p.get("log_mass_formed"), Some(ParamPrior::Uniform { min: 4.0, max: 12.0 }));
        assert_eq!(p.get("logu"), Some(ParamPrior::Fixed { value: -2.0 }));
        assert_eq!(
            p.inferred_names(),
            [
                "log_mstar",
                "log_mass_formed",
                "log_sfr_100myr",
                "log_sfr_10myr",
                "mass_weighted_age_gyr",
                "logzsol",
                "av_mag",
                "log_tau_gyr",
                "onset_fraction"
            ]
        );
        let d = Prior::sbipix_dense_basis();
        assert_eq!(d.shape_names(), ["log_sfr_inst", "t25_frac", "t50_frac", "t75_frac"]);
        // round trip through the resolved TOML
        assert_eq!(Prior::from_toml_str(&p.to_toml(), "x").unwrap().params, p.params);
        assert_eq!(Prior::from_toml_str(&d.to_toml(), "x").unwrap().sfh, d.sfh);
    }

    #[test]
    fn overrides_and_errors_name_the_key() {
        let p =
            Prior::from_toml_str("[parameters]\nav_mag = { min = 0.0, max = 1.0 }\nlogu = { min = -3.0, max = -1.0 }\n", "p.toml").unwrap();
        assert_eq!(p.get("av_mag"), Some(ParamPrior::Uniform { min: 0.0, max: 1.0 }));
        assert!(p.inferred_names().contains(&"logu".to_string()));
        let bad = [
            ("[parameters]\nav_mag = { min = 2.0, max = 1.0 }\n", "parameters.av_mag"),
            ("[parameters]\nonset_fraction = { min = 0.0, max = 1.5 }\n", "parameters.onset_fraction"),
            ("[parameters]\ncolour = { value = 1.0 }\n", "parameters.colour"),
            ("[parameters]\nav_mag = { min = 0.0 }\n", "parameters.av_mag"),
            ("[parameters]\nav_mag = { min = \"a\", max = 1 }\n", "parameters.av_mag"),
            ("sfh = \"lognormal\"\n", "sfh"),
            ("[dense_basis]\nn_tx = 3\n", "dense_basis"),
            ("sfh = \"dense_basis\"\n[dense_basis]\nn_tx = 0\n", "dense_basis.n_tx"),
            ("[parameters\n", "(syntax)"),
            ("extra = 1\n", "extra"),
        ];
        for (text, key) in bad {
            let e = Prior::from_toml_str(text, "p.toml").unwrap_err().to_string();
            assert!(e.contains("p.toml") && e.contains(&format!("`{key}`")), "{text}: {e}");
        }
        let limits = ModelLimits { max_redshift: 5.0, logzsol: (-2.3, 0.7), logu: (-4.0, 0.0) };
        let e = Prior::sbipix_delayed_tau().check_model(limits).unwrap_err().to_string();
        assert!(e.contains("parameters.redshift"), "{e}");
    }

    #[test]
    fn a_log_age_prior_draws_ages_uniform_in_log_of_the_age_of_the_universe() {
        let text = "[parameters]\nlog_age_fraction = { min = -3.0, max = 0.0 }\n";
        let p = Prior::from_toml_str(text, "p.toml").unwrap();
        assert_eq!(p.age_coordinate(), Parameter::LogAgeFraction);
        assert_eq!(p.get("onset_fraction"), None);
        assert_eq!(p.shape_names(), ["log_tau_gyr", "log_age_fraction"]);
        assert_eq!(Prior::from_toml_str(&p.to_toml(), "x").unwrap().params, p.params);
        let c = Cosmology::default();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let n = 20_000;
        // the age the history is given is 10^x of the age of the universe at the drawn z, and x is
        // uniform over [−3, 0]: P(x < −2) = 1/3, P(x < −1) = 2/3 (binomial σ ≈ 0.0033)
        let mut below = [0usize; 2];
        for _ in 0..n {
            let d = p.sample(&mut rng, &c);
            let SfhSpec::Parametric { shape: SfhShape::DelayedTau { age_gyr, .. }, .. } = d.params.sfh else { unreachable!() };
            let x = (age_gyr / c.age_gyr(d.params.redshift)).log10();
            assert!((x - d.shape[1]).abs() < 1e-9 && (-3.0..=0.0).contains(&x));
            below[0] += usize::from(x < -2.0);
            below[1] += usize::from(x < -1.0);
        }
        assert!((below[0] as f64 / n as f64 - 1.0 / 3.0).abs() < 0.015, "{below:?}");
        assert!((below[1] as f64 / n as f64 - 2.0 / 3.0).abs() < 0.015, "{below:?}");
        let bad = [
            ("[parameters]\nlog_age_fraction = { min = -3.0, max = 0.5 }\n", "parameters.log_age_fraction"),
            (
                "[parameters]\nlog_age_fraction = { min = -3.0, max = 0.0 }\nonset_fraction = { min = 0.0, max = 1.0 }\n",
                "parameters.onset_fraction",
            ),
            ("sfh = \"dense_basis\"\n[parameters]\nlog_age_fraction = { min = -3.0, max = 0.0 }\n", "parameters.log_age_fraction"),
        ];
        for (text, key) in bad {
            let e = Prior::from_toml_str(text, "p.toml").unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{text}: {e}");
        }
    }

    #[test]
    fn a_physical_prior_turns_mass_per_kpc2_into_mass_per_pixel() {
        let p = Prior::physical_delayed_tau();
        assert_eq!(p.pixel_scale_arcsec, Some(0.03));
        assert_eq!(p.get("log_mass_formed"), None, "the per-pixel mass is not given directly");
        // SBIPIX's parameters, with the age uniform in log (log_age_fraction) instead of the onset
        let mut names = Prior::sbipix_delayed_tau().inferred_names();
        *names.last_mut().unwrap() = LOG_AGE_FRACTION.into();
        assert_eq!(p.inferred_names(), names);
        assert_eq!(p.get(LOG_AGE_FRACTION), Some(ParamPrior::Uniform { min: -1.0, max: 0.0 }));
        assert_eq!(Prior::from_toml_str(&p.to_toml(), "x").unwrap(), Prior { source: "x".into(), ..p.clone() });
        let c = Cosmology::default();
        // the area of a 0.03″ pixel at z = 3: (0.03″ × kpc per arcsec)²
        let kpc = c.kpc_per_arcsec(3.0);
        assert!((log_pixel_area_kpc2(3.0, 0.03, &c) - 2.0 * (0.03 * kpc).log10()).abs() < 1e-12);
        let at3 = p.at_redshift(3.0, &c);
        let da = log_pixel_area_kpc2(3.0, 0.03, &c);
        assert_eq!(at3.get("log_mass_formed"), Some(ParamPrior::Uniform { min: 5.0 + da, max: 11.5 + da }));
        assert_eq!(at3.get("redshift"), Some(ParamPrior::Fixed { value: 3.0 }));
        assert_eq!(at3.pixel_scale_arcsec, None);
        // draws: log M formed − log area is uniform over [5, 11.5] at every redshift
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let mut sigma: Vec<f64> = (0..4000)
            .map(|_| {
                let d = p.sample(&mut rng, &c);
                let SfhSpec::Parametric { log_mass_formed, .. } = d.params.sfh else { unreachable!() };
                log_mass_formed - log_pixel_area_kpc2(d.params.redshift, 0.03, &c)
            })
            .collect();
        sigma.sort_by(f64::total_cmp);
        for q in [0.1, 0.5, 0.9] {
            let v = sigma[(q * sigma.len() as f64) as usize];
            assert!((v - (5.0 + 6.5 * q)).abs() < 0.15, "{q}: {v}");
        }
        // errors name the key
        let bad = [
            ("[parameters]\nlog_sigma_mass_formed = { min = 5.0, max = 11.0 }\n", "parameters.log_sigma_mass_formed"),
            ("pixel_scale_arcsec = 0.03\n", "pixel_scale_arcsec"),
            ("pixel_scale_arcsec = -1\n[parameters]\nlog_sigma_mass_formed = { min = 5.0, max = 11.0 }\n", "pixel_scale_arcsec"),
            (
                "pixel_scale_arcsec = 0.03\n[parameters]\nlog_sigma_mass_formed = { min = 5.0, max = 11.0 }\nlog_mass_formed = { min = 4.0, max = 12.0 }\n",
                "parameters.log_mass_formed",
            ),
            ("pixel_scale_arcsec = 0.03\n[parameters]\nlog_sigma_mass_formed = { min = 5.0, max = 11.0 }\n", "parameters.redshift"),
        ];
        for (text, key) in bad {
            let e = Prior::from_toml_str(text, "p.toml").unwrap_err().to_string();
            assert!(e.contains("p.toml") && e.contains(&format!("`{key}`")), "{text}: {e}");
        }
    }

    #[test]
    fn draws_follow_the_prior() {
        let p = Prior::sbipix_dense_basis();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        let c = Cosmology::default();
        for _ in 0..200 {
            let d = p.sample(&mut rng, &c);
            assert!((0.0..=7.5).contains(&d.params.redshift));
            let tx = &d.shape[1..];
            assert!(tx.windows(2).all(|w| w[1] >= w[0]) && tx.iter().all(|t| *t > 0.0 && *t < 1.0));
        }
    }
}
