//! `sbipix demo`: placeholder replaced below.
use anyhow::Result;
use std::path::Path;
pub fn demo(_out: &Path) -> Result<()> {
    anyhow::bail!("not yet")
}
