//! Exit status and error printing of the real binary: 0 ok (a closed stdout included), 1 failure,
//! 2 usage; `sbipix: error: …` with each cause once.

mod common;
use common::*;

use std::process::{Command, Output, Stdio};

fn status(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed by a signal")
}

/// A bad number is refused by the request before any work (no model, no data, no input file
/// needed), with exit status 2 and the option named as typed.
#[test]
fn bad_numbers_are_usage_errors_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["map", "--cube", "nope.fits", "--out", "o", "--draws", "0"], "--draws 0"),
        (&["map", "--cube", "nope.fits", "--out", "o", "--refine", "--sys-err", "1.5"], "--sys-err 1.5"),
        (&["fit", "--catalog", "nope.csv", "--out", "o.csv", "--draws", "0"], "--draws 0"),
        (&["survey", "--manifest", "nope.csv", "--out", "o", "--draws", "0"], "--draws 0"),
        (&["validate", "--out", "o", "--reference", "5", "--reference-particles", "2"], "--reference-particles 2"),
        (&["simulate", "--n", "0", "--out", "o"], "--n 0"),
        (&["merge", "--data", "one_set", "--out", "o"], "--data"),
        (&["train", "--data", "nope", "--out", "o", "--hidden-layers", "0"], "--hidden-layers 0"),
    ];
    for (args, needle) in cases {
        let o = sbipix(args, dir.path());
        let e = stderr(&o);
        assert_eq!(status(&o), 2, "{args:?}: {e}");
        assert!(e.starts_with("sbipix: error: ") && e.contains(needle), "{args:?}: {e}");
        assert!(!dir.path().join("o").exists() && !dir.path().join("o.csv").exists(), "{args:?} wrote output");
    }
    // clap's own usage errors are 2 as well; a bad --threads too
    assert_eq!(status(&sbipix(&["map", "--no-such-option"], dir.path())), 2);
    let o = sbipix(&["--threads", "0", "data", "path"], dir.path());
    assert_eq!(status(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--threads 0"), "{}", stderr(&o));
}

/// A missing input file is a failure (1), not a usage error, and the message names the path, with
/// the operating system's reason printed once.
#[test]
fn missing_input_file_is_a_failure_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let o = sbipix(&["photometry", "--params", "no_such_params.csv", "--out", "o.csv"], dir.path());
    let e = stderr(&o);
    assert_eq!(status(&o), 1, "{e}");
    assert!(e.starts_with("sbipix: error: ") && e.contains("no_such_params.csv"), "{e}");
    let o = sbipix(&["map", "--cube", "no_such_cube.fits", "--redshift", "1", "--out", "o", "--no-ppc"], dir.path());
    let e = stderr(&o);
    assert_eq!(status(&o), 1, "{e}");
    assert!(e.contains("no_such_cube.fits") && e.contains("no such file"), "{e}");
    // each cause once: no line repeats what an earlier one says
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, l) in lines.iter().enumerate().skip(1) {
        let cause = l.trim_start().trim_start_matches("caused by: ");
        assert!(!lines[..i].iter().any(|p| p.contains(cause)), "repeated cause `{cause}` in:\n{e}");
    }
    assert_eq!(e.matches("no such file").count(), 1, "{e}");
    assert!(!dir.path().join("o").exists() && !dir.path().join("o.csv").exists());
}

/// Output into a pipe whose reader has gone (`sbipix data path | head -0`) ends quietly: status
/// 0, nothing on stderr.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["data", "path"][..], &["prior", "show"][..], &["survey", "show", "jades"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_sbipix"))
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(status(&o), 0, "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}
