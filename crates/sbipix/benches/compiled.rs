//! Compiled photometry (`CompiledPhotometry`, photometry tabulated per redshift) beside the full
//! forward model, in one run: 19-band JADES photometry of the same random delayed-τ galaxies
//! (SBIPIX's prior ranges) at z = 3, one thread each (the compiled fluxes alone, as the
//! likelihood asks for them, beside); the compiled photometry of dense_basis
//! galaxies (SBIPIX's dense_basis prior) beside it; and the time to compile the tables at one
//! redshift.
//!
//! `cargo bench -p sbipix --bench compiled`; results in BENCHMARKS.md.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sbipix::io::DataStore;
use sbipix::sps::{CompileRange, CompiledPhotometry, ModelConfig, Workspace};
use sbipix::{FilterChoice, build_sps_model};
use std::hint::black_box;

const Z: f64 = 3.0;

fn bench(c: &mut Criterion) {
    let store = DataStore::from_env().unwrap();
    let model = build_sps_model(&store, &FilterChoice::Jades, ModelConfig::default(), &|m| eprintln!("{m}")).unwrap();
    let gals = common::galaxies(&model, 4096, Some(Z));
    let compiled = CompiledPhotometry::new(&model, Z, CompileRange::default()).unwrap();
    let mut g = c.benchmark_group("photometry_19band_z3_1_thread");
    g.throughput(Throughput::Elements(gals.len() as u64));
    g.sample_size(10);
    g.bench_function("full_model", |b| {
        let mut ws = Workspace::default();
        let mut flux = vec![0.0; model.n_bands()];
        b.iter(|| {
            for p in &gals {
                black_box(model.photometry_into(p, &mut ws, &mut flux).unwrap());
            }
        })
    });
    g.bench_function("compiled", |b| {
        let mut ws = Workspace::default();
        let mut flux = vec![0.0; model.n_bands()];
        b.iter(|| {
            for p in &gals {
                black_box(compiled.photometry_into(&model, p, &mut ws, &mut flux).unwrap());
            }
        })
    });
    // the likelihood's call: the band fluxes alone, without the derived quantities
    g.bench_function("compiled_fluxes", |b| {
        let mut ws = Workspace::default();
        let mut flux = vec![0.0; model.n_bands()];
        b.iter(|| {
            for p in &gals {
                compiled.fluxes_into(&model, p, &mut ws, &mut flux).unwrap();
                black_box(&flux);
            }
        })
    });
    // dense_basis histories: the same tables, the history from dense_basis' GP smoother
    let prior = sbipix::sim::Prior::sbipix_dense_basis();
    let mut rng = sbipix::sim::simulate::sample_rng(1, 0);
    let dense: Vec<_> = (0..gals.len())
        .map(|_| {
            let mut p = prior.sample(&mut rng, &model.config().cosmology).params;
            p.redshift = Z;
            p
        })
        .collect();
    g.bench_function("compiled_dense_basis", |b| {
        let mut ws = Workspace::default();
        let mut flux = vec![0.0; model.n_bands()];
        b.iter(|| {
            for p in &dense {
                black_box(compiled.photometry_into(&model, p, &mut ws, &mut flux).unwrap());
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("compile_tables_1_thread");
    g.sample_size(10);
    for z in [0.5, 3.0, 7.0] {
        g.bench_function(format!("z{z}"), |b| b.iter(|| black_box(CompiledPhotometry::new(&model, z, CompileRange::default()).unwrap())));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
