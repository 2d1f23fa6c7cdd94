//! The `sbipix` command-line tool: `main` → `run` → exit code; errors printed with their cause chain.

mod args;
mod commands;
mod demo;
mod inputs;
mod map_cmd;
mod population_cmd;
mod survey_cmd;
mod train_cmd;

use clap::Parser;

// mimalloc: candle allocates a fresh buffer per tensor operation; with glibc's allocator the
// large ones go through mmap/munmap and page faults, which serialise training threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    if matches!(cli.command, args::Command::Train(_)) && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Training parallelises over data chunks itself; candle would otherwise query the CPU
        // count (reading /proc) on every matrix product and split tiny products over threads.
        // SAFETY: still single-threaded here, before any thread is started.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sbipix: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
