//! `skelgen new NAME`: a ready crate, as libbpf-bootstrap and aya-template
//! give their users: `build.rs` with `skelgen::Builder`, a tracepoint + ring
//! buffer program with a `const volatile` filter, a `main.rs` that opens,
//! configures, loads, attaches and prints events until Ctrl-C, a
//! `.gitignore` and a README.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Arguments of `skelgen new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The crate's name (and its directory): letters, digits, `-` and `_`
    name: String,
    /// Create the crate in DIR/NAME instead of ./NAME
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Depend on skelgen's crates by path, from the skelgen checkout DIR
    /// (default: the checkout this skelgen was built from, if it still
    /// exists; else the crates.io versions)
    #[arg(long, value_name = "DIR", conflicts_with = "crates_io")]
    path_deps: Option<PathBuf>,
    /// Depend on the crates.io versions even when built from a checkout
    #[arg(long)]
    crates_io: bool,
}

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.tmpl");
const BUILD_RS: &str = include_str!("../../templates/build.rs.tmpl");
const BPF_C: &str = include_str!("../../templates/bpf.c.tmpl");
const MAIN_RS: &str = include_str!("../../templates/main.rs.tmpl");
const GITIGNORE: &str = include_str!("../../templates/gitignore.tmpl");
const README: &str = include_str!("../../templates/README.md.tmpl");

/// Writes the crate.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(&args.name);
    if root.exists() {
        anyhow::bail!("{} already exists", root.display());
    }
    let deps = if args.crates_io {
        Deps::CratesIo
    } else {
        match args.path_deps.clone().or_else(checkout) {
            Some(dir) => Deps::Path(
                dir.canonicalize()
                    .with_context(|| format!("--path-deps {}", dir.display()))?,
            ),
            None => Deps::CratesIo,
        }
    };
    let names = Names::new(&args.name);
    let files: [(&str, &str); 6] = [
        ("Cargo.toml", CARGO_TOML),
        ("build.rs", BUILD_RS),
        ("src/main.rs", MAIN_RS),
        (".gitignore", GITIGNORE),
        ("README.md", README),
        ("", BPF_C),
    ];
    for (path, template) in files {
        let path = if path.is_empty() {
            format!("src/bpf/{}.bpf.c", names.bpf)
        } else {
            path.to_string()
        };
        let file = root.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, render(template, &names, &deps)?)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    eprintln!(
        "skelgen: created {} ({}); build and run it as root: cd {} && cargo run",
        root.display(),
        match &deps {
            Deps::Path(dir) => format!("skelgen crates by path from {}", dir.display()),
            Deps::CratesIo => format!("skelgen {} from crates.io", env!("CARGO_PKG_VERSION")),
        },
        root.display()
    );
    Ok(())
}

/// Where the generated crate gets skelgen-runtime and skelgen from.
enum Deps {
    /// A skelgen checkout.
    Path(PathBuf),
    /// crates.io, at this skelgen's version.
    CratesIo,
}

/// The names the templates use.
struct Names {
    /// The crate name, as given (`my-tool`).
    krate: String,
    /// The BPF file stem (`my_tool`): also the skeleton's object name.
    bpf: String,
    /// The skeleton struct (`MyToolBpf`), as the generator names it for
    /// the object `my_tool.bpf.o`.
    skel: String,
}

impl Names {
    fn new(name: &str) -> Self {
        let bpf = name.replace('-', "_");
        let skel = format!("{bpf}_bpf")
            .split('_')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        Self {
            krate: name.to_string(),
            bpf,
            skel,
        }
    }
}

/// A crate name cargo accepts and from which a C file and a Rust type can
/// be named: ASCII letters, digits, `-`, `_`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        anyhow::bail!(
            "invalid crate name `{name}`: use ASCII letters, digits, `-` and `_`, starting with a letter"
        );
    }
    Ok(())
}

/// The checkout this binary was built from, if it is still there: its
/// workspace has runtime/ and skelgen/ beside cli/.
fn checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let is_ours = |dir: &str, name: &str| {
        std::fs::read_to_string(root.join(dir).join("Cargo.toml"))
            .is_ok_and(|t| t.contains(&format!("name = \"{name}\"")))
    };
    (is_ours("runtime", "skelgen-runtime") && is_ours("skelgen", "skelgen"))
        .then(|| root.to_path_buf())
}

fn render(template: &str, names: &Names, deps: &Deps) -> anyhow::Result<String> {
    let version = env!("CARGO_PKG_VERSION");
    let dep = |name: &str, dir: &str| match deps {
        Deps::Path(root) => {
            let path = root.join(dir);
            // TOML basic strings: a path with `"` or `\` would need escapes.
            let p = path.to_string_lossy();
            if p.contains(['"', '\\']) {
                anyhow::bail!("path {p} cannot be written into Cargo.toml as is");
            }
            Ok(format!(
                "{name} = {{ path = \"{p}\", version = \"{version}\" }}"
            ))
        }
        Deps::CratesIo => Ok(format!("{name} = \"{version}\"")),
    };
    Ok(template
        .replace("{{runtime_dep}}", &dep("skelgen-runtime", "runtime")?)
        .replace("{{skelgen_dep}}", &dep("skelgen", "skelgen")?)
        .replace("{{crate}}", &names.krate)
        .replace("{{bpf}}", &names.bpf)
        .replace("{{Skel}}", &names.skel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_generator() {
        let n = Names::new("my-tool");
        assert_eq!((n.bpf.as_str(), n.skel.as_str()), ("my_tool", "MyToolBpf"));
        assert_eq!(Names::new("demo").skel, "DemoBpf");
        assert!(check_name("9x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("ok-name_2").is_ok());
    }
}
