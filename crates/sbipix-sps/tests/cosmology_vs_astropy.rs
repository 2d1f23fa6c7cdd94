//! Flat ΛCDM against astropy 8.0.2 (`FlatLambdaCDM(H0, Om0)`, no radiation), an independent
//! code: values printed by astropy and pasted here.

#![allow(clippy::type_complexity)]
use approx::assert_relative_eq;
use sbipix_sps::Cosmology;

#[test]
fn ages_and_distances_match_astropy() {
    let cases: [((f64, f64), [f64; 4], [f64; 5]); 2] = [
        (
            (70.0, 0.3),
            [13.466983947061873, 5.751646943448282, 0.6856360315498222, 0.28406149009978743],
            [0.42830813013722907, 2832.9380939001253, 6607.6576117749355, 69020.8185857748, 163925.97027849947],
        ),
        (
            (67.7, 0.31),
            [13.79708551722914, 5.861238332503928, 0.6974216473208409, 0.2889373496083589],
            [0.4428588866067823, 2919.0993973109676, 6792.0727933894495, 70559.02093298633, 167447.76849963464],
        ),
    ];
    for ((h0, om), ages, dls) in cases {
        let c = Cosmology::new(h0, om).unwrap();
        for (z, a) in [0.0, 1.0, 7.5, 14.3].iter().zip(ages) {
            assert_relative_eq!(c.age_gyr(*z), a, max_relative = 1e-9);
        }
        for (z, d) in [1e-4, 0.5, 1.0, 7.0, 15.0].iter().zip(dls) {
            assert_relative_eq!(c.luminosity_distance_mpc(*z), d, max_relative = 1e-9);
        }
    }
}

#[test]
fn comoving_volume_element_matches_astropy() {
    // FlatLambdaCDM(H0, Om0, Tcmb0=0).differential_comoving_volume(z), Mpc³/sr, astropy 8.0.2
    let cases = [
        ((70.0, 0.3), [715255174.4752667, 26550755712.253193, 28617148129.17286]),
        ((67.7, 0.31), [788294431.1333257, 28684486212.81301, 30438546345.14394]),
    ];
    for ((h0, om), want) in cases {
        let c = Cosmology::new(h0, om).unwrap();
        for (z, v) in [0.1, 1.0, 6.0].iter().zip(want) {
            assert_relative_eq!(c.comoving_volume_element_mpc3_per_sr(*z), v, max_relative = 1e-9);
        }
    }
}

#[test]
fn bad_cosmologies_are_errors() {
    assert!(Cosmology::new(0.0, 0.3).is_err());
    assert!(Cosmology::new(70.0, 0.0).is_err());
    assert!(Cosmology::new(70.0, 1.5).is_err());
    assert!(Cosmology::new(f64::NAN, 0.3).is_err());
    // Einstein–de Sitter limit is allowed and exact: t = 2/(3 H0) (1+z)^-1.5.
    let eds = Cosmology::new(70.0, 1.0).unwrap();
    assert_relative_eq!(eds.age_gyr(3.0), 2.0 / 3.0 * eds.hubble_time_gyr() / 8.0, max_relative = 1e-12);
    assert_eq!(eds.luminosity_distance_mpc(0.0), 0.0);
}
