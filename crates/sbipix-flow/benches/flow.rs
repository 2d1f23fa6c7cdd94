//! Posterior sampling and log-prob throughput of the flows at SBIPIX's data shape
//! (`cargo bench -p sbipix-flow --bench flow`; results in BENCHMARKS.md):
//! 1000 pixels × 500 draws, batched per pixel, pixels spread over the threads.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sbipix_flow::Architecture;
use sbipix_flow::dense::Activation;
use sbipix_flow::model::ParamSpec;
use sbipix_flow::train::init_model;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let (d, dx) = (7, 39);
    let params: Vec<ParamSpec> = (0..d).map(|i| ParamSpec { name: format!("p{i}"), lower: None, upper: None }).collect();
    let pixels = 1000;
    let draws = 500;
    let x: Vec<f64> = (0..pixels * dx).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
    let mut g = c.benchmark_group("posterior_sampling_1000px_x500");
    g.sample_size(10);
    g.throughput(Throughput::Elements(pixels as u64));
    for (label, arch) in [
        // conditioner: input → 128 → 128 → spline parameters (the default)
        (
            "nsf_5x128x2_8bins",
            Architecture::Nsf { layers: 5, hidden: 128, extra_hidden_layers: 1, bins: 8, tail_bound: 4.0, affine_hidden: 0 },
        ),
        // conditioner: input → 128 → spline parameters
        (
            "nsf_5x128x1_8bins",
            Architecture::Nsf { layers: 5, hidden: 128, extra_hidden_layers: 0, bins: 8, tail_bound: 4.0, affine_hidden: 0 },
        ),
        ("maf_5x128_relu", Architecture::Maf { layers: 5, hidden: 128, blocks: 2, activation: Activation::Relu }),
    ] {
        let m = init_model(&arch, params.clone(), dx, 1).unwrap().cast::<f32>();
        g.bench_function(label, |b| b.iter(|| black_box(m.sample(&x, pixels, draws, 3).unwrap())));
    }
    g.finish();
    // The shipped models' shape: 58 inputs (19 bands × flux, σ, mask + redshift); 9 parameters
    // (the earlier default) or the 5 physical ones (docs/inference.md, --params).
    let dx = 58;
    let x: Vec<f64> = (0..pixels * dx).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
    let mut g = c.benchmark_group("posterior_sampling_58_inputs_1000px_x500");
    g.sample_size(10);
    g.throughput(Throughput::Elements(pixels as u64));
    for (label, d, hidden_layers) in [("nsf_9params_5x128x1", 9, 0), ("nsf_5params_5x128x1", 5, 0), ("nsf_5params_5x128x2", 5, 1)] {
        let params: Vec<ParamSpec> = (0..d).map(|i| ParamSpec { name: format!("p{i}"), lower: None, upper: None }).collect();
        let arch =
            Architecture::Nsf { layers: 5, hidden: 128, extra_hidden_layers: hidden_layers, bins: 8, tail_bound: 4.0, affine_hidden: 0 };
        let m = init_model(&arch, params, dx, 1).unwrap().cast::<f32>();
        g.bench_function(label, |b| b.iter(|| black_box(m.sample(&x, pixels, draws, 3).unwrap())));
    }
    // MAF at the default's shape, beside sbi's (scripts/bench_sbi.py)
    let params5: Vec<ParamSpec> = (0..5).map(|i| ParamSpec { name: format!("p{i}"), lower: None, upper: None }).collect();
    let m = init_model(&Architecture::Maf { layers: 5, hidden: 128, blocks: 2, activation: Activation::Relu }, params5, dx, 1)
        .unwrap()
        .cast::<f32>();
    g.bench_function("maf_5params_5x128_relu", |b| b.iter(|| black_box(m.sample(&x, pixels, draws, 3).unwrap())));
    g.finish();
    let dx = 39;
    let mut g = c.benchmark_group("log_prob_100k_pairs");
    g.sample_size(10);
    let n = 100_000;
    g.throughput(Throughput::Elements(n as u64));
    let th: Vec<f64> = (0..n * d).map(|i| ((i * 31) % 97) as f64 / 40.0 - 1.2).collect();
    let xx: Vec<f64> = (0..n * dx).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
    for (label, arch) in [
        (
            "nsf_5x128x2_8bins",
            Architecture::Nsf { layers: 5, hidden: 128, extra_hidden_layers: 1, bins: 8, tail_bound: 4.0, affine_hidden: 0 },
        ),
        ("maf_5x128_relu", Architecture::Maf { layers: 5, hidden: 128, blocks: 2, activation: Activation::Relu }),
    ] {
        let m = init_model(&arch, params.clone(), dx, 1).unwrap().cast::<f32>();
        g.bench_function(label, |b| b.iter(|| black_box(m.log_prob(&th, &xx, n).unwrap())));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
