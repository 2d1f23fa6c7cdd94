//! The default model's companion network for sparse band sets (`models/default/sparse`,
//! `sbipix attach`): which pixels it samples, that their draws are exactly the companion's (and
//! the others' exactly the main network's, each pixel on its own random stream), and that a
//! companion which answers another question is refused.

mod common;

use sbipix::inference::model::{COMPANION_DIR, Posterior, attach_companion};

const BANDS_COSMOS_WEB: [&str; 4] = ["F115W", "F150W", "F277W", "F444W"];
const BANDS_CEERS: [&str; 10] = ["F115W", "F150W", "F200W", "F277W", "F356W", "F410M", "F444W", "F606W", "F814W", "F090W"];

fn mask(post: &Posterior, bands: &[&str]) -> Vec<bool> {
    post.manifest.bands.iter().map(|b| bands.contains(&b.as_str())).collect()
}

#[test]
fn sparse_band_sets_are_sampled_by_the_companion() {
    let dir = sbipix::default_model_dir().expect("default model");
    let post = Posterior::load(&dir).expect("default model loads");
    assert_eq!(post.manifest.companion.as_deref(), Some(COMPANION_DIR), "the default has a companion network");
    let nb = post.manifest.bands.len();
    let all = vec![true; nb];
    let cosmos = mask(&post, &BANDS_COSMOS_WEB);
    // the routing: COSMOS-Web's four bands to the companion; all bands, CEERS-like bands (with
    // ACS, which the companion never saw) and NIRCam's eight wide bands + F410M (a pattern both
    // saw equally often) to the main network
    assert!(post.uses_companion(&cosmos));
    assert!(!post.uses_companion(&all));
    assert!(!post.uses_companion(&mask(&post, &BANDS_CEERS)));
    assert!(!post.uses_companion(&mask(&post, &["F090W", "F115W", "F150W", "F200W", "F277W", "F356W", "F410M", "F444W"])));
    assert!(post.uses_companion(&mask(&post, &["F115W", "F150W", "F200W", "F277W", "F356W", "F444W"])));

    // four pixels at S/N 10 in every band (a flat f_ν of 0.05 µJy), z = 2: all, COSMOS-Web, all,
    // COSMOS-Web
    let masks = [&all, &cosmos, &all, &cosmos];
    let np = masks.len();
    let flux = vec![0.05; np * nb];
    let sigma = vec![0.005; np * nb];
    let measured: Vec<bool> = masks.iter().flat_map(|m| m.iter().copied()).collect();
    let z = vec![2.0; np];
    let (n, seed) = (64, 7);
    let draws = post.sample(&flux, &sigma, &measured, &z, n, seed).unwrap();
    let d = post.manifest.parameters.len();
    let mut main = Posterior::load(&dir).unwrap();
    main.companion = None;
    let companion = Posterior::load(&dir.join(COMPANION_DIR)).unwrap();
    for p in 0..np {
        let one = |net: &Posterior| {
            let r = p * nb..(p + 1) * nb;
            net.sample_from(&flux[r.clone()], &sigma[r.clone()], &measured[r], &z[p..p + 1], n, seed, p).unwrap()
        };
        let (by_main, by_companion) = (one(&main), one(&companion));
        let got = &draws[p * n * d..(p + 1) * n * d];
        let (want, other) = if p % 2 == 1 { (&by_companion, &by_main) } else { (&by_main, &by_companion) };
        assert_eq!(got, want.as_slice(), "pixel {p}: the draws of the network that samples it, on the pixel's own stream");
        assert_ne!(got, other.as_slice(), "pixel {p}: the two networks differ");
    }
}

#[test]
fn a_companion_that_answers_another_question_is_refused() {
    let default = sbipix::default_model_dir().unwrap();
    let other = sbipix::inference::model::builtin_model_dir("sbipix2025").unwrap().unwrap();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("m");
    let e = attach_companion(&default, &other, &target, false).map(|_| ()).unwrap_err();
    let msg = sbipix::error::full_message(&e);
    assert!(msg.contains("differs from it in its parameters"), "{msg}");
    assert!(!target.exists(), "nothing written");
    // the default's own companion, attached again, makes a model that loads and routes alike
    let again = attach_companion(&default, &default.join(COMPANION_DIR), &target, false).unwrap();
    let cosmos = mask(&again, &BANDS_COSMOS_WEB);
    assert!(again.uses_companion(&cosmos));
    assert_eq!(again.weights_sha256, Posterior::load(&default).unwrap().weights_sha256);
    // a companion named by a path that leads back out of (or to) the folder is refused
    let json = target.join("model.json");
    let text = std::fs::read_to_string(&json).unwrap();
    for bad in [".", "..", "../m", ""] {
        std::fs::write(&json, text.replace("\"companion\": \"sparse\"", &format!("\"companion\": \"{bad}\""))).unwrap();
        let msg = sbipix::error::full_message(&Posterior::load(&target).map(|_| ()).unwrap_err());
        assert!(msg.contains("not the name of a folder inside the model folder"), "{bad}: {msg}");
    }
}

#[test]
fn calibrating_a_model_keeps_its_companion() {
    use sbipix::validation::calibrate::{CalibrationSettings, calibrate};
    let default = sbipix::default_model_dir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("cal");
    let s = CalibrationSettings { n: 400, seed: 170_017, draws: 20, snr_min: 5.0 };
    calibrate(&common::store(), &default, &s, &target, false, &|_| {}).unwrap();
    let cal = Posterior::load(&target).unwrap();
    let original = Posterior::load(&default).unwrap();
    // the main network's maps are learnt again; the companion's files are copied as they were
    assert_eq!(cal.manifest.calibration.as_ref().unwrap().seed, 170_017);
    let companion = cal.companion.as_ref().expect("the companion is kept");
    assert_eq!(
        std::fs::read(companion.dir.join("model.json")).unwrap(),
        std::fs::read(default.join(COMPANION_DIR).join("model.json")).unwrap()
    );
    assert_eq!(cal.weights_sha256, original.weights_sha256);
    assert!(cal.uses_companion(&mask(&cal, &BANDS_COSMOS_WEB)));
}
