//! Training machinery: determinism, checkpoints and resume, bounded parameters, bad input.

use sbipix_flow::model::ParamSpec;
use sbipix_flow::train::{TrainConfig, TrainingData, train};
use sbipix_flow::{Architecture, BoundMethod, FlowError};

/// θ₀ ~ U(0, 1) (bounded), θ₁ ~ N(0, 1); x = (θ₀ + 0.1ε, θ₁ + 0.3ε').
fn data(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut th = Vec::new();
    let mut x = Vec::new();
    let mut s: u64 = 12345;
    let mut u = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 11) as f64) / (1u64 << 53) as f64
    };
    for _ in 0..n {
        let a = u();
        let b = (-2.0 * u().max(1e-12).ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
        let e1 = (-2.0 * u().max(1e-12).ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
        let e2 = (-2.0 * u().max(1e-12).ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
        th.extend([a as f32, b as f32]);
        x.extend([(a + 0.1 * e1) as f32, (b + 0.3 * e2) as f32]);
    }
    (th, x)
}

fn params() -> Vec<ParamSpec> {
    vec![ParamSpec { name: "a".into(), lower: Some(0.0), upper: Some(1.0) }, ParamSpec { name: "b".into(), lower: None, upper: None }]
}

fn cfg(epochs: usize) -> TrainConfig {
    TrainConfig {
        architecture: Architecture::Nsf { layers: 2, hidden: 16, extra_hidden_layers: 1, bins: 4, tail_bound: 4.0, affine_hidden: 0 },
        max_epochs: epochs,
        patience: 100,
        batch_size: 64,
        seed: 5,
        ..TrainConfig::nsf()
    }
}

#[test]
fn resume_continues_exactly_and_samples_stay_in_bounds() {
    let (th, x) = data(2000);
    let d = TrainingData { theta: &th, x: &x, n: 2000, params: params(), bound_method: BoundMethod::Logit };
    // 6 epochs straight …
    let (m_straight, r_straight) = train(&d, &cfg(6), None, false, &mut |_| {}).unwrap();
    // … equal 3 epochs, stop, resume to 6.
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let (_, r3) = train(&d, &cfg(3), Some(&ck), false, &mut |_| {}).unwrap();
    assert_eq!(r3.epochs.len(), 3);
    let (m_resumed, r_resumed) = train(&d, &cfg(6), Some(&ck), true, &mut |_| {}).unwrap();
    assert_eq!(r_resumed.epochs.len(), 6);
    for (a, b) in r_straight.epochs.iter().zip(&r_resumed.epochs) {
        assert_eq!(a.val_loss, b.val_loss, "epoch {}", a.epoch);
    }
    let probe_x = vec![0.3, 0.5, 0.9, -1.0];
    let probe_t = vec![0.31, 0.4, 0.85, -0.9];
    assert_eq!(m_straight.log_prob(&probe_t, &probe_x, 2).unwrap(), m_resumed.log_prob(&probe_t, &probe_x, 2).unwrap());
    // the same seed and thread count give the same model; the loss went down
    let (m_again, _) = train(&d, &cfg(6), None, false, &mut |_| {}).unwrap();
    assert_eq!(m_straight.log_prob(&probe_t, &probe_x, 2).unwrap(), m_again.log_prob(&probe_t, &probe_x, 2).unwrap());
    assert!(r_straight.epochs[5].val_loss < r_straight.epochs[0].val_loss);
    // bounded parameter: every draw inside (0, 1); log_prob −∞ outside
    let s = m_straight.cast::<f32>().sample(&[0.02, 0.0, 0.98, 0.0], 2, 2000, 1).unwrap();
    assert!(s.chunks(2).all(|t| t[0] > 0.0 && t[0] < 1.0));
    assert_eq!(m_straight.log_prob(&[1.5, 0.0], &[0.5, 0.0], 1).unwrap()[0], f64::NEG_INFINITY);
    // a checkpoint of another architecture is refused
    let other = TrainConfig {
        architecture: Architecture::Nsf { layers: 3, hidden: 16, extra_hidden_layers: 1, bins: 4, tail_bound: 4.0, affine_hidden: 0 },
        ..cfg(6)
    };
    let e = train(&d, &other, Some(&ck), true, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, FlowError::Model { path, reason } if path == &ck.display().to_string() && reason.contains("another architecture")),
        "{e:?}"
    );
}

#[test]
fn bad_training_data_is_named() {
    let (mut th, x) = data(100);
    let mk = |th: &[f32], x: &[f32], n: usize| {
        train(&TrainingData { theta: th, x, n, params: params(), bound_method: BoundMethod::Logit }, &cfg(1), None, false, &mut |_| {})
    };
    // θ is 100 rows × 2 columns: value 7 is row 3, column 1
    th[7] = f32::NAN;
    let e = mk(&th, &x, 100).unwrap_err();
    assert!(matches!(&e, FlowError::BadData { what, reason } if what == "θ" && reason == "row 3, column 1 is not finite"), "{e:?}");
    let (th, mut x) = data(100);
    x[199] = f32::INFINITY;
    let e = mk(&th, &x, 100).unwrap_err();
    assert!(matches!(&e, FlowError::BadData { what, reason } if what == "x" && reason == "row 99, column 1 is not finite"), "{e:?}");
    let (th, x) = data(100);
    let e = mk(&th[..150], &x, 100).unwrap_err();
    assert!(matches!(&e, FlowError::Shape { what, expected, found } if what == "θ" && expected == "100 × 2" && found == "150"), "{e:?}");
    let e = mk(&th, &x[..150], 100).unwrap_err();
    assert!(matches!(&e, FlowError::Shape { what, expected, found } if what == "x" && expected == "100 rows" && found == "150"), "{e:?}");
    let bad = TrainConfig { batch_size: 1, ..cfg(1) };
    let e = train(
        &TrainingData { theta: &th, x: &x, n: 100, params: params(), bound_method: BoundMethod::Logit },
        &bad,
        None,
        false,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(&e, FlowError::Config { name, .. } if name == "batch_size"), "{e:?}");
    // the trained model refuses inputs of the wrong width or with NaN
    let (m, _) = mk(&th, &x, 100).unwrap();
    let e = m.log_prob(&[0.5, 0.0], &[0.5], 1).unwrap_err();
    assert!(matches!(&e, FlowError::Shape { found, .. } if found == "1 values"), "{e:?}");
    let e = m.cast::<f32>().sample(&[f64::NAN, 0.0], 1, 10, 0).unwrap_err();
    assert!(matches!(&e, FlowError::BadData { reason, .. } if reason == "row 0, column 0 is not finite"), "{e:?}");
}
