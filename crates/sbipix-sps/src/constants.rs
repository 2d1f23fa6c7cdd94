//! Physical constants, named with their units and their source.

/// Speed of light in Å/s (CODATA 2018, exact: 299 792 458 m/s).
pub const C_AA_PER_S: f64 = 2.997_924_58e18;

/// Speed of light in km/s (exact).
pub const C_KM_PER_S: f64 = 299_792.458;

/// Nominal solar luminosity in erg/s (IAU 2015 Resolution B3: 3.828e26 W).
/// bagpipes uses 3.826e33 and the SBIPIX FSPS atlases 3.828e33; the difference is 0.0006 mag.
pub const L_SUN_ERG_PER_S: f64 = 3.828e33;

/// One megaparsec in cm (IAU 2012 au and 2015 parsec definition: 3.085 677 581 491 367e24 cm).
pub const MPC_CM: f64 = 3.085_677_581_491_367e24;

/// One parsec in Mpc.
pub const PC_MPC: f64 = 1e-6;

/// Seconds in one Julian year (365.25 d).
pub const YEAR_S: f64 = 3.155_76e7;

/// One Gyr in years.
pub const GYR_YR: f64 = 1e9;

/// AB magnitude zero point: f_ν = 3631 Jy at m_AB = 0 (Oke & Gunn 1983), in µJy.
pub const AB_ZERO_POINT_UJY: f64 = 3631e6;

/// erg s⁻¹ cm⁻² Hz⁻¹ in µJy (1 Jy = 1e-23 cgs).
pub const CGS_FNU_TO_UJY: f64 = 1e29;

/// Lyman-α rest wavelength in Å (vacuum).
pub const LYMAN_ALPHA_AA: f64 = 1215.67;

/// Lyman limit in Å.
pub const LYMAN_LIMIT_AA: f64 = 911.75;

/// The ionising-photon cut applied to young stellar light when nebular emission is on
/// (bagpipes convention, with escape fraction 0): 912 Å.
pub const IONISING_CUT_AA: f64 = 912.0;

/// AB magnitude of a flux density in µJy.
pub fn ab_mag_from_ujy(flux_ujy: f64) -> f64 {
    -2.5 * (flux_ujy / AB_ZERO_POINT_UJY).log10()
}

/// Flux density in µJy of an AB magnitude.
pub fn ujy_from_ab_mag(mag: f64) -> f64 {
    AB_ZERO_POINT_UJY * 10f64.powf(-0.4 * mag)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ab_zero_point() {
        // −2.5 log10(1e-6 / 3631) evaluated independently (Python's math.log10).
        assert!((super::ab_mag_from_ujy(1.0) - 23.90006562228223).abs() < 1e-12);
        assert!((super::ujy_from_ab_mag(23.90006562228223) - 1.0).abs() < 1e-12);
    }
}
