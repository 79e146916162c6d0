//! The kernel matrix (tests/kernel-matrix.tsv) against the running kernel:
//! for every feature, what the table says this kernel has must be what the
//! runtime's own probe (`skelgen_runtime::kernel::features`) finds. A
//! disagreement fails with both answers, so the table cannot drift from the
//! kernels it describes. scripts/vm-test.sh runs this binary first in each VM.

use skelgen_runtime::kernel::features::{self, Answer};
use skelgen_test_support::matrix::{self, Feature};

fn probe(feature: Feature) -> Answer {
    // Exhaustive: a new Feature needs a probe before the suite compiles.
    match feature {
        Feature::Kprobes => features::kprobes(),
        Feature::KprobeMulti => features::kprobe_multi(),
        Feature::KprobeSession => features::kprobe_session(),
        Feature::UprobeMulti => features::uprobe_multi(),
        Feature::Trampolines => features::trampolines(),
        Feature::StructOpsLink => features::struct_ops_link(),
        Feature::KallsymsAll => features::kallsyms_all(),
        Feature::ModuleBtf => features::module_btf(),
        Feature::Tcx => features::tcx(),
        Feature::Netkit => features::netkit(),
        Feature::TaskKfuncs => features::task_kfuncs(),
        Feature::Netfilter => features::netfilter(),
        Feature::FmodRetSleepable => features::fmod_ret_sleepable(),
    }
}

#[test]
fn the_table_agrees_with_the_runtimes_probes() {
    let Some(_guard) = skelgen_test_support::kernel_serial() else {
        return;
    };
    let kernel = matrix::running_kernel();
    if !matrix::kernel_known() {
        // Panics under SKELGEN_REQUIRE_KERNEL=1: CI runs only where the table speaks.
        let _ = matrix::has(Feature::Kprobes);
        eprintln!("kernel {kernel} is not in the table: nothing to compare");
        return;
    }
    let mut disagreements = Vec::new();
    for feature in Feature::ALL {
        let table = matrix::lacks(feature);
        let answer = probe(feature);
        let table_has = table.is_none();
        println!(
            "{:<16} table: {:<5} probe: {:<5} ({})",
            feature.name(),
            if table_has { "has" } else { "lacks" },
            if answer.supported { "has" } else { "lacks" },
            answer.evidence
        );
        if table_has != answer.supported {
            disagreements.push(format!(
                "kernel {kernel}, {}: the table says {} ({}), the runtime's probe says {} ({})",
                feature.name(),
                if table_has {
                    "it has it"
                } else {
                    "it lacks it"
                },
                table.unwrap_or("no line for this kernel"),
                if answer.supported {
                    "it has it"
                } else {
                    "it lacks it"
                },
                answer.evidence
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "tests/kernel-matrix.tsv disagrees with the running kernel:\n  {}",
        disagreements.join("\n  ")
    );
}

#[test]
fn probes_answer_the_same_twice() {
    // A probe that leaves state behind (a link, a half-created map) could
    // answer differently the second time; the table check would then depend
    // on the order tests ran in.
    let Some(_guard) = skelgen_test_support::kernel_serial() else {
        return;
    };
    for feature in Feature::ALL {
        let first = probe(feature);
        let second = probe(feature);
        assert_eq!(
            first.supported,
            second.supported,
            "{}: {} then {}",
            feature.name(),
            first.evidence,
            second.evidence
        );
    }
}

#[test]
fn the_table_names_only_known_kernels_and_no_line_twice() {
    let mut seen = std::collections::HashSet::new();
    for lack in matrix::table() {
        assert!(
            ["6.1", "6.12", "6.18"].contains(&lack.kernel.as_str()),
            "tests/kernel-matrix.tsv: kernel {} is not one the matrix runs on",
            lack.kernel
        );
        assert!(
            seen.insert((lack.kernel.clone(), lack.feature)),
            "tests/kernel-matrix.tsv: {} {} listed twice",
            lack.kernel,
            lack.feature.name()
        );
        assert!(!lack.why.trim().is_empty(), "{lack:?}: no reason");
    }
}

/// The README's "Kernel matrix" table, rendered from the TSV.
fn rendered_table() -> String {
    let mut out = String::from("| kernel | lacks | why |\n|---|---|---|\n");
    for lack in matrix::table() {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            lack.kernel,
            lack.feature.name(),
            lack.why
        ));
    }
    out
}

#[test]
fn the_readme_shows_the_table() {
    let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(readme_path).expect("README.md");
    let begin = "<!-- kernel-matrix:begin (rendered from tests/kernel-matrix.tsv) -->\n";
    let end = "<!-- kernel-matrix:end -->";
    let start = readme
        .find(begin)
        .unwrap_or_else(|| panic!("README.md has no '{}' marker", begin.trim()))
        + begin.len();
    let stop = readme[start..]
        .find(end)
        .map(|i| start + i)
        .expect("README.md: kernel-matrix end marker");
    let want = rendered_table();
    assert!(
        readme[start..stop] == want,
        "README.md's kernel matrix table differs from tests/kernel-matrix.tsv; put this between the markers:\n{want}"
    );
}
