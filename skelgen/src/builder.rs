//! The build-script front end: compile a `.bpf.c` with clang and write its
//! skeleton into `OUT_DIR`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     skelgen::Builder::new()
//!         .source("src/bpf/vfsstat.bpf.c")
//!         .include("include")
//!         .build()?;
//!     Ok(())
//! }
//! // src/main.rs: include!(concat!(env!("OUT_DIR"), "/vfsstat.skel.rs"));
//! ```
//!
//! What [`Builder::build`] does:
//!
//! 1. runs `$CLANG` (or `clang`) with `-g -O2 -target bpf
//!    -D__TARGET_ARCH_<arch>`, then `-I` for each [`Builder::include`], then
//!    `-idirafter` for each of the host's system include directories (as
//!    clang lists them for the host target, so `<linux/bpf.h>` finds
//!    `<asm/types.h>`; libbpf-tools does the same), then
//!    [`Builder::clang_args`], then `-MD -MF <depfile>`, writing
//!    `OUT_DIR/<file>.bpf.o`;
//! 2. prints `cargo:rerun-if-changed=` for the source and for every header
//!    clang read (from the depfile), and `cargo:rerun-if-env-changed=CLANG`;
//! 3. strips the DWARF ([`crate::strip::strip_debug`]) into
//!    `OUT_DIR/<stem>.embed.bpf.o`, which the skeleton embeds with
//!    `include_bytes!` (so the binary carries no debug info and rustc
//!    rebuilds when it changes);
//! 4. generates the skeleton and writes `OUT_DIR/<stem>.skel.rs` only if its
//!    contents changed ([`crate::write_if_changed`]).
//!
//! `<stem>` is the file name up to its first dot (`vfsstat.bpf.c` ->
//! `vfsstat`), as libbpf names objects.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::strip::{strip_debug, StripError};
use crate::{default_name, generate_with_warnings, write_if_changed, Options};

/// An error in [`Builder::build`].
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Neither [`Builder::source`] nor [`Builder::object`] was called.
    #[error("no input: call Builder::source(\"x.bpf.c\") or Builder::object(\"x.bpf.o\")")]
    NoInput,
    /// No output directory: not run by cargo and no [`Builder::out_dir`].
    #[error("OUT_DIR is not set: run from a build script or call Builder::out_dir()")]
    NoOutDir,
    /// The target architecture has no `__TARGET_ARCH_*` spelling known here.
    #[error(
        "unsupported target architecture '{arch}': skelgen knows x86_64, aarch64, riscv64, \
         s390x, powerpc64 and loongarch64 (pass -D__TARGET_ARCH_<name> in clang_args and set \
         Builder::target_arch to one of those to override)"
    )]
    UnknownArch {
        /// `CARGO_CFG_TARGET_ARCH` or [`Builder::target_arch`].
        arch: String,
    },
    /// The clang binary does not exist.
    #[error("clang not found (tried '{}'): install clang (e.g. `apt install clang`) or set CLANG to its path", clang.display())]
    ClangNotFound {
        /// The program that was tried.
        clang: PathBuf,
    },
    /// clang exists but could not be started.
    #[error("cannot run '{}'", clang.display())]
    ClangSpawn {
        /// The program that was tried.
        clang: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// clang ran and failed; `stderr` is everything it printed.
    #[error("clang failed ({status}):\n{stderr}")]
    Clang {
        /// clang's exit status.
        status: ExitStatus,
        /// clang's standard error, in full.
        stderr: String,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The object could not be stripped of its debug sections.
    #[error("cannot strip debug sections from {}", path.display())]
    Strip {
        /// The object.
        path: PathBuf,
        /// Why.
        #[source]
        source: StripError,
    },
    /// The skeleton could not be generated.
    #[error("cannot generate a skeleton for {}", path.display())]
    Generate {
        /// The object.
        path: PathBuf,
        /// The generator's error.
        #[source]
        source: crate::Error,
    },
    /// The inputs could not be linked into one object
    /// ([`Builder::add_source`] / [`Builder::add_object`]).
    #[error("cannot link {}", inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Link {
        /// The objects, in link order.
        inputs: Vec<PathBuf>,
        /// The linker's error.
        #[source]
        source: crate::link::LinkError,
    },
    /// `vmlinux.h` could not be generated ([`Builder::vmlinux_h`]).
    #[error("cannot generate vmlinux.h")]
    VmlinuxH(#[source] Box<crate::btf_c::VmlinuxHError>),
    /// The `cargo:` lines could not be written.
    #[error("cannot write cargo instructions")]
    CargoOutput {
        /// Why.
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
enum Input {
    Source(PathBuf),
    Object(PathBuf),
}

/// Compiles a BPF C source (or takes a compiled object) and writes its
/// skeleton; see the [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    inputs: Vec<Input>,
    clang: Option<PathBuf>,
    clang_args: Vec<OsString>,
    includes: Vec<PathBuf>,
    name: Option<String>,
    out_dir: Option<PathBuf>,
    target_arch: Option<String>,
    vmlinux_h: Option<PathBuf>,
    subskeleton: bool,
    reachable_types_only: bool,
}

/// Builds the skeleton of one `.bpf.c` with the default settings:
/// `Builder::new().source(source).build()`.
pub fn build(source: impl Into<PathBuf>) -> Result<PathBuf, BuildError> {
    Builder::new().source(source).build()
}

impl Builder {
    /// A builder with the defaults described on each setter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The BPF C source to compile (replaces earlier inputs).
    pub fn source(mut self, path: impl Into<PathBuf>) -> Self {
        self.inputs = vec![Input::Source(path.into())];
        self
    }

    /// Adds a BPF C source to compile. With more than one input, the
    /// objects are statically linked in the order given (as
    /// `bpftool gen object` does, see [`crate::link`]) into
    /// `OUT_DIR/linked/<first input's stem>.bpf.o`, and the skeleton is that
    /// object's, named after the first input.
    pub fn add_source(mut self, path: impl Into<PathBuf>) -> Self {
        self.inputs.push(Input::Source(path.into()));
        self
    }

    /// Adds an already compiled object to link (see [`Builder::add_source`]).
    pub fn add_object(mut self, path: impl Into<PathBuf>) -> Self {
        self.inputs.push(Input::Object(path.into()));
        self
    }

    /// An already compiled object to generate from, skipping clang
    /// (replaces earlier inputs).
    pub fn object(mut self, path: impl Into<PathBuf>) -> Self {
        self.inputs = vec![Input::Object(path.into())];
        self
    }

    /// The clang to run. Default: `$CLANG`, then `clang` on `PATH`.
    pub fn clang(mut self, path: impl Into<PathBuf>) -> Self {
        self.clang = Some(path.into());
        self
    }

    /// Only the types reachable from maps and global data in the skeleton's
    /// `types` module: see [`Options::reachable_types_only`].
    pub fn reachable_types_only(mut self, on: bool) -> Self {
        self.reachable_types_only = on;
        self
    }

    /// Extra clang arguments, placed after the defaults and the includes
    /// (so they can override them). May be called more than once.
    pub fn clang_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.clang_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Generates `vmlinux.h` from the BTF file `btf` into `OUT_DIR/vmlinux/`
    /// and puts that directory first on clang's include path, so that
    /// `#include "vmlinux.h"` needs no committed header and no bpftool.
    /// [`skelgen_runtime::btf::VMLINUX_BTF_PATH`] is the running kernel's
    /// (see [`Builder::vmlinux_h_from_running_kernel`]); raw BTF and ELF
    /// files with `.BTF` work too.
    pub fn vmlinux_h(mut self, btf: impl Into<PathBuf>) -> Self {
        self.vmlinux_h = Some(btf.into());
        self
    }

    /// [`Builder::vmlinux_h`] from `/sys/kernel/btf/vmlinux`.
    pub fn vmlinux_h_from_running_kernel(self) -> Self {
        self.vmlinux_h(skelgen_runtime::btf::VMLINUX_BTF_PATH)
    }

    /// Adds `-I <dir>`. May be called more than once.
    pub fn include(mut self, dir: impl Into<PathBuf>) -> Self {
        self.includes.push(dir.into());
        self
    }

    /// The object name from which the Rust names derive. Default: bpftool's
    /// name for the object file (`vfsstat.bpf.o` -> `vfsstat_bpf`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Writes the object's subskeleton (`OUT_DIR/<stem>.subskel.rs`, see
    /// [`crate::generate_subskeleton`]) instead of its skeleton: for a BPF
    /// library, a typed view of its maps, programs and variables inside a
    /// final object it is linked into.
    pub fn subskeleton(mut self, on: bool) -> Self {
        self.subskeleton = on;
        self
    }

    /// Where the object and the skeleton go. Default: `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The Rust target architecture (`x86_64`, `aarch64`, ...) that selects
    /// `-D__TARGET_ARCH_<arch>`. Default: `$CARGO_CFG_TARGET_ARCH`, which
    /// cargo sets for build scripts, then the host's architecture.
    pub fn target_arch(mut self, arch: impl Into<String>) -> Self {
        self.target_arch = Some(arch.into());
        self
    }

    /// Builds, printing the `cargo:` instructions on standard output, and
    /// returns the path of the written skeleton.
    pub fn build(&self) -> Result<PathBuf, BuildError> {
        self.build_to(&mut io::stdout().lock())
    }

    /// Builds, writing the `cargo:` instructions to `cargo` (a test can
    /// capture them in a `Vec<u8>`), and returns the path of the skeleton.
    pub fn build_to(&self, cargo: &mut impl Write) -> Result<PathBuf, BuildError> {
        if self.inputs.is_empty() {
            return Err(BuildError::NoInput);
        }
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError::NoOutDir)?,
        };
        let out_dir = std::path::absolute(&out_dir).map_err(|source| BuildError::Write {
            path: out_dir.clone(),
            source,
        })?;
        std::fs::create_dir_all(&out_dir).map_err(|source| BuildError::Write {
            path: out_dir.clone(),
            source,
        })?;

        let mut lines = Vec::new();
        let mut objects = Vec::with_capacity(self.inputs.len());
        let mut object = Ok(PathBuf::new());
        for input in &self.inputs {
            let one = match input {
                Input::Object(path) => {
                    lines.push(format!("cargo:rerun-if-changed={}", path.display()));
                    Ok(path.clone())
                }
                Input::Source(source) => self.compile(source, &out_dir, &mut lines),
            };
            match one {
                Ok(path) => objects.push(path),
                Err(e) => {
                    object = Err(e);
                    break;
                }
            }
        }
        if object.is_ok() {
            object = match objects.as_slice() {
                [one] => Ok(one.clone()),
                _ => link_objects(&objects, &out_dir),
            };
        }
        let result = object.and_then(|object| self.generate(&object, &out_dir, &mut lines));
        // The rerun lines matter most when the build failed: the user's fix
        // to a header must trigger the next run.
        for line in &lines {
            writeln!(cargo, "{line}").map_err(|source| BuildError::CargoOutput { source })?;
        }
        result
    }

    /// Runs clang; returns the object path and records the cargo lines.
    fn compile(
        &self,
        source: &Path,
        out_dir: &Path,
        lines: &mut Vec<String>,
    ) -> Result<PathBuf, BuildError> {
        lines.push(format!("cargo:rerun-if-changed={}", source.display()));
        let clang = match &self.clang {
            Some(c) => c.clone(),
            None => {
                lines.push("cargo:rerun-if-env-changed=CLANG".into());
                std::env::var_os("CLANG")
                    .filter(|c| !c.is_empty())
                    .map_or_else(|| PathBuf::from("clang"), PathBuf::from)
            }
        };
        let arch = match &self.target_arch {
            Some(a) => a.clone(),
            None => std::env::var("CARGO_CFG_TARGET_ARCH")
                .unwrap_or_else(|_| std::env::consts::ARCH.to_string()),
        };
        let bpf_arch = bpf_target_arch(&arch).ok_or(BuildError::UnknownArch { arch })?;

        let file_name = source
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bpf.c".into());
        let object_name = match file_name.strip_suffix(".c") {
            Some(stem) => format!("{stem}.o"),
            None => format!("{file_name}.o"),
        };
        let object = out_dir.join(&object_name);
        let depfile = out_dir.join(format!("{object_name}.d"));

        let mut cmd = Command::new(&clang);
        cmd.args(["-g", "-O2", "-target", "bpf"])
            .arg(format!("-D__TARGET_ARCH_{bpf_arch}"));
        if let Some(btf) = &self.vmlinux_h {
            lines.push(format!("cargo:rerun-if-changed={}", btf.display()));
            let dir = out_dir.join("vmlinux");
            crate::btf_c::write_vmlinux_h(btf, &dir)
                .map_err(|e| BuildError::VmlinuxH(Box::new(e)))?;
            cmd.arg("-I").arg(&dir);
        }
        for dir in &self.includes {
            cmd.arg("-I").arg(dir);
        }
        for dir in system_includes(&clang) {
            cmd.arg("-idirafter").arg(dir);
        }
        cmd.args(&self.clang_args)
            .arg("-MD")
            .arg("-MF")
            .arg(&depfile)
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&object);
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BuildError::ClangNotFound { clang })
            }
            Err(source) => return Err(BuildError::ClangSpawn { clang, source }),
        };
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // The depfile is written even when compilation fails after
        // preprocessing; read what there is so the fix retriggers us.
        if let Ok(deps) = std::fs::read_to_string(&depfile) {
            let mut seen = BTreeSet::from([source.to_path_buf()]);
            for dep in parse_depfile(&deps) {
                if seen.insert(dep.clone()) {
                    lines.push(format!("cargo:rerun-if-changed={}", dep.display()));
                }
            }
        }
        if !output.status.success() {
            return Err(BuildError::Clang {
                status: output.status,
                stderr,
            });
        }
        for warning in stderr.lines().filter(|l| !l.trim().is_empty()) {
            lines.push(format!("cargo:warning={warning}"));
        }
        Ok(object)
    }

    /// Strips the object, generates and writes the skeleton.
    fn generate(
        &self,
        object: &Path,
        out_dir: &Path,
        lines: &mut Vec<String>,
    ) -> Result<PathBuf, BuildError> {
        let bytes = std::fs::read(object).map_err(|source| BuildError::Read {
            path: object.to_path_buf(),
            source,
        })?;
        let file_name = object
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file_name.split('.').next().unwrap_or_default();
        let stem = if stem.is_empty() { "bpf" } else { stem };

        let stripped = strip_debug(&bytes).map_err(|source| BuildError::Strip {
            path: object.to_path_buf(),
            source,
        })?;
        let embed = out_dir.join(format!("{stem}.embed.bpf.o"));
        write_if_changed(&embed, &stripped).map_err(|source| BuildError::Write {
            path: embed.clone(),
            source,
        })?;

        let name = self
            .name
            .clone()
            .unwrap_or_else(|| default_name(&file_name));
        let gen_err = |source| BuildError::Generate {
            path: object.to_path_buf(),
            source,
        };
        let (skel, kind) = if self.subskeleton {
            let options = Options::new().name(name);
            let code = crate::generate_subskeleton(&stripped, &options).map_err(gen_err)?;
            (code, "subskel")
        } else {
            let options = Options::new()
                .name(name)
                .embed_path(embed)
                .reachable_types_only(self.reachable_types_only);
            let generated = generate_with_warnings(&stripped, &options).map_err(gen_err)?;
            for w in &generated.warnings {
                lines.push(format!("cargo:warning={}: {w}", object.display()));
            }
            (generated.code, "skel")
        };
        let skel_path = out_dir.join(format!("{stem}.{kind}.rs"));
        write_if_changed(&skel_path, skel.as_bytes()).map_err(|source| BuildError::Write {
            path: skel_path.clone(),
            source,
        })?;
        Ok(skel_path)
    }
}

/// Links `objects` into `out_dir/linked/<first stem>.bpf.o`.
fn link_objects(objects: &[PathBuf], out_dir: &Path) -> Result<PathBuf, BuildError> {
    let inputs = objects
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|b| (p.display().to_string(), b))
                .map_err(|source| BuildError::Read {
                    path: p.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let linked = crate::link::link(&inputs).map_err(|source| BuildError::Link {
        inputs: objects.to_vec(),
        source,
    })?;
    let first = objects
        .first()
        .and_then(|p| p.file_name())
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = first
        .split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("bpf");
    let dir = out_dir.join("linked");
    let path = dir.join(format!("{stem}.bpf.o"));
    std::fs::create_dir_all(&dir)
        .and_then(|()| write_if_changed(&path, &linked))
        .map_err(|source| BuildError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// The host compiler's system include directories, which clang does not
/// search for `-target bpf`; passed as `-idirafter` (searched last), as
/// libbpf-tools does, so that `<linux/bpf.h>` finds `<asm/types.h>`.
/// Empty if clang cannot tell (the real compile then reports the problem).
fn system_includes(clang: &Path) -> Vec<PathBuf> {
    let Ok(output) = Command::new(clang)
        .args(["-v", "-E", "-x", "c", "-"])
        .stdin(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .skip_while(|l| !l.starts_with("#include <...> search starts here:"))
        .skip(1)
        .take_while(|l| !l.starts_with("End of search list."))
        .map(|l| PathBuf::from(l.trim()))
        .collect()
}

/// The kernel's name for a Rust target architecture, as used in
/// `__TARGET_ARCH_<name>` by `bpf_tracing.h`.
fn bpf_target_arch(rust_arch: &str) -> Option<&'static str> {
    Some(match rust_arch {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        "s390x" => "s390",
        "powerpc64" => "powerpc",
        "loongarch64" => "loongarch",
        _ => return None,
    })
}

/// The prerequisites of every rule of a Make depfile, unescaped: `\ ` is a
/// space, `\#` a `#`, `$$` a `$`, and a backslash before a newline
/// continues the line. Targets (before the first `:` that ends a word) are
/// skipped.
pub(crate) fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let mut deps = Vec::new();
    let mut word = String::new();
    let mut in_prereqs = false;
    // Whether `word` holds anything, even an escaped empty string.
    let mut have_word = false;
    let mut chars = text.chars().peekable();

    let mut finish = |word: &mut String, have_word: &mut bool, in_prereqs: bool| {
        if *have_word && in_prereqs {
            deps.push(PathBuf::from(std::mem::take(word)));
        }
        word.clear();
        *have_word = false;
    };

    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('\n') => {
                    chars.next();
                    finish(&mut word, &mut have_word, in_prereqs);
                }
                Some('\r') => {
                    chars.next();
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    finish(&mut word, &mut have_word, in_prereqs);
                }
                Some(&e @ (' ' | '#' | '\\')) => {
                    chars.next();
                    word.push(e);
                    have_word = true;
                }
                _ => {
                    word.push('\\');
                    have_word = true;
                }
            },
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                word.push('$');
                have_word = true;
            }
            ':' if !in_prereqs && chars.peek().is_none_or(|n| n.is_whitespace() || *n == '\\') => {
                // End of the targets (the word before the colon is one).
                word.clear();
                have_word = false;
                in_prereqs = true;
            }
            '\n' => {
                finish(&mut word, &mut have_word, in_prereqs);
                in_prereqs = false;
            }
            c if c.is_whitespace() => finish(&mut word, &mut have_word, in_prereqs),
            c => {
                word.push(c);
                have_word = true;
            }
        }
    }
    finish(&mut word, &mut have_word, in_prereqs);
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn depfile_with_continuations_and_escapes() {
        let text = "out/a\\ b.o: src/a\\ b.bpf.c \\\n  inc/x.h /usr/include/bpf/bpf_helpers.h \\\n  we\\#ird$$.h\n";
        assert_eq!(
            parse_depfile(text),
            paths(&[
                "src/a b.bpf.c",
                "inc/x.h",
                "/usr/include/bpf/bpf_helpers.h",
                "we#ird$.h"
            ])
        );
    }

    #[test]
    fn depfile_several_rules_and_crlf() {
        let text = "a.o: a.c \\\r\n b.h\r\nb.h:\r\nc.o : c.c\n";
        assert_eq!(parse_depfile(text), paths(&["a.c", "b.h", "c.c"]));
    }

    #[test]
    fn arch_names() {
        assert_eq!(bpf_target_arch("x86_64"), Some("x86"));
        assert_eq!(bpf_target_arch("aarch64"), Some("arm64"));
        assert_eq!(bpf_target_arch("loongarch64"), Some("loongarch"));
        assert_eq!(bpf_target_arch("mips"), None);
    }
}
