//! Exact posteriors where the network knows nothing (issue 17: ≤ 50 ms per pixel when the
//! sampler must start from the prior): real JADES pixels (`../shared/real_data/jades_gsz14_pixels`,
//! the first 64 with mean S/N > 5 over F277W, F356W, F444W, at z = 3 as the maps' benchmark),
//! their "network" draws the θ of random simulations from the prior at z = 3 — proposals that say
//! nothing about the pixel, so that the mode searches start anywhere and most pixels go to the
//! tempered SMC from the prior. `refine_all` on all cores (2 here), 5 % systematic error as the
//! maps' default.
//!
//! `cargo bench -p sbipix --bench refine`; results in BENCHMARKS.md. Skipped (with a message)
//! where the real data are not there.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sbipix::inference::refine::{RefineSettings, refine_all};
use sbipix::io::DataStore;
use sbipix::sim::{ParamPrior, Prior, SimulationSpec, Survey};
use sbipix::sps::ModelConfig;
use sbipix::{FilterChoice, build_sps_model};
use std::path::PathBuf;

const Z: f64 = 3.0;
const PIXELS: usize = 64;
const DRAWS: usize = 500;
/// The proposals' simulations (a seed of this benchmark's own).
const SEED: u64 = 50_050;
/// The cube's band order (its README).
const CUBE_BANDS: [&str; 19] = [
    "F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F430M", "F444W", "F460M", "F480M", "F435W",
    "F606W", "F775W", "F814W", "F850LP",
];

fn cube_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SBIPIX_SHARED").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")),
        Some(PathBuf::from("/work/shared")),
    ];
    candidates.into_iter().flatten().map(|p| p.join("real_data/jades_gsz14_pixels")).find(|p| p.join("flux_ujy.npy").exists())
}

fn bench(c: &mut Criterion) {
    let Some(dir) = cube_dir() else {
        eprintln!("refine bench: the real JADES pixels (../shared/real_data/jades_gsz14_pixels) are not here; skipped");
        return;
    };
    let store = DataStore::from_env().unwrap();
    let model = build_sps_model(&store, &FilterChoice::Jades, ModelConfig::default(), &|m| eprintln!("{m}")).unwrap();
    let (flux_all, n_all, nc) = sbipix::io::arrays::read_npy_2d(&dir.join("flux_ujy.npy")).unwrap();
    let (err_all, _, _) = sbipix::io::arrays::read_npy_2d(&dir.join("err_ujy.npy")).unwrap();
    assert_eq!(nc, CUBE_BANDS.len());
    // cube column of each model band
    let col: Vec<usize> = model.band_names().iter().map(|b| CUBE_BANDS.iter().position(|x| x == b).expect("a JADES band")).collect();
    let snr_cols: Vec<usize> = ["F277W", "F356W", "F444W"].iter().map(|b| CUBE_BANDS.iter().position(|x| x == b).unwrap()).collect();
    let picked: Vec<usize> = (0..n_all)
        .filter(|&i| snr_cols.iter().map(|&b| flux_all[i * nc + b] / err_all[i * nc + b]).sum::<f64>() / 3.0 > 5.0)
        .take(PIXELS)
        .collect();
    assert_eq!(picked.len(), PIXELS);
    let (mut flux, mut sigma, mut seen) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &picked {
        for &b in &col {
            let (f, e) = (flux_all[i * nc + b], err_all[i * nc + b]);
            flux.push(f);
            sigma.push(e);
            seen.push(e > 0.0 && e.is_finite() && f.is_finite());
        }
    }
    // proposals that know nothing: θ of random simulations from the prior at the same redshift
    let prior = Prior::sbipix_delayed_tau().with_parameter("redshift", ParamPrior::Fixed { value: Z }).unwrap();
    let noise = Survey::jades().sampler(&model.band_names()).unwrap();
    let set = sbipix::sim::simulate(&model, &prior, &noise, SimulationSpec { n: 2000, seed: SEED, drop_rate: 0.0 }, &|_| {}).unwrap();
    let p = set.parameter_names.len();
    let mut draws0 = Vec::with_capacity(PIXELS * DRAWS * p);
    for k in 0..PIXELS {
        for d in 0..DRAWS {
            let o = (k * 37 + d * 11) % set.redshift.len();
            draws0.extend_from_slice(&set.theta[o * p..(o + 1) * p]);
        }
    }
    let z = vec![Z; PIXELS];
    let settings = RefineSettings { sys_frac: 0.05, ..RefineSettings::default() };
    let run = || {
        let mut draws = draws0.clone();
        refine_all(&model, &prior, &flux, &sigma, &seen, &z, &set.parameter_names, &mut draws, settings, SEED, &|_| {}).unwrap()
    };
    let out = run();
    let n = out.len() as f64;
    eprintln!(
        "refine bench: {:.0} % refined, {:.0} % by the exact SMC, {:.0} likelihood evaluations per pixel",
        100.0 * out.iter().filter(|o| o.refined).count() as f64 / n,
        100.0 * out.iter().filter(|o| o.exact_smc).count() as f64 / n,
        out.iter().map(|o| o.evaluations).sum::<usize>() as f64 / n
    );
    let mut g = c.benchmark_group("exact_posteriors_jades_z3");
    g.throughput(Throughput::Elements(PIXELS as u64));
    g.sample_size(10);
    g.bench_function("useless_proposals", |b| b.iter(run));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
