//! `sbipix prior show`.

use crate::commands::simulate::SfhPriorArg;
use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PriorAction {
    /// Print the built-in prior of an SFH family.
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
