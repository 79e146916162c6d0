//! `skelgen inspect`: what the object model understood, as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use skelgen_runtime::btf::{Btf, TypeKind};
use skelgen_runtime::insn::Insn;
use skelgen_runtime::obj::{ExternKind, MapKind, Object, RelocKind, SlotTarget};
use skelgen_runtime::section::AutoAttach;

/// The summary printed by `skelgen inspect`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Object name.
    pub name: String,
    /// License string.
    pub license: String,
    /// Maps.
    pub maps: Vec<MapReport>,
    /// Programs, entry programs first, then `.text` subprograms.
    pub programs: Vec<ProgReport>,
    /// Global-data sections with their variables.
    pub datasecs: Vec<DatasecReport>,
    /// Externs.
    pub externs: Vec<ExternReport>,
    /// Relocation counts over all programs, by class.
    pub relocations: BTreeMap<String, usize>,
}

/// One map.
#[derive(Debug, Serialize)]
pub struct MapReport {
    /// C or section name.
    pub name: String,
    /// Name given to the kernel.
    pub kernel_name: String,
    /// Short type name (`hash`, `ringbuf`).
    #[serde(rename = "type")]
    pub map_type: String,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity (0: decided at load).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// `btf` for `.maps`, else `data`, `rodata`, `bss`, `kconfig`.
    pub origin: String,
    /// The inner map template of a map-in-map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner: Option<Box<MapReport>>,
    /// Statically initialised slots: index -> map or program name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub init: BTreeMap<u32, String>,
}

/// One program.
#[derive(Debug, Serialize)]
pub struct ProgReport {
    /// Function name.
    pub name: String,
    /// Section name (without `?`).
    pub section: String,
    /// Program type short name, or `unknown` for a section no SEC() rule matches.
    #[serde(rename = "type")]
    pub prog_type: String,
    /// Expected attach type, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_type: Option<String>,
    /// Auto-attach kind, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_attach: Option<String>,
    /// Number of instructions.
    pub insns: usize,
    /// Loaded by `load()`.
    pub autoload: bool,
    /// A `.text` subprogram.
    pub subprog: bool,
    /// Relocation counts by class.
    pub relocations: BTreeMap<String, usize>,
}

/// One global-data section.
#[derive(Debug, Serialize)]
pub struct DatasecReport {
    /// Section name.
    pub name: String,
    /// Size in bytes.
    pub size: u32,
    /// Variables by offset.
    pub vars: Vec<VarReport>,
}

/// One global variable.
#[derive(Debug, Serialize)]
pub struct VarReport {
    /// Name.
    pub name: String,
    /// Offset in the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// `static` or `global`.
    pub linkage: String,
}

/// One extern.
#[derive(Debug, Serialize)]
pub struct ExternReport {
    /// Name.
    pub name: String,
    /// `kconfig`, `ksym`, `ksym_typeless` or `kfunc`.
    pub kind: String,
    /// Declared `__weak`.
    pub weak: bool,
    /// Offset in `.kconfig` (kconfig only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Size in bytes (kconfig only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

fn map_report(obj: &Object, m: &skelgen_runtime::obj::Map) -> MapReport {
    MapReport {
        name: m.name.clone(),
        kernel_name: m.kernel_name.clone(),
        map_type: m.def.map_type.to_string(),
        key_size: m.def.key_size,
        value_size: m.def.value_size,
        max_entries: m.def.max_entries,
        flags: m.def.map_flags,
        origin: match &m.kind {
            MapKind::Btf { .. } => "btf".into(),
            MapKind::Data(k) => format!("{k:?}").to_lowercase(),
            MapKind::StructOps(_) => "struct_ops".into(),
        },
        inner: m.inner.as_ref().map(|i| Box::new(map_report(obj, i))),
        init: m
            .init_slots
            .iter()
            .map(|s| {
                let target = match &s.target {
                    SlotTarget::Map(i) => obj.maps.get(*i).map_or("?".into(), |m| m.name.clone()),
                    SlotTarget::Prog(p) => p.clone(),
                };
                (s.index, target)
            })
            .collect(),
    }
}

fn datasec_vars(btf: &Btf, id: u32) -> Vec<VarReport> {
    let Ok(t) = btf.type_by_id(id) else {
        return Vec::new();
    };
    let TypeKind::Datasec(ds) = t.kind else {
        return Vec::new();
    };
    ds.vars()
        .filter_map(|v| {
            let var = btf.type_by_id(v.ty).ok()?;
            let linkage = match var.kind {
                TypeKind::Var { linkage, .. } => match linkage {
                    skelgen_runtime::btf::VarLinkage::Static => "static",
                    skelgen_runtime::btf::VarLinkage::GlobalExtern => "extern",
                    _ => "global",
                },
                TypeKind::Func { .. } => "func",
                _ => "?",
            };
            Some(VarReport {
                name: btf.name(var.name_off).unwrap_or("?").to_string(),
                offset: v.offset,
                size: v.size,
                linkage: linkage.into(),
            })
        })
        .collect()
}

/// Builds the report for a parsed object.
pub fn report(obj: &Object) -> Report {
    let mut total = BTreeMap::new();
    let programs = obj
        .programs
        .iter()
        .map(|p| {
            let mut relocations = BTreeMap::new();
            for r in &p.relocs {
                *relocations.entry(r.kind.class().to_string()).or_insert(0) += 1;
                *total.entry(r.kind.class().to_string()).or_insert(0) += 1;
            }
            let m = p.section_match();
            ProgReport {
                name: p.name.clone(),
                section: p.section.clone(),
                prog_type: match (&m, p.subprog) {
                    (_, true) => "-".into(),
                    (Some(m), false) => m.def.prog_type.short_name().to_string(),
                    (None, false) => "unknown".into(),
                },
                attach_type: m
                    .as_ref()
                    .and_then(|m| m.def.expected_attach_type)
                    .map(|a| a.short_name().to_string()),
                auto_attach: m
                    .as_ref()
                    .filter(|m| m.def.auto_attach != AutoAttach::None)
                    .map(|m| format!("{:?}", m.def.auto_attach).to_lowercase()),
                insns: p.insn_count(),
                autoload: p.autoload,
                subprog: p.subprog,
                relocations,
            }
        })
        .collect();
    let datasecs = match &obj.btf {
        Some(btf) => obj
            .maps
            .iter()
            .filter(|m| matches!(m.kind, MapKind::Data(_)))
            .map(|m| DatasecReport {
                name: m.name.clone(),
                size: m.def.value_size,
                vars: if m.def.btf_value_type_id != 0 {
                    datasec_vars(btf, m.def.btf_value_type_id)
                } else {
                    Vec::new()
                },
            })
            .collect(),
        None => Vec::new(),
    };
    Report {
        name: obj.name.clone(),
        license: obj.license.clone(),
        maps: obj.maps.iter().map(|m| map_report(obj, m)).collect(),
        programs,
        datasecs,
        externs: obj
            .externs
            .iter()
            .map(|e| {
                let (kind, offset, size) = match &e.kind {
                    ExternKind::Kconfig { offset, size, .. } => {
                        ("kconfig", Some(*offset), Some(*size))
                    }
                    ExternKind::Ksym {
                        target_type: Some(_),
                    } => ("ksym", None, None),
                    ExternKind::Ksym { target_type: None } => ("ksym_typeless", None, None),
                    ExternKind::Kfunc { .. } => ("kfunc", None, None),
                };
                ExternReport {
                    name: e.name.clone(),
                    kind: kind.into(),
                    weak: e.weak,
                    offset,
                    size,
                }
            })
            .collect(),
        relocations: total,
    }
}

/// Renders the report as human-readable text.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "object '{}' (license \"{}\")", r.name, r.license);
    let _ = writeln!(s, "\nmaps ({}):", r.maps.len());
    for m in &r.maps {
        let _ = writeln!(
            s,
            "  {:<20} {:<16} kernel name '{}', key {} value {} max_entries {} flags {:#x} ({})",
            m.name,
            m.map_type,
            m.kernel_name,
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
            m.origin
        );
        if let Some(i) = &m.inner {
            let _ = writeln!(
                s,
                "    inner: {} key {} value {} max_entries {}",
                i.map_type, i.key_size, i.value_size, i.max_entries
            );
        }
        for (k, v) in &m.init {
            let _ = writeln!(s, "    [{k}] = {v}");
        }
    }
    let _ = writeln!(s, "\nprograms ({}):", r.programs.len());
    for p in &r.programs {
        let mut extra = Vec::new();
        if let Some(a) = &p.attach_type {
            extra.push(format!("attach {a}"));
        }
        if let Some(a) = &p.auto_attach {
            extra.push(format!("auto-attach {a}"));
        }
        if p.subprog {
            extra.push("subprogram".into());
        } else if !p.autoload {
            extra.push("autoload off".into());
        }
        let relocs: Vec<String> = p
            .relocations
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !relocs.is_empty() {
            extra.push(format!("relocs: {}", relocs.join(", ")));
        }
        let _ = writeln!(
            s,
            "  {:<24} sec '{}', type {}, {} insns{}{}",
            p.name,
            p.section,
            p.prog_type,
            p.insns,
            if extra.is_empty() { "" } else { "; " },
            extra.join("; ")
        );
    }
    let _ = writeln!(s, "\ndatasecs ({}):", r.datasecs.len());
    for d in &r.datasecs {
        let _ = writeln!(s, "  {} ({} bytes)", d.name, d.size);
        for v in &d.vars {
            let _ = writeln!(
                s,
                "    {:<24} offset {:<5} size {:<5} {}",
                v.name, v.offset, v.size, v.linkage
            );
        }
    }
    let _ = writeln!(s, "\nexterns ({}):", r.externs.len());
    for e in &r.externs {
        let place = match (e.offset, e.size) {
            (Some(o), Some(z)) => format!(", offset {o} size {z}"),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {:<32} {}{}{}",
            e.name,
            e.kind,
            if e.weak { ", weak" } else { "" },
            place
        );
    }
    let totals: Vec<String> = r
        .relocations
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "\nrelocations: {}",
        if totals.is_empty() {
            "none".into()
        } else {
            totals.join(", ")
        }
    );
    s
}

/// Renders every program's instructions in the verifier's syntax, with
/// relocations annotated (`; map counts`, `; .bss+16`, `; call run_loop`).
pub fn render_disasm(obj: &Object) -> String {
    let mut s = String::new();
    for p in &obj.programs {
        let _ = writeln!(
            s,
            "\n{} '{}' (sec '{}', {} insns):",
            if p.subprog { "subprogram" } else { "program" },
            p.name,
            p.section,
            p.insn_count()
        );
        let insns = match Insn::from_bytes(&p.insns) {
            Ok(i) => i,
            Err(e) => {
                let _ = writeln!(s, "  <cannot decode: {e}>");
                continue;
            }
        };
        let note = |i: usize| {
            let r = p.relocs.iter().find(|r| r.insn == i)?;
            Some(match &r.kind {
                RelocKind::Map { map } => format!("map {}", map_name(obj, *map)),
                RelocKind::Data { map, sym_off } => {
                    format!("{}+{} ({})", map_name(obj, *map), sym_off, r.sym)
                }
                RelocKind::Extern { ext } | RelocKind::ExternCall { ext } => format!(
                    "extern {}",
                    obj.externs.get(*ext).map_or("?", |e| e.name.as_str())
                ),
                RelocKind::Call { target_insn } | RelocKind::SubprogAddr { target_insn } => {
                    let target = obj
                        .programs
                        .iter()
                        .find(|t| t.subprog && t.insn_offset == *target_insn)
                        .map_or_else(|| format!(".text insn {target_insn}"), |t| t.name.clone());
                    if matches!(r.kind, RelocKind::Call { .. }) {
                        format!("call {target}")
                    } else {
                        format!("address of {target}")
                    }
                }
            })
        };
        for line in skelgen_runtime::insn::disasm(&insns, note) {
            let _ = writeln!(s, "{line}");
        }
    }
    s
}

fn map_name(obj: &Object, i: usize) -> &str {
    obj.maps.get(i).map_or("?", |m| m.name.as_str())
}
