//! The data directory and the file-backed accounts store in it.

use super::DevArgs;
use anyhow::{Context, Result};
use hsbridge_vault::InMemoryAccountStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The data directory, created if needed.
pub(super) fn data_dir(args: &DevArgs) -> Result<PathBuf> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "could not create the data directory {}",
            args.data_dir.display()
        )
    })?;
    Ok(args.data_dir.clone())
}

/// The file-backed accounts store.
pub(super) fn open_store(data_dir: &Path) -> Result<Arc<InMemoryAccountStore>> {
    Ok(Arc::new(
        InMemoryAccountStore::persistent(data_dir.join("accounts.json"))
            .context("could not open the local accounts store; delete accounts.json in the data directory to start over")?,
    ))
}
