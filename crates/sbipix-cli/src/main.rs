//! The `sbipix` command-line tool: `main` → `run` → exit code.
//!
//! What the user typed ([`args`], one `Args` struct per command in [`commands`]) becomes a
//! request of the library (`sbipix::request`), which checks it and carries it out; the commands
//! print what comes back. Exit status: 0 success (also when stdout is closed early: `sbipix … |
//! head`), 1 failure, 2 usage (clap's own errors, a bad option value, arrays of the wrong shape).
//! Errors are printed as `sbipix: error: …` with their causes, each once.

/// `writeln!` to stdout, returning the `io::Result`: a closed stdout (broken pipe) then ends the
/// command quietly instead of panicking as `println!` does.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)
    }};
}

/// `write!` to stdout, as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        write!(o, $($t)*).and_then(|_| o.flush())
    }};
}

mod args;
mod commands;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

// mimalloc: candle allocates a fresh buffer per tensor operation; with glibc's allocator the
// large ones go through mmap/munmap and page faults, which serialise training threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with status 2 (help and version: 0)
    let matches = args::Cli::command().get_matches();
    let cli = args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if matches!(cli.command, args::Command::Train(_)) && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Training parallelises over data chunks itself; candle would otherwise query the CPU
        // count (reading /proc) on every matrix product and split tiny products over threads.
        // SAFETY: still single-threaded here, before any thread is started.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, &option_names(&matches)),
    }
}

/// Prints the error and its causes (a cause whose text an earlier line already holds is left
/// out) and gives the exit status: 2 for usage errors, 1 for every other failure. A broken pipe
/// on stdout is no failure: the reader had enough.
fn report(e: &anyhow::Error, options: &[String]) -> ExitCode {
    if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) {
        return ExitCode::SUCCESS;
    }
    let mut lines: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = describe(cause, options);
        if !lines.iter().any(|l| l.contains(&text)) {
            lines.push(text);
        }
    }
    eprintln!("sbipix: error: {}", lines[0]);
    for l in &lines[1..] {
        eprintln!("  caused by: {l}");
    }
    let usage = e
        .chain()
        .any(|c| c.downcast_ref::<sbipix::Error>().is_some_and(sbipix::Error::is_usage) || c.downcast_ref::<commands::Usage>().is_some());
    if usage { ExitCode::from(2) } else { ExitCode::FAILURE }
}

/// One error's text; an invalid argument that is an option of this command is named as the
/// option (`draws` → `--draws`).
fn describe(e: &(dyn std::error::Error + 'static), options: &[String]) -> String {
    if let Some(sbipix::Error::InvalidArgument { name, value, reason }) = e.downcast_ref::<sbipix::Error>() {
        let flag = name.replace('_', "-");
        if options.contains(&flag) {
            return format!("--{flag} {value}: {reason}");
        }
    }
    e.to_string()
}

/// The long options of the command that ran (its subcommand path, and the global ones).
fn option_names(matches: &clap::ArgMatches) -> Vec<String> {
    let mut cmd = args::Cli::command();
    cmd.build();
    let mut names: Vec<String> = cmd.get_arguments().filter_map(|a| a.get_long().map(String::from)).collect();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        let Some(c) = cmd.find_subcommand(name).cloned() else { break };
        names.extend(c.get_arguments().filter_map(|a| a.get_long().map(String::from)));
        (cmd, m) = (c, sub);
    }
    names
}
