//! Forward-model throughput: 19-band JADES photometry with nebular emission, Calzetti dust,
//! DL07 dust emission and Inoue (2014) IGM, for random delayed-τ galaxies (SBIPIX-like prior).
//! Reports SEDs per second on one thread and on all threads (rayon).
//!
//! `cargo bench -p sbipix --bench photometry`; results in BENCHMARKS.md.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use sbipix::io::DataStore;
use sbipix::sps::{ModelConfig, Workspace};
use sbipix::{FilterChoice, build_sps_model};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let store = DataStore::from_env().unwrap();
    let model = build_sps_model(&store, &FilterChoice::Jades, ModelConfig::default(), &|m| eprintln!("{m}")).unwrap();
    let gals = common::galaxies(&model, 4096, None);
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
