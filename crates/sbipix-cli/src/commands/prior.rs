//! `sbipix prior show`.

use crate::commands::simulate::SfhPriorArg;
use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PriorAction {
    /// Print a built-in prior: SBIPIX's of an SFH family, or sbipix's physical one (`--sfh physical`).
    Show {
        #[arg(long, value_enum, default_value_t = sbipix::request::PriorFamily::default().into())]
        sfh: SfhPriorArg,
    },
}

pub fn run(action: PriorAction) -> Result<()> {
    match action {
        PriorAction::Show { sfh } => out!("{}", sbipix::request::PriorFamily::from(sfh).toml())?,
    }
    Ok(())
}
