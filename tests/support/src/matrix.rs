//! The kernel matrix: what each kernel the tests run on is expected to lack,
//! read from `tests/kernel-matrix.tsv`.
//!
//! A test asks [`has`] before it exercises a kernel feature. Where the table
//! says the running kernel lacks it, the test takes its "refused with a
//! clear error" branch; everywhere else the feature must work. A kernel that
//! is not in the table (a developer's laptop) is treated as having every
//! feature, unless `SKELGEN_REQUIRE_KERNEL=1` (CI), where an unknown kernel
//! is an error: CI only runs where the table speaks.

use std::sync::OnceLock;

/// The table, compiled in so that a test binary copied elsewhere (into a VM)
/// needs no file beside it.
const TABLE: &str = include_str!("../../kernel-matrix.tsv");

/// A kernel feature a test may depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// kprobes and kretprobes: the kprobe PMU or tracefs `kprobe_events`.
    Kprobes,
    /// `kprobe.multi` links (fprobe).
    KprobeMulti,
    /// `kprobe.session` links.
    KprobeSession,
    /// `uprobe.multi` links.
    UprobeMulti,
    /// BPF trampolines for fentry/fexit/fmod_ret, lsm and freplace (struct_ops
    /// registration is not gated by it: it works where these are refused).
    Trampolines,
    /// struct_ops links (`.struct_ops.link`).
    StructOpsLink,
    /// Data symbols in `/proc/kallsyms` (`CONFIG_KALLSYMS_ALL`).
    KallsymsAll,
    /// BTF of loadable modules under `/sys/kernel/btf/`.
    ModuleBtf,
    /// tcx links.
    Tcx,
    /// netkit devices.
    Netkit,
    /// fmod_ret on `bpf_modify_return_test` and sleepable fentry/fexit on
    /// `bpf_fentry_test1`, the kernel's BPF test functions (without
    /// `CONFIG_FUNCTION_ERROR_INJECTION`, only BTF id sets allow them).
    FmodRetSleepable,
    /// The task kfuncs `bpf_task_from_pid`, `bpf_task_acquire` and
    /// `bpf_task_release` (6.2), which the kconfig fixture calls.
    TaskKfuncs,
    /// Netfilter programs and links (6.4).
    Netfilter,
}

impl Feature {
    /// Every feature, in table order.
    pub const ALL: [Feature; 13] = [
        Feature::Kprobes,
        Feature::KprobeMulti,
        Feature::KprobeSession,
        Feature::UprobeMulti,
        Feature::Trampolines,
        Feature::StructOpsLink,
        Feature::KallsymsAll,
        Feature::ModuleBtf,
        Feature::Tcx,
        Feature::Netkit,
        Feature::TaskKfuncs,
        Feature::FmodRetSleepable,
        Feature::Netfilter,
    ];

    /// The feature's name in `tests/kernel-matrix.tsv`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Kprobes => "kprobes",
            Feature::KprobeMulti => "kprobe_multi",
            Feature::KprobeSession => "kprobe_session",
            Feature::UprobeMulti => "uprobe_multi",
            Feature::Trampolines => "trampolines",
            Feature::StructOpsLink => "struct_ops_link",
            Feature::KallsymsAll => "kallsyms_all",
            Feature::ModuleBtf => "module_btf",
            Feature::Tcx => "tcx",
            Feature::Netkit => "netkit",
            Feature::TaskKfuncs => "task_kfuncs",
            Feature::Netfilter => "netfilter",
            Feature::FmodRetSleepable => "fmod_ret_sleepable",
        }
    }

    fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lack {
    /// `major.minor`.
    pub kernel: String,
    /// What it lacks.
    pub feature: Feature,
    /// Why, as the table says.
    pub why: String,
}

/// Every line of the table. Panics on a malformed line: the table is ours.
pub fn table() -> &'static [Lack] {
    static PARSED: OnceLock<Vec<Lack>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|(n, l)| {
                let mut cols = l.splitn(3, '\t');
                let (Some(kernel), Some(feature), Some(why)) =
                    (cols.next(), cols.next(), cols.next())
                else {
                    panic!(
                        "tests/kernel-matrix.tsv:{}: want kernel<TAB>feature<TAB>why",
                        n + 1
                    );
                };
                let feature = Feature::from_name(feature).unwrap_or_else(|| {
                    panic!(
                        "tests/kernel-matrix.tsv:{}: unknown feature '{feature}'",
                        n + 1
                    )
                });
                Lack {
                    kernel: kernel.to_string(),
                    feature,
                    why: why.to_string(),
                }
            })
            .collect()
    })
}

/// `major.minor` of the running kernel (`6.12` for `6.12.118+deb12-amd64`).
pub fn running_kernel() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    release
        .trim()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether the table has lines for the running kernel.
pub fn kernel_known() -> bool {
    let k = running_kernel();
    // 6.12 must not match 6.1: compare whole major.minor strings.
    table().iter().any(|l| l.kernel == k) || KNOWN_COMPLETE.contains(&k.as_str())
}

/// Kernels of the matrix that lack nothing the table names (6.12; a
/// kernel with no line would otherwise look unknown).
const KNOWN_COMPLETE: &[&str] = &["6.12"];

/// Why the running kernel lacks `feature`, if the table says it does.
pub fn lacks(feature: Feature) -> Option<&'static str> {
    let k = running_kernel();
    table()
        .iter()
        .find(|l| l.kernel == k && l.feature == feature)
        .map(|l| l.why.as_str())
}

/// Whether the running kernel has `feature` according to the table.
///
/// With `SKELGEN_REQUIRE_KERNEL=1`, a kernel that is not in the table
/// panics: CI must know what to expect of every kernel it runs on.
pub fn has(feature: Feature) -> bool {
    if !kernel_known() && crate::skips_are_failures() {
        panic!(
            "kernel {} is not in tests/kernel-matrix.tsv: add what it lacks (or list it as complete)",
            running_kernel()
        );
    }
    match lacks(feature) {
        Some(why) => {
            eprintln!(
                "kernel {} lacks {}: {why}",
                running_kernel(),
                feature.name()
            );
            false
        }
        None => true,
    }
}
