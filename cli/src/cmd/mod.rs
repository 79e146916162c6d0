//! One module per subcommand: its clap arguments and its `run`.

use std::path::Path;

use anyhow::Context as _;

pub mod generate;
pub mod inspect;

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
