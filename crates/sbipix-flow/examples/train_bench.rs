//! Training speed at SBIPIX's data shape: 10⁵ pairs, 7 parameters, 39 inputs, 5 layers × 128,
//! batch 200 (sbi's default), 2 threads; prints seconds per epoch for NSF and MAF.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p sbipix-flow --example train_bench [epochs]`

use sbipix_flow::dense::Activation;
use sbipix_flow::model::ParamSpec;
use sbipix_flow::train::{TrainConfig, TrainingData, train};
use sbipix_flow::{Architecture, BoundMethod};

fn main() {
    let epochs: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let (n, d, dx) = (100_000, 7, 39);
    // θ ~ N(0, I); x = Aθ + noise with a fixed pseudo-random A
    let mut s: u64 = 1;
    let mut u = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 11) as f64) / (1u64 << 53) as f64 - 0.5
    };
    let a: Vec<f64> = (0..d * dx).map(|_| u()).collect();
    let mut th = Vec::with_capacity(n * d);
    let mut x = Vec::with_capacity(n * dx);
    for _ in 0..n {
        let t: Vec<f64> = (0..d).map(|_| 2.0 * (u() + u() + u())).collect();
        for j in 0..dx {
            x.push(((0..d).map(|i| a[j * d + i] * t[i]).sum::<f64>() + 0.3 * u()) as f32);
        }
        th.extend(t.iter().map(|v| *v as f32));
    }
    let params: Vec<ParamSpec> = (0..d).map(|i| ParamSpec { name: format!("p{i}"), lower: None, upper: None }).collect();
    let data = TrainingData { theta: &th, x: &x, n, params, bound_method: BoundMethod::Logit };
    for (label, arch) in [
        (
            "NSF 5×128 (conditioner 2 hidden layers), 8 bins",
            Architecture::Nsf { layers: 5, hidden: 128, extra_hidden_layers: 1, bins: 8, tail_bound: 4.0, affine_hidden: 0 },
        ),
        (
            "NSF 5×128 (conditioner 1 hidden layer), 8 bins",
            Architecture::Nsf { layers: 5, hidden: 128, extra_hidden_layers: 0, bins: 8, tail_bound: 4.0, affine_hidden: 0 },
        ),
        ("MAF 5×128, 2 blocks, ReLU", Architecture::Maf { layers: 5, hidden: 128, blocks: 2, activation: Activation::Relu }),
    ] {
        let cfg = TrainConfig { architecture: arch, max_epochs: epochs, batch_size: 200, patience: 100, threads: 2, ..TrainConfig::nsf() };
        let (_, r) = train(&data, &cfg, None, false, &mut |_| {}).unwrap();
        let per: f64 = r.epochs.iter().map(|e| e.seconds).sum::<f64>() / r.epochs.len() as f64;
        println!("{label}: {per:.1} s/epoch (90 000 training pairs), validation log q after {epochs} epochs {:.3}", r.best_val_log_prob);
    }
}
