//! Model files written before `Architecture::Nsf::extra_hidden_layers` was named so (the key on
//! disk is still `hidden_layers`) read and write as before.

use sbipix_flow::{Architecture, load_dir};
use std::path::PathBuf;

fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/default")
}

#[test]
fn the_shipped_default_model_still_loads_with_its_hidden_layers() {
    let m = load_dir(&default_model()).expect("models/default loads");
    // flow.json says `"hidden_layers": 1`: one hidden layer after the first, i.e. each conditioner
    // has net0, net1 (hidden) and net2 (output) — the weights file holds exactly those — and
    // `"affine_hidden": 128`, the conditional affine map of the default since 2026-12-04
    // (docs/validation.md)
    match m.config.architecture {
        Architecture::Nsf { layers, hidden, extra_hidden_layers, bins, tail_bound, affine_hidden } => {
            assert_eq!((layers, hidden, extra_hidden_layers, bins, tail_bound, affine_hidden), (5, 128, 1, 8, 4.0, 128));
        }
        ref other => panic!("the default model is an NSF, got {other:?}"),
    }
    // written back, the key is the one older versions read
    let json = serde_json::to_value(&m.config.architecture).unwrap();
    assert_eq!(json["hidden_layers"], 1, "{json}");
    assert!(json.get("extra_hidden_layers").is_none(), "{json}");
}
