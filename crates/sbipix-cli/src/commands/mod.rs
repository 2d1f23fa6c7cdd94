//! One file per command: its options (clap), parsed into the library's request, and what it
//! prints. Progress and messages go to stderr, results to stdout.

pub mod attach;
pub mod calibrate;
pub mod data;
pub mod demo;
pub mod demo_survey;
pub mod fit;
pub mod map;
pub mod merge;
pub mod photometry;
pub mod prior;
pub mod simulate;
pub mod survey;
pub mod survey_learn;
pub mod survey_segment;
pub mod train;
pub mod validate;

use crate::args::{Cli, Command};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// A misuse of the command line that clap cannot see (options that do not go together): exit
/// status 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// [`Usage`] as an error to return.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

/// Messages of the library and the commands: stderr.
pub fn log(msg: &str) {
    eprintln!("{msg}");
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(sbipix::Error::invalid("threads", n, "the number of worker threads must be at least 1").into());
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("setting up the thread pool")?;
    }
    match cli.command {
        Command::Data { action } => data::run(action),
        Command::Photometry(a) => photometry::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Survey { action: Some(a), .. } => survey::action(a),
        Command::Survey { action: None, run } => survey::run(run),
        Command::Prior { action } => prior::run(action),
        Command::Simulate(a) => simulate::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Train(a) => train::run(a, cli.threads),
        Command::Validate(a) => validate::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Attach(a) => attach::run(a),
        Command::Map(a) => map::run(a),
        Command::Fit(a) => fit::run(a),
    }
}

/// A progress bar on stderr for `n` items (hidden below 10 000).
pub fn progress_bar(n: u64, what: &str) -> ProgressBar {
    let bar = if n >= 10_000 { ProgressBar::new(n) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(&format!("{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}]"))
            .expect("valid template"),
    );
    bar
}

/// A pixel progress bar for a map, shown once the map is large or refined (≈ 0.8 s a pixel):
/// `(done, total)` → the bar.
pub fn map_progress(refine: bool) -> (ProgressBar, impl Fn(usize, usize) + Sync) {
    let bar = ProgressBar::hidden();
    let min_bar = if refine { 1 } else { 20_000 };
    let b = bar.clone();
    let update = move |done: usize, total: usize| {
        if total >= min_bar && b.is_hidden() {
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            b.set_length(total as u64);
            b.set_style(ProgressStyle::with_template("map {bar:40} {pos}/{len} pixels [{elapsed_precise} < {eta}]").expect("template"));
        }
        b.set_position(done as u64);
    };
    (bar, update)
}

/// Progress of work in stages — `(stage, done, total)` → one bar per stage on stderr, drawn from
/// the stage's first report and cleared when it ends.
pub fn stage_progress() -> impl Fn(&str, usize, usize) + Sync {
    let current: std::sync::Mutex<Option<(String, ProgressBar)>> = std::sync::Mutex::new(None);
    move |stage: &str, done: usize, total: usize| {
        let mut slot = current.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|(s, _)| s != stage) {
            if let Some((_, b)) = slot.take() {
                b.finish_and_clear();
            }
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(&format!("{stage} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}]"))
                    .expect("valid template"),
            );
            *slot = Some((stage.to_string(), b));
        }
        if let Some((_, b)) = slot.as_ref() {
            b.set_position(done as u64);
            if done >= total {
                b.finish_and_clear();
            }
        }
    }
}

/// The band with the largest |median residual| of a posterior-predictive check.
pub fn worst_residual(r: &std::collections::BTreeMap<String, f64>) -> Option<(&String, &f64)> {
    r.iter().max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))
}
