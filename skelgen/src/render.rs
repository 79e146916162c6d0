//! Formatting a skeleton's source on two threads.
//!
//! prettyplease over syn's parse of the tokens is most of a generation's
//! time (syn's parse 45%, printing 24% of a fixture's instructions), and
//! the items of `mod types` (one unit per BTF type: the struct, its impls
//! and layout checks) are formatted independently of each other: a file's
//! items are printed one after another, each starting on a fresh line at
//! the same indentation. So a helper thread formats every other unit of
//! `mod types`, the calling thread the rest and everything after the
//! module, and the texts are joined in order. Token streams are not
//! `Send`: the helper builds its own from the shared, parsed object (the
//! generator is deterministic), which costs it the token building again
//! but not the parse and print it takes over.
//!
//! The joined text is the text one `prettyplease::unparse` of the whole
//! file gives (tested on every fixture); objects with few types, and
//! machines with one CPU, are formatted on the calling thread alone.

use std::thread;

use proc_macro2::TokenStream;
use quote::quote;

use crate::gen::Skeleton;
use crate::{Error, Options, Prepared};

/// Below this many BTF types, a second thread costs more than it saves: it
/// builds the tokens again, and on this project's 2-CPU VMs a new thread
/// started up to 3.7 ms late, against 3-15 ms for a whole fixture's
/// generation; an object built against a full vmlinux.h (400 types and
/// up, 50 ms) gains.
const MIN_TYPES: usize = 256;

/// The opening line of the wrapper [`unit_text`] puts around a unit.
const WRAP_OPEN: &str = "pub mod types {\n";

fn syntax(reason: String) -> Error {
    Error::Syntax { reason }
}

/// The formatted text of `tokens` as a file.
fn file_text(tokens: TokenStream) -> Result<String, Error> {
    crate::render("", tokens).map_err(syntax)
}

/// The formatted text of one unit of `mod types`, as it prints inside the
/// module (indented one level): formatted inside a bare `pub mod types`,
/// whose first and last lines are then cut off.
fn unit_text(unit: &TokenStream) -> Result<String, Error> {
    let text = file_text(quote!(pub mod types { #unit }))?;
    text.strip_prefix(WRAP_OPEN)
        .and_then(|t| t.strip_suffix("}\n"))
        .map(str::to_string)
        .ok_or_else(|| syntax("a type's items did not format as a module's body".into()))
}

/// `header`, then the skeleton of `prepared` formatted (on two threads where
/// it pays).
pub(crate) fn skeleton_text(
    header: &str,
    prepared: &Prepared,
    options: &Options,
    warnings: &mut Vec<String>,
) -> Result<String, Error> {
    let two_cpus = thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let min_types = if two_cpus { MIN_TYPES } else { usize::MAX };
    skeleton_text_from(header, prepared, options, warnings, min_types)
}

/// [`skeleton_text`], on two threads for objects with `min_types` BTF
/// types or more.
fn skeleton_text_from(
    header: &str,
    prepared: &Prepared,
    options: &Options,
    warnings: &mut Vec<String>,
    min_types: usize,
) -> Result<String, Error> {
    let types = prepared
        .obj
        .btf
        .as_ref()
        .map_or(0, |btf| btf.len() as usize);
    if types < min_types {
        let tokens = prepared.skeleton(options, warnings)?.into_tokens();
        return crate::render(header, tokens).map_err(syntax);
    }
    thread::scope(|s| {
        let helper = s.spawn(|| -> Result<Vec<String>, Error> {
            let skel = prepared.skeleton(options, &mut Vec::new())?;
            skel.units
                .iter()
                .skip(1)
                .step_by(2)
                .map(unit_text)
                .collect()
        });
        let mine = own_part(prepared, options, warnings);
        let theirs = match helper.join() {
            Ok(theirs) => theirs,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let (open, units, rest) = mine?;
        let theirs = theirs?;
        let mut code = String::with_capacity(
            header.len()
                + open.len()
                + rest.len()
                + units.iter().chain(&theirs).map(String::len).sum::<usize>()
                + 2,
        );
        code.push_str(header);
        code.push_str(&open);
        // Units alternate: ours are the even ones, the helper's the odd.
        let mut theirs = theirs.into_iter();
        for unit in units {
            code.push_str(&unit);
            if let Some(next) = theirs.next() {
                code.push_str(&next);
            }
        }
        code.extend(theirs);
        code.push_str("}\n");
        code.push_str(&rest);
        Ok(code)
    })
}

/// The calling thread's share: the module's opening (its attributes, the
/// `pub mod types {` line and its inner attributes), the even units, and
/// everything after the module.
fn own_part(
    prepared: &Prepared,
    options: &Options,
    warnings: &mut Vec<String>,
) -> Result<(String, Vec<String>, String), Error> {
    let Skeleton { inner, units, rest } = prepared.skeleton(options, warnings)?;
    let empty = Skeleton::types_module(&inner, &[]);
    let open = file_text(empty)?;
    let open = open
        .strip_suffix("}\n")
        .ok_or_else(|| syntax("the types module did not format as a module".into()))?
        .to_string();
    let units = units
        .iter()
        .step_by(2)
        .map(unit_text)
        .collect::<Result<_, _>>()?;
    Ok((open, units, file_text(rest)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads give the text one thread gives, for every fixture.
    #[test]
    fn two_threads_format_as_one() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".bpf.o") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let options = Options::new().name("fixture_bpf");
            let Ok(prepared) = Prepared::new(&bytes, &options) else {
                continue;
            };
            let one = skeleton_text_from("", &prepared, &options, &mut Vec::new(), usize::MAX);
            let two = skeleton_text_from("", &prepared, &options, &mut Vec::new(), 0);
            match (one, two) {
                (Ok(one), Ok(two)) => assert!(one == two, "{}: the texts differ", path.display()),
                (Err(_), Err(_)) => {}
                (one, two) => panic!("{}: {:?} vs {:?}", path.display(), one.err(), two.err()),
            }
            seen += 1;
        }
        assert!(seen >= 20, "only {seen} fixtures");
    }
}
