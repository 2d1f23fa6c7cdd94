//! Model settings that cannot work are refused when the model is built, naming the setting.

mod common;

use common::*;
use sbipix::sps::{Dl07Params, Filter, LinePlacement, ModelConfig, SpsModel};

fn err(config: ModelConfig, filters: Vec<Filter>) -> String {
    SpsModel::new(sps_data(), filters, config).unwrap_err().to_string()
}

#[test]
fn bad_settings_are_named() {
    let f = sbipix_filters;
    let e = err(ModelConfig { dl07: Dl07Params { qpah: 9.0, ..Dl07Params::default() }, ..ModelConfig::default() }, f());
    assert!(e.contains("dl07.qpah"), "{e}");
    let e = err(ModelConfig { dl07: Dl07Params { gamma: 1.5, ..Dl07Params::default() }, ..ModelConfig::default() }, f());
    assert!(e.contains("dl07.gamma"), "{e}");
    let e = err(ModelConfig { t_bc_gyr: -0.01, ..ModelConfig::default() }, f());
    assert!(e.contains("t_bc_gyr"), "{e}");
    let e = err(ModelConfig { max_redshift: f64::NAN, ..ModelConfig::default() }, f());
    assert!(e.contains("max_redshift"), "{e}");
    let xray = Filter::new("XRAY", vec![1.0, 2.0, 3.0], vec![0.0, 1.0, 0.0]).unwrap();
    let e = err(ModelConfig::default(), vec![xray]);
    assert!(e.contains("XRAY") && e.contains("10 Å"), "{e}");
    let mut two = f();
    two[1].name = two[0].name.clone();
    let e = err(ModelConfig::default(), two);
    assert!(e.contains("share this name"), "{e}");
    assert!(err(ModelConfig::default(), vec![]).contains("no filters"));
    // Dust emission off ignores the DL07 settings.
    let ok = ModelConfig { dust_emission: false, dl07: Dl07Params { qpah: 9.0, ..Dl07Params::default() }, ..ModelConfig::default() };
    assert!(SpsModel::new(sps_data(), f(), ok).is_ok());
}

/// `line_placement` (issue 17): configurations integrate the lines at their exact wavelengths,
/// also those written before the field existed (model folders, training sets: the shipped
/// default model's network was trained on nearest-pixel photometry; its likelihood, check and
/// validation simulations now use exact lines, as `sbipix simulate` does).
#[test]
fn configs_without_line_placement_read_as_exact() {
    assert_eq!(ModelConfig::default().line_placement, LinePlacement::Exact);
    let old: ModelConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(old, ModelConfig::default());
    let new = serde_json::to_string(&ModelConfig::default()).unwrap();
    assert!(new.contains(r#""line_placement":"exact""#), "{new}");
    assert_eq!(serde_json::from_str::<ModelConfig>(&new).unwrap(), ModelConfig::default());
    let np: ModelConfig = serde_json::from_str(r#"{"line_placement": "nearest_pixel"}"#).unwrap();
    assert_eq!(np.line_placement, LinePlacement::NearestPixel);

    // The built-in `sbipix2025` (trained before the option existed) says nothing, and reads as
    // exact; the current default names it.
    let dir = sbipix::builtin_model_dir("sbipix2025").unwrap().expect("built-in sbipix2025");
    assert!(!std::fs::read_to_string(dir.join("model.json")).unwrap().contains("line_placement"));
    let post = sbipix::Posterior::load(&dir).unwrap();
    assert_eq!(post.manifest.forward_model.line_placement, LinePlacement::Exact);
    let post = sbipix::Posterior::load(&sbipix::default_model_dir().unwrap()).unwrap();
    assert_eq!(post.manifest.forward_model.line_placement, LinePlacement::Exact);
}
