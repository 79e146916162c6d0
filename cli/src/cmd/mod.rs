//! One module per subcommand: its clap arguments and its `run`.

use std::path::Path;

use anyhow::Context as _;

pub mod btf;
pub mod generate;
pub mod inspect;
pub mod link;
pub mod min_core_btf;
pub mod new;

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
