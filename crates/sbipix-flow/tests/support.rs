//! The training support of unbounded parameters (`FlowConfig::theta_support`): exact ranges from
//! training θ, draws outside it rejected and redrawn, and nothing else changed.

use sbipix_flow::support::{SUPPORT_MARGIN, support_of};
use sbipix_flow::train::init_model;
use sbipix_flow::{Architecture, ParamSpec};

#[test]
fn support_is_the_training_range_widened_by_the_margin() {
    // two parameters, rows interleaved; a NaN is ignored; a column of NaN has no support
    let theta = [1.0f32, -2.0, 3.0, f32::NAN, 2.0, 6.0];
    let s = support_of(&theta, 2);
    let m = SUPPORT_MARGIN * 2.0;
    assert_eq!(s[0], [1.0 - m, 3.0 + m]);
    let m = SUPPORT_MARGIN * 8.0;
    assert_eq!(s[1], [-2.0 - m, 6.0 + m]);
    assert_eq!(support_of(&[f32::NAN, f32::NAN], 1)[0], [f64::NEG_INFINITY, f64::INFINITY]);
}

#[test]
fn draws_outside_the_support_are_redrawn_and_the_others_kept() {
    // An untrained flow is close to its standard-normal base: a support of [−1, 1] in the first
    // parameter cuts ≈ 30 % of its draws.
    let arch = Architecture::Nsf { layers: 2, hidden: 8, extra_hidden_layers: 0, bins: 4, tail_bound: 3.0, affine_hidden: 0 };
    let params = vec![ParamSpec { name: "a".into(), lower: None, upper: None }, ParamSpec { name: "b".into(), lower: None, upper: None }];
    let free = init_model(&arch, params, 3, 5).unwrap();
    let x = [0.1, -0.3, 0.7, 0.0, 0.2, 0.4];
    let (pixels, n) = (2, 4000);
    let a = free.sample(&x, pixels, n, 9).unwrap();
    let outside = a.iter().step_by(2).filter(|v| v.abs() > 1.0).count() as f64 / (pixels * n) as f64;
    assert!(outside > 0.1, "the test needs draws outside the support ({outside})");

    let mut cut = free.clone();
    cut.config.theta_support = vec![[-1.0, 1.0], [f64::NEG_INFINITY, f64::INFINITY]];
    cut.config.validate("test").unwrap();
    let b = cut.sample(&x, pixels, n, 9).unwrap();
    assert_eq!(b.len(), a.len());
    assert!(b.iter().step_by(2).all(|v| v.abs() <= 1.0), "a draw outside the support was kept");
    // The accepted draws are the unrestricted flow's own, in order: the first draws of pixel 0
    // inside the support are the same numbers.
    let inside_a: Vec<&[f32]> = a[..n * 2].chunks(2).filter(|r| r[0].abs() <= 1.0).take(100).collect();
    let inside_b: Vec<&[f32]> = b[..n * 2].chunks(2).take(100).collect();
    assert_eq!(inside_a, inside_b);

    // A support that holds every draw changes nothing, bit for bit.
    let mut wide = free.clone();
    wide.config.theta_support = vec![[-1e9, 1e9], [-1e9, 1e9]];
    assert_eq!(wide.sample(&x, pixels, n, 9).unwrap(), a);
    // A support that most draws miss (a context the flow was not trained for): the pixel is
    // drawn without it, the unrestricted draws bit for bit, not forced into it or left NaN.
    let mut narrow = free.clone();
    narrow.config.theta_support = vec![[2.0, 3.0], [f64::NEG_INFINITY, f64::INFINITY]];
    assert_eq!(narrow.sample(&x, pixels, n, 9).unwrap(), a);
    // An empty range is refused.
    let mut bad = free.clone();
    bad.config.theta_support = vec![[1.0, 1.0], [0.0, 1.0]];
    assert!(bad.config.validate("test").is_err());
}
