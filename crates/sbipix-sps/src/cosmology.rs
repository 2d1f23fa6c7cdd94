//! Flat ΛCDM cosmology (matter + cosmological constant, no radiation), the model used by
//! bagpipes and SBIPIX (`FlatLambdaCDM(H0=70, Om0=0.3)` in astropy, whose default has no
//! radiation term). A small hand-written module because the Rust cosmology crates are
//! immature; the closed form for the age and Gauss–Legendre quadrature for distances are
//! checked against astropy in the tests.

use crate::constants::{C_KM_PER_S, GYR_YR, MPC_CM, YEAR_S};
use crate::error::SpsError;
use serde::{Deserialize, Serialize};

/// One Mpc in km.
const MPC_KM: f64 = MPC_CM / 1e5;

/// A flat ΛCDM cosmology.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cosmology {
    /// Hubble constant in km s⁻¹ Mpc⁻¹.
    pub h0: f64,
    /// Matter density today, Ω_m (Ω_Λ = 1 − Ω_m).
    pub omega_m: f64,
}

impl Default for Cosmology {
    /// H0 = 70 km/s/Mpc, Ω_m = 0.3: the cosmology of SBIPIX and bagpipes.
    fn default() -> Self {
        Self { h0: 70.0, omega_m: 0.3 }
    }
}

/// 16-point Gauss–Legendre nodes on [-1, 1] (positive half) and weights.
const GL16_X: [f64; 8] = [
    0.095_012_509_837_637_44,
    0.281_603_550_779_258_9,
    0.458_016_777_657_227_4,
    0.617_876_244_402_643_8,
    0.755_404_408_355_003,
    0.865_631_202_387_831_8,
    0.944_575_023_073_232_6,
    0.989_400_934_991_649_9,
];
const GL16_W: [f64; 8] = [
    0.189_450_610_455_068_5,
    0.182_603_415_044_923_6,
    0.169_156_519_395_002_5,
    0.149_595_988_816_576_7,
    0.124_628_971_255_533_9,
    0.095_158_511_682_492_78,
    0.062_253_523_938_647_89,
    0.027_152_459_411_754_09,
];

impl Cosmology {
    /// A cosmology after checking that H0 > 0 and 0 < Ω_m ≤ 1.
    pub fn new(h0: f64, omega_m: f64) -> Result<Self, SpsError> {
        let c = Self { h0, omega_m };
        c.validate()?;
        Ok(c)
    }

    /// Checks the parameters (useful after deserialising).
    pub fn validate(&self) -> Result<(), SpsError> {
        if !(self.h0.is_finite() && self.h0 > 0.0) {
            return Err(SpsError::InvalidParameter {
                name: "h0".into(),
                value: self.h0,
                reason: "the Hubble constant must be a positive number of km/s/Mpc".into(),
            });
        }
        if !(self.omega_m.is_finite() && self.omega_m > 0.0 && self.omega_m <= 1.0) {
            return Err(SpsError::InvalidParameter {
                name: "omega_m".into(),
                value: self.omega_m,
                reason: "a flat ΛCDM cosmology needs 0 < Ω_m ≤ 1".into(),
            });
        }
        Ok(())
    }

    fn omega_l(&self) -> f64 {
        1.0 - self.omega_m
    }

    /// Hubble time 1/H0 in Gyr.
    pub fn hubble_time_gyr(&self) -> f64 {
        MPC_KM / self.h0 / (GYR_YR * YEAR_S)
    }

    /// Hubble distance c/H0 in Mpc.
    pub fn hubble_distance_mpc(&self) -> f64 {
        C_KM_PER_S / self.h0
    }

    /// Age of the universe at redshift `z`, in Gyr (closed form for flat matter + Λ).
    pub fn age_gyr(&self, z: f64) -> f64 {
        let ol = self.omega_l();
        let th = self.hubble_time_gyr();
        let x = (1.0 + z).powf(-1.5);
        if ol < 1e-12 {
            // Einstein–de Sitter limit.
            return 2.0 / 3.0 * th * x;
        }
        2.0 / (3.0 * ol.sqrt()) * th * ((ol / self.omega_m).sqrt() * x).asinh()
    }

    /// Age of the universe today, in Gyr.
    pub fn age_today_gyr(&self) -> f64 {
        self.age_gyr(0.0)
    }

    /// Line-of-sight comoving distance to redshift `z`, in Mpc.
    ///
    /// D_C = c/H0 ∫ da / √(Ω_m a + Ω_Λ a⁴) from a = 1/(1+z) to 1, by composite 16-point
    /// Gauss–Legendre quadrature (relative error < 1e-12 for z ≤ 100).
    pub fn comoving_distance_mpc(&self, z: f64) -> f64 {
        if z <= 0.0 {
            return 0.0;
        }
        let a0 = 1.0 / (1.0 + z);
        let (om, ol) = (self.omega_m, self.omega_l());
        let f = |a: f64| 1.0 / (om * a + ol * a * a * a * a).sqrt();
        // Panels equally spaced in sqrt(a): the integrand behaves as a^(-1/2) near a = 0.
        const PANELS: usize = 4;
        let (s0, s1) = (a0.sqrt(), 1.0);
        let mut total = 0.0;
        for p in 0..PANELS {
            let lo = s0 + (s1 - s0) * p as f64 / PANELS as f64;
            let hi = s0 + (s1 - s0) * (p + 1) as f64 / PANELS as f64;
            let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
            for (x, w) in GL16_X.iter().zip(GL16_W.iter()) {
                for s in [mid - half * x, mid + half * x] {
                    // a = s², da = 2 s ds
                    total += w * half * 2.0 * s * f(s * s);
                }
            }
        }
        self.hubble_distance_mpc() * total
    }

    /// Luminosity distance to redshift `z`, in Mpc: (1+z) D_C for a flat universe.
    pub fn luminosity_distance_mpc(&self, z: f64) -> f64 {
        (1.0 + z) * self.comoving_distance_mpc(z)
    }

    /// Angular-diameter distance to redshift `z`, in Mpc: D_C / (1+z) for a flat universe.
    pub fn angular_diameter_distance_mpc(&self, z: f64) -> f64 {
        self.comoving_distance_mpc(z) / (1.0 + z)
    }

    /// Proper transverse distance per arcsecond at redshift `z`, in kpc: D_A × (π / 648 000).
    pub fn kpc_per_arcsec(&self, z: f64) -> f64 {
        self.angular_diameter_distance_mpc(z) * 1e3 * std::f64::consts::PI / (180.0 * 3600.0)
    }

    /// Comoving volume element dV_c/dz/dΩ at redshift `z`, in Mpc³ per steradian per unit
    /// redshift: D_H D_C² / E(z), E(z) = √(Ω_m (1+z)³ + Ω_Λ) (Hogg 1999, eq. 28).
    pub fn comoving_volume_element_mpc3_per_sr(&self, z: f64) -> f64 {
        let e = (self.omega_m * (1.0 + z).powi(3) + self.omega_l()).sqrt();
        self.hubble_distance_mpc() * self.comoving_distance_mpc(z).powi(2) / e
    }
}
