//! Forward-model throughput: 19-band JADES photometry with nebular emission, Calzetti dust,
//! DL07 dust emission and Inoue (2014) IGM, for random delayed-τ galaxies (SBIPIX-like prior).
//! Reports SEDs per second on one thread and on all threads (rayon).
//!
//! `cargo bench -p sbipix --bench photometry`; results in BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use sbipix::io::DataStore;
use sbipix::sps::{GalaxyParams, ModelConfig, SpsModel, Workspace};
use sbipix::{FilterChoice, build_sps_model};
use std::hint::black_box;

/// Deterministic pseudo-random galaxies (SplitMix64), SBIPIX's delayed-τ prior ranges.
fn galaxies(model: &SpsModel, n: usize) -> Vec<GalaxyParams> {
    let mut g = sbipix::stats::SplitMix64::new(sbipix::stats::rng::GOLDEN_GAMMA);
    let mut u = move || g.next_f64();
    let cosmo = model.config().cosmology;
    (0..n)
        .map(|_| {
            let z = 0.01 + 7.49 * u();
            let age = cosmo.age_gyr(z) * (0.001 + 0.999 * u());
            let mut p = GalaxyParams::delayed_tau(z, 4.0 + 8.0 * u(), age, 10f64.powf(-2.0 + 4.0 * u()));
            p.logzsol = -2.27 + 2.67 * u();
            p.av_mag = 4.3 * u();
            p
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let store = DataStore::from_env().unwrap();
    let model = build_sps_model(&store, &FilterChoice::Jades, ModelConfig::default(), &|m| eprintln!("{m}")).unwrap();
    let gals = galaxies(&model, 4096);
    let mut g = c.benchmark_group("photometry_19band_nebular_dust_igm");
    g.throughput(Throughput::Elements(gals.len() as u64));
    g.sample_size(10);
    g.bench_function("1_thread", |b| {
        let mut ws = Workspace::default();
        let mut flux = vec![0.0; model.n_bands()];
        b.iter(|| {
            for p in &gals {
                black_box(model.photometry_into(p, &mut ws, &mut flux).unwrap());
            }
        })
    });
    let threads = rayon::current_num_threads();
    g.bench_function(format!("{threads}_threads"), |b| {
        b.iter(|| {
            gals.par_iter().for_each_init(
                || (Workspace::default(), vec![0.0; model.n_bands()]),
                |(ws, flux), p| {
                    black_box(model.photometry_into(p, ws, flux).unwrap());
                },
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
