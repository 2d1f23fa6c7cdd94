//! `sbipix merge`: training sets that differ only in their redshift range, as one.

use super::log;
use anyhow::Result;
use sbipix::request::MergeRequest;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The training sets (at least two): the same prior but for its redshift range, the same
    /// survey, bands, drop rate and forward model. `--data A --data B` or `--data A,B`.
    #[arg(long, required = true, value_delimiter = ',')]
    pub data: Vec<PathBuf>,
    /// Output folder (must not exist unless --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(a: MergeArgs) -> Result<()> {
    let req = MergeRequest { data: a.data, out: a.out, overwrite: a.overwrite };
    let m = req.run()?;
    let parts: Vec<String> = m.parts.iter().map(|p| format!("{} ({}, z {}–{})", p.path, p.n, p.redshift_min, p.redshift_max)).collect();
    log(&format!("sbipix: {} simulations merged from {} → {}", m.n, parts.join(" + "), req.out.display()));
    Ok(())
}
