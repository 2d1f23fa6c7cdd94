//! `sbipix train`.

use crate::args::{FlowArg, ScheduleArg, TrainArgs, ValidateArgs};
use crate::commands::log;
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sbipix::flow::Architecture;
use sbipix::flow::dense::Activation;
use sbipix::flow::train::{Schedule, TrainConfig};
use sbipix::inference::training::{TrainRun, train_model};
use std::path::PathBuf;

pub fn train(a: TrainArgs, threads: Option<usize>) -> Result<()> {
    let base = match a.flow {
        FlowArg::Nsf => TrainConfig::nsf(),
        FlowArg::Maf => TrainConfig::maf(),
    };
    if a.hidden_layers == 0 {
        bail!("--hidden-layers must be at least 1");
    }
    let architecture = match a.flow {
        FlowArg::Nsf => Architecture::Nsf {
            layers: a.layers,
            hidden: a.hidden,
            extra_hidden_layers: a.hidden_layers - 1,
            bins: a.bins,
            tail_bound: 4.0,
            affine_hidden: a.affine_hidden,
        },
        FlowArg::Maf => Architecture::Maf { layers: a.layers, hidden: a.hidden, blocks: a.hidden_layers, activation: Activation::Relu },
    };
    let cfg = TrainConfig {
        architecture,
        batch_size: a.batch_size,
        learning_rate: a.lr.unwrap_or(base.learning_rate),
        max_epochs: a.max_epochs,
        patience: a.patience,
        schedule: match a.schedule {
            ScheduleArg::Plateau => Schedule::Plateau,
            ScheduleArg::Cosine => Schedule::Cosine,
        },
        seed: a.seed,
        threads: threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        ..base
    };
    if a.out.exists() && !a.overwrite {
        bail!("{} already exists (use --overwrite to replace it)", a.out.display());
    }
    let checkpoint = a.checkpoint.clone().unwrap_or_else(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".checkpoint");
        PathBuf::from(p)
    });
    if a.resume && !checkpoint.join("checkpoint.json").is_file() {
        bail!("--resume: no checkpoint in {}", checkpoint.display());
    }
    let bar = ProgressBar::new(cfg.max_epochs as u64);
    bar.set_style(ProgressStyle::with_template("train {bar:30} epoch {pos}/{len} {msg} [{elapsed_precise}]").expect("valid template"));
    let t0 = std::time::Instant::now();
    let (m, report) = train_model(
        &a.data,
        &a.out,
        &cfg,
        TrainRun { checkpoint: Some(&checkpoint), resume: a.resume, overwrite: a.overwrite, params: a.params.as_deref() },
        &mut |e| {
            bar.set_position(e.epoch as u64);
            bar.set_message(format!(
                "train {:.4} val {:.4} lr {:.1e} ({:.1} s/epoch)",
                e.train_loss, e.val_loss, e.learning_rate, e.seconds
            ));
        },
    )?;
    bar.finish_and_clear();
    log(&format!(
        "sbipix: trained {} epochs in {:.0} s (best epoch {}, validation log q = {:.4}{}) → {}",
        report.epochs.len(),
        t0.elapsed().as_secs_f64(),
        report.best_epoch,
        report.best_val_log_prob,
        if report.stopped_early { ", stopped early" } else { "" },
        a.out.display()
    ));
    log(&format!("  parameters: {}", m.parameters.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")));
    // The checkpoint has served its purpose once the model is written.
    let _ = std::fs::remove_dir_all(&checkpoint);
    Ok(())
}

/// The model folder named on the command line (`default` → the built-in model).
pub fn resolve_model(name: &str) -> Result<PathBuf> {
    if name == "default" {
        return Ok(sbipix::default_model_dir()?);
    }
    Ok(PathBuf::from(name))
}

pub fn validate(a: ValidateArgs) -> Result<()> {
    let model = resolve_model(&a.model)?;
    if let Some(atlas) = &a.against {
        let r = sbipix::validation::mismatch::validate_against(
            &model,
            atlas,
            a.seed,
            a.draws,
            a.snr_min,
            !a.atlas_has_1pz,
            &a.out,
            a.overwrite,
            &log,
        )?;
        let names: Vec<String> = r.parameters.keys().cloned().collect();
        println!(
            "{} of {} rows of {} (S/N > {}):\n{}",
            r.n_used,
            r.n_rows,
            r.atlas,
            r.snr_min,
            sbipix::validation::report::metrics_table(&r.parameters, &names)
        );
        return Ok(());
    }
    let store = sbipix::io::DataStore::from_env()?;
    if a.reference > 0 && a.reference_particles < 100 {
        bail!("--reference-particles must be at least 100 (got {})", a.reference_particles);
    }
    let refo = sbipix::validation::simulated::ReferenceOptions { cases: a.reference, particles: a.reference_particles };
    let refine = a.refine.settings()?;
    let r =
        sbipix::validation::simulated::validate(&store, &model, a.n, a.seed, a.draws, a.snr_min, refine, refo, &a.out, a.overwrite, &log)?;
    let names: Vec<String> = r.parameters.keys().cloned().collect();
    println!(
        "test cases with S/N > {} ({} of {}):\n{}",
        r.snr_min,
        r.n_selected,
        r.n,
        sbipix::validation::report::metrics_table(&r.parameters, &names)
    );
    println!("all test cases:\n{}", sbipix::validation::report::metrics_table(&r.parameters_all, &names));
    if let Some(c) = &r.reference {
        println!("against the likelihood-based reference posterior ({} cases):", c.cases);
        println!("{:<24} {:>10} {:>12} {:>16} {:>18}", "parameter", "R² sbipix", "R² reference", "R² ref. mean", "median in ref 68 %");
        for n in &names {
            println!(
                "{:<24} {:>10.3} {:>12.3} {:>16.3} {:>18.2}",
                n, c.model[n].r2, c.reference[n].r2, c.reference_mean_r2[n], c.model_median_in_reference_68[n]
            );
        }
    }
    log(&format!(
        "sbipix: TARP max |ECP − α| = {:.3}; report in {} ({:.0} s)",
        r.tarp.max_deviation,
        a.out.join("report.md").display(),
        r.seconds
    ));
    Ok(())
}
