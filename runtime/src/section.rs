//! libbpf's table of `SEC()` names: what a program's ELF section name says
//! about its program type, expected attach type, load flags and how it is
//! attached automatically.
//!
//! The table ([`SECTION_DEFS`]) is libbpf 1.8's, row for row and in the same
//! order, because the order decides: the first matching row wins (so
//! `tc/ingress` is found before `tc`, `xdp.frags/devmap` before `xdp`).
//! `section_defs.tsv` next to this file holds the same table as data and a
//! test checks that the two agree.
//!
//! Names are matched as libbpf does:
//!
//! - [`MatchRule::Exact`]: the whole section name (`"xdp"` matches `xdp` only,
//!   not `xdpx` nor `xdp/foo`);
//! - [`MatchRule::ExactOrSlash`] (libbpf writes it `name+`): the name alone, or
//!   the name followed by `/` and anything (`kprobe`, `kprobe/vfs_read`, but not
//!   `kprobefoo`). The part after the `/` is the attach target.
//!
//! libbpf also knows a prefix-only rule (`name/`), but no row of its current
//! table uses it, so it is not modelled here.
//!
//! A leading `?` on a section name (`SEC("?kprobe/x")`) is not part of the
//! name as far as this module is concerned: the object model strips it and
//! records that the program is not loaded by default. [`lookup`] given
//! `"?kprobe/x"` finds nothing.

use std::fmt;

mod target;

pub use target::{parse_target, AttachTarget};

/// Declares a `#[repr(u32)]` kernel enum with its kernel spelling and the
/// short spelling bpftool prints.
macro_rules! kernel_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident, prefix $prefix:literal {
            $($variant:ident = $value:literal => $kname:literal, $short:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name {
            $(
                #[doc = concat!("`", $prefix, $kname, "` (", stringify!($value), ").")]
                $variant = $value,
            )*
        }

        impl $name {
            /// Every value, in the kernel's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value from its number, `None` if this crate does not know it.
            pub fn from_u32(value: u32) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The kernel's name, as `include/uapi/linux/bpf.h` spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => concat!($prefix, $kname),)*
                }
            }

            /// The short name bpftool prints (the kernel name in lower case,
            /// without its prefix).
            pub fn short_name(self) -> &'static str {
                match self {
                    $($name::$variant => $short,)*
                }
            }

            /// The number the kernel uses.
            pub fn as_u32(self) -> u32 {
                self as u32
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

kernel_enum! {
    /// A BPF program type (`enum bpf_prog_type`).
    pub enum ProgType, prefix "BPF_PROG_TYPE_" {
        Unspec = 0 => "UNSPEC", "unspec";
        SocketFilter = 1 => "SOCKET_FILTER", "socket_filter";
        Kprobe = 2 => "KPROBE", "kprobe";
        SchedCls = 3 => "SCHED_CLS", "sched_cls";
        SchedAct = 4 => "SCHED_ACT", "sched_act";
        Tracepoint = 5 => "TRACEPOINT", "tracepoint";
        Xdp = 6 => "XDP", "xdp";
        PerfEvent = 7 => "PERF_EVENT", "perf_event";
        CgroupSkb = 8 => "CGROUP_SKB", "cgroup_skb";
        CgroupSock = 9 => "CGROUP_SOCK", "cgroup_sock";
        LwtIn = 10 => "LWT_IN", "lwt_in";
        LwtOut = 11 => "LWT_OUT", "lwt_out";
        LwtXmit = 12 => "LWT_XMIT", "lwt_xmit";
        SockOps = 13 => "SOCK_OPS", "sock_ops";
        SkSkb = 14 => "SK_SKB", "sk_skb";
        CgroupDevice = 15 => "CGROUP_DEVICE", "cgroup_device";
        SkMsg = 16 => "SK_MSG", "sk_msg";
        RawTracepoint = 17 => "RAW_TRACEPOINT", "raw_tracepoint";
        CgroupSockAddr = 18 => "CGROUP_SOCK_ADDR", "cgroup_sock_addr";
        LwtSeg6local = 19 => "LWT_SEG6LOCAL", "lwt_seg6local";
        LircMode2 = 20 => "LIRC_MODE2", "lirc_mode2";
        SkReuseport = 21 => "SK_REUSEPORT", "sk_reuseport";
        FlowDissector = 22 => "FLOW_DISSECTOR", "flow_dissector";
        CgroupSysctl = 23 => "CGROUP_SYSCTL", "cgroup_sysctl";
        RawTracepointWritable = 24 => "RAW_TRACEPOINT_WRITABLE", "raw_tracepoint_writable";
        CgroupSockopt = 25 => "CGROUP_SOCKOPT", "cgroup_sockopt";
        Tracing = 26 => "TRACING", "tracing";
        StructOps = 27 => "STRUCT_OPS", "struct_ops";
        Ext = 28 => "EXT", "ext";
        Lsm = 29 => "LSM", "lsm";
        SkLookup = 30 => "SK_LOOKUP", "sk_lookup";
        Syscall = 31 => "SYSCALL", "syscall";
        Netfilter = 32 => "NETFILTER", "netfilter";
    }
}

kernel_enum! {
    /// A BPF attach type (`enum bpf_attach_type`).
    ///
    /// Values up to 57 are those of Linux 6.18; the four after
    /// (`BPF_TRACE_FSESSION` and the tracing multi-link types) are the
    /// numbers bpf-next gives them, which libbpf 1.8's table already uses.
    pub enum AttachType, prefix "BPF_" {
        CgroupInetIngress = 0 => "CGROUP_INET_INGRESS", "cgroup_inet_ingress";
        CgroupInetEgress = 1 => "CGROUP_INET_EGRESS", "cgroup_inet_egress";
        CgroupInetSockCreate = 2 => "CGROUP_INET_SOCK_CREATE", "cgroup_inet_sock_create";
        CgroupSockOps = 3 => "CGROUP_SOCK_OPS", "cgroup_sock_ops";
        SkSkbStreamParser = 4 => "SK_SKB_STREAM_PARSER", "sk_skb_stream_parser";
        SkSkbStreamVerdict = 5 => "SK_SKB_STREAM_VERDICT", "sk_skb_stream_verdict";
        CgroupDevice = 6 => "CGROUP_DEVICE", "cgroup_device";
        SkMsgVerdict = 7 => "SK_MSG_VERDICT", "sk_msg_verdict";
        CgroupInet4Bind = 8 => "CGROUP_INET4_BIND", "cgroup_inet4_bind";
        CgroupInet6Bind = 9 => "CGROUP_INET6_BIND", "cgroup_inet6_bind";
        CgroupInet4Connect = 10 => "CGROUP_INET4_CONNECT", "cgroup_inet4_connect";
        CgroupInet6Connect = 11 => "CGROUP_INET6_CONNECT", "cgroup_inet6_connect";
        CgroupInet4PostBind = 12 => "CGROUP_INET4_POST_BIND", "cgroup_inet4_post_bind";
        CgroupInet6PostBind = 13 => "CGROUP_INET6_POST_BIND", "cgroup_inet6_post_bind";
        CgroupUdp4Sendmsg = 14 => "CGROUP_UDP4_SENDMSG", "cgroup_udp4_sendmsg";
        CgroupUdp6Sendmsg = 15 => "CGROUP_UDP6_SENDMSG", "cgroup_udp6_sendmsg";
        LircMode2 = 16 => "LIRC_MODE2", "lirc_mode2";
        FlowDissector = 17 => "FLOW_DISSECTOR", "flow_dissector";
        CgroupSysctl = 18 => "CGROUP_SYSCTL", "cgroup_sysctl";
        CgroupUdp4Recvmsg = 19 => "CGROUP_UDP4_RECVMSG", "cgroup_udp4_recvmsg";
        CgroupUdp6Recvmsg = 20 => "CGROUP_UDP6_RECVMSG", "cgroup_udp6_recvmsg";
        CgroupGetsockopt = 21 => "CGROUP_GETSOCKOPT", "cgroup_getsockopt";
        CgroupSetsockopt = 22 => "CGROUP_SETSOCKOPT", "cgroup_setsockopt";
        TraceRawTp = 23 => "TRACE_RAW_TP", "trace_raw_tp";
        TraceFentry = 24 => "TRACE_FENTRY", "trace_fentry";
        TraceFexit = 25 => "TRACE_FEXIT", "trace_fexit";
        ModifyReturn = 26 => "MODIFY_RETURN", "modify_return";
        LsmMac = 27 => "LSM_MAC", "lsm_mac";
        TraceIter = 28 => "TRACE_ITER", "trace_iter";
        CgroupInet4Getpeername = 29 => "CGROUP_INET4_GETPEERNAME", "cgroup_inet4_getpeername";
        CgroupInet6Getpeername = 30 => "CGROUP_INET6_GETPEERNAME", "cgroup_inet6_getpeername";
        CgroupInet4Getsockname = 31 => "CGROUP_INET4_GETSOCKNAME", "cgroup_inet4_getsockname";
        CgroupInet6Getsockname = 32 => "CGROUP_INET6_GETSOCKNAME", "cgroup_inet6_getsockname";
        XdpDevmap = 33 => "XDP_DEVMAP", "xdp_devmap";
        CgroupInetSockRelease = 34 => "CGROUP_INET_SOCK_RELEASE", "cgroup_inet_sock_release";
        XdpCpumap = 35 => "XDP_CPUMAP", "xdp_cpumap";
        SkLookup = 36 => "SK_LOOKUP", "sk_lookup";
        Xdp = 37 => "XDP", "xdp";
        SkSkbVerdict = 38 => "SK_SKB_VERDICT", "sk_skb_verdict";
        SkReuseportSelect = 39 => "SK_REUSEPORT_SELECT", "sk_reuseport_select";
        SkReuseportSelectOrMigrate = 40 => "SK_REUSEPORT_SELECT_OR_MIGRATE", "sk_reuseport_select_or_migrate";
        PerfEvent = 41 => "PERF_EVENT", "perf_event";
        TraceKprobeMulti = 42 => "TRACE_KPROBE_MULTI", "trace_kprobe_multi";
        LsmCgroup = 43 => "LSM_CGROUP", "lsm_cgroup";
        StructOps = 44 => "STRUCT_OPS", "struct_ops";
        Netfilter = 45 => "NETFILTER", "netfilter";
        TcxIngress = 46 => "TCX_INGRESS", "tcx_ingress";
        TcxEgress = 47 => "TCX_EGRESS", "tcx_egress";
        TraceUprobeMulti = 48 => "TRACE_UPROBE_MULTI", "trace_uprobe_multi";
        CgroupUnixConnect = 49 => "CGROUP_UNIX_CONNECT", "cgroup_unix_connect";
        CgroupUnixSendmsg = 50 => "CGROUP_UNIX_SENDMSG", "cgroup_unix_sendmsg";
        CgroupUnixRecvmsg = 51 => "CGROUP_UNIX_RECVMSG", "cgroup_unix_recvmsg";
        CgroupUnixGetpeername = 52 => "CGROUP_UNIX_GETPEERNAME", "cgroup_unix_getpeername";
        CgroupUnixGetsockname = 53 => "CGROUP_UNIX_GETSOCKNAME", "cgroup_unix_getsockname";
        NetkitPrimary = 54 => "NETKIT_PRIMARY", "netkit_primary";
        NetkitPeer = 55 => "NETKIT_PEER", "netkit_peer";
        TraceKprobeSession = 56 => "TRACE_KPROBE_SESSION", "trace_kprobe_session";
        TraceUprobeSession = 57 => "TRACE_UPROBE_SESSION", "trace_uprobe_session";
        TraceFsession = 58 => "TRACE_FSESSION", "trace_fsession";
        TraceFentryMulti = 59 => "TRACE_FENTRY_MULTI", "trace_fentry_multi";
        TraceFexitMulti = 60 => "TRACE_FEXIT_MULTI", "trace_fexit_multi";
        TraceFsessionMulti = 61 => "TRACE_FSESSION_MULTI", "trace_fsession_multi";
    }
}

impl AttachType {
    /// Where the kernel's BTF describes the target of a BTF-attached program
    /// of this attach type: the name prefix and the kind of the BTF type
    /// (`btf_trace_<tp>` typedefs for `tp_btf`, `bpf_lsm_<hook>` and
    /// `bpf_iter_<name>` functions, the function itself for fentry & co).
    pub fn btf_target_naming(self) -> (&'static str, BtfTargetKind) {
        match self {
            AttachType::TraceRawTp => ("btf_trace_", BtfTargetKind::Typedef),
            AttachType::LsmMac | AttachType::LsmCgroup => ("bpf_lsm_", BtfTargetKind::Func),
            AttachType::TraceIter => ("bpf_iter_", BtfTargetKind::Func),
            _ => ("", BtfTargetKind::Func),
        }
    }
}

/// The load and attach flags of a [`SectionDef`] (libbpf's `SEC_*` flags).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SecFlags(u32);

impl SecFlags {
    /// No flag (`SEC_NONE`).
    pub const NONE: SecFlags = SecFlags(0);
    /// The expected attach type may be left out at load if the kernel is too
    /// old to know it (`SEC_EXP_ATTACH_OPT`).
    pub const EXP_ATTACH_OPT: SecFlags = SecFlags(1);
    /// Attached with `BPF_PROG_ATTACH`/link create, so the expected attach
    /// type is passed at load (`SEC_ATTACHABLE`).
    pub const ATTACHABLE: SecFlags = SecFlags(2);
    /// [`ATTACHABLE`](Self::ATTACHABLE) with an optional expected attach type
    /// (`SEC_ATTACHABLE_OPT`).
    pub const ATTACHABLE_OPT: SecFlags = SecFlags(1 | 2);
    /// The attach target is a BTF id found from the section name
    /// (`SEC_ATTACH_BTF`).
    pub const ATTACH_BTF: SecFlags = SecFlags(4);
    /// Loaded with `BPF_F_SLEEPABLE` (`SEC_SLEEPABLE`).
    pub const SLEEPABLE: SecFlags = SecFlags(8);
    /// Loaded with `BPF_F_XDP_HAS_FRAGS` (`SEC_XDP_FRAGS`).
    pub const XDP_FRAGS: SecFlags = SecFlags(16);
    /// A USDT probe: needs the USDT support code at attach (`SEC_USDT`).
    pub const USDT: SecFlags = SecFlags(32);

    const NAMES: [(SecFlags, &'static str); 6] = [
        (SecFlags::EXP_ATTACH_OPT, "EXP_ATTACH_OPT"),
        (SecFlags::ATTACHABLE, "ATTACHABLE"),
        (SecFlags::ATTACH_BTF, "ATTACH_BTF"),
        (SecFlags::SLEEPABLE, "SLEEPABLE"),
        (SecFlags::XDP_FRAGS, "XDP_FRAGS"),
        (SecFlags::USDT, "USDT"),
    ];

    /// The raw bits, as libbpf numbers them.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Flags from raw bits; `None` if a bit has no meaning.
    pub const fn from_bits(bits: u32) -> Option<SecFlags> {
        if bits & !63 == 0 {
            Some(SecFlags(bits))
        } else {
            None
        }
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: SecFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets of flags (a `const` spelling of `|`).
    pub const fn union(self, other: SecFlags) -> SecFlags {
        SecFlags(self.0 | other.0)
    }
}

impl std::ops::BitOr for SecFlags {
    type Output = SecFlags;
    fn bitor(self, rhs: SecFlags) -> SecFlags {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for SecFlags {
    fn bitor_assign(&mut self, rhs: SecFlags) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for SecFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (flag, name) in SecFlags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// How a program is attached by the skeleton's `attach()` (libbpf's
/// `prog_attach_fn`), `None` when only an explicit attach call can do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoAttach {
    /// Not attached automatically (xdp, tc, cgroup, socket, struct_ops...).
    None,
    /// kprobe/kretprobe through a perf event (`attach_kprobe`).
    Kprobe,
    /// uprobe/uretprobe through a perf event (`attach_uprobe`).
    Uprobe,
    /// kprobe.multi/kretprobe.multi link (`attach_kprobe_multi`).
    KprobeMulti,
    /// kprobe.session link (`attach_kprobe_session`).
    KprobeSession,
    /// uprobe.multi, uretprobe.multi and uprobe.session links
    /// (`attach_uprobe_multi`).
    UprobeMulti,
    /// A kprobe on the arch-specific syscall entry (`attach_ksyscall`).
    Ksyscall,
    /// A USDT probe (`attach_usdt`).
    Usdt,
    /// A tracefs tracepoint through a perf event (`attach_tp`).
    Tracepoint,
    /// A raw tracepoint (`attach_raw_tp`).
    RawTracepoint,
    /// A BTF-typed tracing link: tp_btf, fentry, fexit, fmod_ret, fsession,
    /// freplace (`attach_trace`).
    Trace,
    /// A tracing multi link: fentry.multi, fexit.multi, fsession.multi
    /// (`attach_tracing_multi`).
    TracingMulti,
    /// An LSM hook (`attach_lsm`).
    Lsm,
    /// A BPF iterator link (`attach_iter`).
    Iter,
}

/// How a [`SectionDef`]'s prefix matches a section name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchRule {
    /// The whole section name equals the prefix.
    Exact,
    /// The section name is the prefix alone or the prefix, `/` and an attach
    /// target (libbpf's `name+`).
    ExactOrSlash,
}

/// One row of libbpf's `SEC()` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SectionDef {
    /// The name or prefix, without libbpf's trailing `+`.
    pub prefix: &'static str,
    /// How [`prefix`](Self::prefix) matches.
    pub rule: MatchRule,
    /// The program type passed to `BPF_PROG_LOAD`.
    pub prog_type: ProgType,
    /// The expected attach type passed to `BPF_PROG_LOAD`; `None` where
    /// libbpf passes 0 as "none" (which the kernel reads as 0 all the same).
    pub expected_attach_type: Option<AttachType>,
    /// Load and attach flags.
    pub flags: SecFlags,
    /// How the program is attached automatically.
    pub auto_attach: AutoAttach,
}

impl SectionDef {
    /// The expected attach type as the number `BPF_PROG_LOAD` takes.
    pub fn expected_attach_type_raw(&self) -> u32 {
        self.expected_attach_type.map_or(0, AttachType::as_u32)
    }

    /// Whether this is a return probe (kretprobe, uretprobe, their multi
    /// and sleepable forms, kretsyscall).
    pub fn is_retprobe(&self) -> bool {
        self.prefix.starts_with("kret") || self.prefix.starts_with("uret")
    }

    /// Whether this is a session probe (kprobe.session, uprobe.session).
    pub fn is_session(&self) -> bool {
        self.prefix.contains(".session")
    }

    /// Whether programs of this section are loaded sleepable.
    pub fn is_sleepable(&self) -> bool {
        self.flags.contains(SecFlags::SLEEPABLE)
    }

    /// Match `sec` against this row: `None` if it does not match, otherwise
    /// the attach target after the `/` (`None` for a bare name).
    pub fn matches<'a>(&self, sec: &'a str) -> Option<Option<&'a str>> {
        match self.rule {
            MatchRule::Exact => (sec == self.prefix).then_some(None),
            MatchRule::ExactOrSlash => {
                let rest = sec.strip_prefix(self.prefix)?;
                if rest.is_empty() {
                    Some(None)
                } else {
                    rest.strip_prefix('/').map(Some)
                }
            }
        }
    }
}

/// A section name found in [`SECTION_DEFS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match<'a> {
    /// The row that matched.
    pub def: &'static SectionDef,
    /// The row's position in [`SECTION_DEFS`].
    pub index: usize,
    /// The whole section name.
    pub section: &'a str,
    /// What follows the `/` of an [`ExactOrSlash`](MatchRule::ExactOrSlash)
    /// row (`"vfs_read"` for `kprobe/vfs_read`, `"syscalls/sys_enter_getppid"`
    /// for `tracepoint/syscalls/sys_enter_getppid`); `None` for a bare name
    /// and for [`Exact`] rows.
    pub target: Option<&'a str>,
}

impl<'a> Match<'a> {
    /// For a BTF-attached program ([`SecFlags::ATTACH_BTF`]) whose section
    /// names its target, the BTF type to look up in the kernel's BTF
    /// (`fentry/vfs_read` -> function `vfs_read`, `tp_btf/sched_switch` ->
    /// typedef `btf_trace_sched_switch`, `lsm/file_open` -> function
    /// `bpf_lsm_file_open`, `iter/task` -> function `bpf_iter_task`).
    pub fn btf_target(&self) -> Option<BtfTarget<'a>> {
        if !self.def.flags.contains(SecFlags::ATTACH_BTF) {
            return None;
        }
        let name = self.target.filter(|t| !t.is_empty())?;
        let (prefix, kind) = self
            .def
            .expected_attach_type
            .map_or(("", BtfTargetKind::Func), AttachType::btf_target_naming);
        Some(BtfTarget { prefix, name, kind })
    }
}

/// The kind of BTF type that describes a BTF-attached program's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BtfTargetKind {
    /// `BTF_KIND_FUNC`.
    Func,
    /// `BTF_KIND_TYPEDEF` (raw tracepoints: `btf_trace_<name>`).
    Typedef,
}

/// The BTF type naming a BTF-attached program's target: `prefix` + `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BtfTarget<'a> {
    /// The prefix the kernel puts before the name (`""`, `"btf_trace_"`,
    /// `"bpf_lsm_"`, `"bpf_iter_"`).
    pub prefix: &'static str,
    /// The name from the section.
    pub name: &'a str,
    /// The BTF kind to look for.
    pub kind: BtfTargetKind,
}

impl fmt::Display for BtfTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix, self.name)
    }
}

/// Find the first row of [`SECTION_DEFS`] that matches `sec`.
///
/// `sec` is the section name without the `?` (autoload off) marker.
pub fn lookup(sec: &str) -> Option<Match<'_>> {
    // A row can only match a name that starts with its prefix's first byte:
    // comparing that byte first spares a `memcmp` call for almost every row
    // (a program's section is looked up at open, load and attach).
    let first = sec.as_bytes().first();
    SECTION_DEFS.iter().enumerate().find_map(|(index, def)| {
        let prefix = def.prefix.as_bytes();
        if !prefix.is_empty() && prefix.first() != first {
            return None;
        }
        def.matches(sec).map(|target| Match {
            def,
            index,
            section: sec,
            target,
        })
    })
}

/// An error in a section name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionError {
    /// No row of the table matches.
    #[error("section `{section}`: not a known program section name")]
    Unknown {
        /// The section name.
        section: String,
    },
    /// The attach target after the `/` does not have the expected form.
    #[error("section `{section}`: malformed attach target, expected {expected}")]
    Malformed {
        /// The section name.
        section: String,
        /// The expected form, e.g. `kprobe/<function>[+<offset>]`.
        expected: &'static str,
    },
    /// A return probe names an offset, which the kernel cannot honour.
    #[error("section `{section}`: return probes cannot attach at an offset")]
    RetprobeOffset {
        /// The section name.
        section: String,
    },
}

/// Shorthands that keep one table row on one line.
mod rows {
    pub(super) use super::AttachType as A;
    pub(super) use super::AutoAttach as Auto;
    pub(super) use super::MatchRule::{Exact, ExactOrSlash as Plus};
    pub(super) use super::ProgType as P;
    pub(super) use super::SecFlags as F;
    use super::{AttachType, AutoAttach, MatchRule, ProgType, SecFlags, SectionDef};

    pub(super) const fn d(
        prefix: &'static str,
        rule: MatchRule,
        prog_type: ProgType,
        expected_attach_type: Option<AttachType>,
        flags: SecFlags,
        auto_attach: AutoAttach,
    ) -> SectionDef {
        SectionDef {
            prefix,
            rule,
            prog_type,
            expected_attach_type,
            flags,
            auto_attach,
        }
    }

    /// `SEC_ATTACH_BTF | SEC_SLEEPABLE`.
    pub(super) const BTF_S: SecFlags = F::ATTACH_BTF.union(F::SLEEPABLE);
    /// `SEC_USDT | SEC_SLEEPABLE`.
    pub(super) const USDT_S: SecFlags = F::USDT.union(F::SLEEPABLE);
}

use rows::*;

/// libbpf 1.8's `SEC()` table, in its order (the first match wins).
#[rustfmt::skip]
pub static SECTION_DEFS: [SectionDef; 116] = [
    d("socket", Exact, P::SocketFilter, None, F::NONE, Auto::None),
    d("sk_reuseport/migrate", Exact, P::SkReuseport, Some(A::SkReuseportSelectOrMigrate), F::ATTACHABLE, Auto::None),
    d("sk_reuseport", Exact, P::SkReuseport, Some(A::SkReuseportSelect), F::ATTACHABLE, Auto::None),
    d("kprobe", Plus, P::Kprobe, None, F::NONE, Auto::Kprobe),
    d("uprobe", Plus, P::Kprobe, None, F::NONE, Auto::Uprobe),
    d("uprobe.s", Plus, P::Kprobe, None, F::SLEEPABLE, Auto::Uprobe),
    d("kretprobe", Plus, P::Kprobe, None, F::NONE, Auto::Kprobe),
    d("uretprobe", Plus, P::Kprobe, None, F::NONE, Auto::Uprobe),
    d("uretprobe.s", Plus, P::Kprobe, None, F::SLEEPABLE, Auto::Uprobe),
    d("kprobe.multi", Plus, P::Kprobe, Some(A::TraceKprobeMulti), F::NONE, Auto::KprobeMulti),
    d("kretprobe.multi", Plus, P::Kprobe, Some(A::TraceKprobeMulti), F::NONE, Auto::KprobeMulti),
    d("kprobe.session", Plus, P::Kprobe, Some(A::TraceKprobeSession), F::NONE, Auto::KprobeSession),
    d("uprobe.multi", Plus, P::Kprobe, Some(A::TraceUprobeMulti), F::NONE, Auto::UprobeMulti),
    d("uretprobe.multi", Plus, P::Kprobe, Some(A::TraceUprobeMulti), F::NONE, Auto::UprobeMulti),
    d("uprobe.session", Plus, P::Kprobe, Some(A::TraceUprobeSession), F::NONE, Auto::UprobeMulti),
    d("uprobe.multi.s", Plus, P::Kprobe, Some(A::TraceUprobeMulti), F::SLEEPABLE, Auto::UprobeMulti),
    d("uretprobe.multi.s", Plus, P::Kprobe, Some(A::TraceUprobeMulti), F::SLEEPABLE, Auto::UprobeMulti),
    d("uprobe.session.s", Plus, P::Kprobe, Some(A::TraceUprobeSession), F::SLEEPABLE, Auto::UprobeMulti),
    d("ksyscall", Plus, P::Kprobe, None, F::NONE, Auto::Ksyscall),
    d("kretsyscall", Plus, P::Kprobe, None, F::NONE, Auto::Ksyscall),
    d("usdt", Plus, P::Kprobe, None, F::USDT, Auto::Usdt),
    d("usdt.s", Plus, P::Kprobe, None, USDT_S, Auto::Usdt),
    d("tc/ingress", Exact, P::SchedCls, Some(A::TcxIngress), F::NONE, Auto::None),
    d("tc/egress", Exact, P::SchedCls, Some(A::TcxEgress), F::NONE, Auto::None),
    d("tcx/ingress", Exact, P::SchedCls, Some(A::TcxIngress), F::NONE, Auto::None),
    d("tcx/egress", Exact, P::SchedCls, Some(A::TcxEgress), F::NONE, Auto::None),
    d("tc", Exact, P::SchedCls, None, F::NONE, Auto::None),
    d("classifier", Exact, P::SchedCls, None, F::NONE, Auto::None),
    d("action", Exact, P::SchedAct, None, F::NONE, Auto::None),
    d("netkit/primary", Exact, P::SchedCls, Some(A::NetkitPrimary), F::NONE, Auto::None),
    d("netkit/peer", Exact, P::SchedCls, Some(A::NetkitPeer), F::NONE, Auto::None),
    d("tracepoint", Plus, P::Tracepoint, None, F::NONE, Auto::Tracepoint),
    d("tp", Plus, P::Tracepoint, None, F::NONE, Auto::Tracepoint),
    d("tracepoint.s", Plus, P::Tracepoint, None, F::SLEEPABLE, Auto::Tracepoint),
    d("tp.s", Plus, P::Tracepoint, None, F::SLEEPABLE, Auto::Tracepoint),
    d("raw_tracepoint", Plus, P::RawTracepoint, None, F::NONE, Auto::RawTracepoint),
    d("raw_tp", Plus, P::RawTracepoint, None, F::NONE, Auto::RawTracepoint),
    d("raw_tracepoint.s", Plus, P::RawTracepoint, None, F::SLEEPABLE, Auto::RawTracepoint),
    d("raw_tp.s", Plus, P::RawTracepoint, None, F::SLEEPABLE, Auto::RawTracepoint),
    d("raw_tracepoint.w", Plus, P::RawTracepointWritable, None, F::NONE, Auto::RawTracepoint),
    d("raw_tp.w", Plus, P::RawTracepointWritable, None, F::NONE, Auto::RawTracepoint),
    d("tp_btf", Plus, P::Tracing, Some(A::TraceRawTp), F::ATTACH_BTF, Auto::Trace),
    d("tp_btf.s", Plus, P::Tracing, Some(A::TraceRawTp), BTF_S, Auto::Trace),
    d("fentry", Plus, P::Tracing, Some(A::TraceFentry), F::ATTACH_BTF, Auto::Trace),
    d("fmod_ret", Plus, P::Tracing, Some(A::ModifyReturn), F::ATTACH_BTF, Auto::Trace),
    d("fexit", Plus, P::Tracing, Some(A::TraceFexit), F::ATTACH_BTF, Auto::Trace),
    d("fentry.s", Plus, P::Tracing, Some(A::TraceFentry), BTF_S, Auto::Trace),
    d("fmod_ret.s", Plus, P::Tracing, Some(A::ModifyReturn), BTF_S, Auto::Trace),
    d("fexit.s", Plus, P::Tracing, Some(A::TraceFexit), BTF_S, Auto::Trace),
    d("fsession", Plus, P::Tracing, Some(A::TraceFsession), F::ATTACH_BTF, Auto::Trace),
    d("fsession.s", Plus, P::Tracing, Some(A::TraceFsession), BTF_S, Auto::Trace),
    d("fsession.multi", Plus, P::Tracing, Some(A::TraceFsessionMulti), F::NONE, Auto::TracingMulti),
    d("fsession.multi.s", Plus, P::Tracing, Some(A::TraceFsessionMulti), F::SLEEPABLE, Auto::TracingMulti),
    d("fentry.multi", Plus, P::Tracing, Some(A::TraceFentryMulti), F::NONE, Auto::TracingMulti),
    d("fexit.multi", Plus, P::Tracing, Some(A::TraceFexitMulti), F::NONE, Auto::TracingMulti),
    d("fentry.multi.s", Plus, P::Tracing, Some(A::TraceFentryMulti), F::SLEEPABLE, Auto::TracingMulti),
    d("fexit.multi.s", Plus, P::Tracing, Some(A::TraceFexitMulti), F::SLEEPABLE, Auto::TracingMulti),
    d("freplace", Plus, P::Ext, None, F::ATTACH_BTF, Auto::Trace),
    d("lsm", Plus, P::Lsm, Some(A::LsmMac), F::ATTACH_BTF, Auto::Lsm),
    d("lsm.s", Plus, P::Lsm, Some(A::LsmMac), BTF_S, Auto::Lsm),
    d("lsm_cgroup", Plus, P::Lsm, Some(A::LsmCgroup), F::ATTACH_BTF, Auto::None),
    d("iter", Plus, P::Tracing, Some(A::TraceIter), F::ATTACH_BTF, Auto::Iter),
    d("iter.s", Plus, P::Tracing, Some(A::TraceIter), BTF_S, Auto::Iter),
    d("syscall", Exact, P::Syscall, None, F::SLEEPABLE, Auto::None),
    d("xdp.frags/devmap", Exact, P::Xdp, Some(A::XdpDevmap), F::XDP_FRAGS, Auto::None),
    d("xdp/devmap", Exact, P::Xdp, Some(A::XdpDevmap), F::ATTACHABLE, Auto::None),
    d("xdp.frags/cpumap", Exact, P::Xdp, Some(A::XdpCpumap), F::XDP_FRAGS, Auto::None),
    d("xdp/cpumap", Exact, P::Xdp, Some(A::XdpCpumap), F::ATTACHABLE, Auto::None),
    d("xdp.frags", Exact, P::Xdp, Some(A::Xdp), F::XDP_FRAGS, Auto::None),
    d("xdp", Exact, P::Xdp, Some(A::Xdp), F::ATTACHABLE_OPT, Auto::None),
    d("perf_event", Exact, P::PerfEvent, None, F::NONE, Auto::None),
    d("lwt_in", Exact, P::LwtIn, None, F::NONE, Auto::None),
    d("lwt_out", Exact, P::LwtOut, None, F::NONE, Auto::None),
    d("lwt_xmit", Exact, P::LwtXmit, None, F::NONE, Auto::None),
    d("lwt_seg6local", Exact, P::LwtSeg6local, None, F::NONE, Auto::None),
    d("sockops", Exact, P::SockOps, Some(A::CgroupSockOps), F::ATTACHABLE_OPT, Auto::None),
    d("sk_skb/stream_parser", Exact, P::SkSkb, Some(A::SkSkbStreamParser), F::ATTACHABLE_OPT, Auto::None),
    d("sk_skb/stream_verdict", Exact, P::SkSkb, Some(A::SkSkbStreamVerdict), F::ATTACHABLE_OPT, Auto::None),
    d("sk_skb/verdict", Exact, P::SkSkb, Some(A::SkSkbVerdict), F::ATTACHABLE_OPT, Auto::None),
    d("sk_skb", Exact, P::SkSkb, None, F::NONE, Auto::None),
    d("sk_msg", Exact, P::SkMsg, Some(A::SkMsgVerdict), F::ATTACHABLE_OPT, Auto::None),
    d("lirc_mode2", Exact, P::LircMode2, Some(A::LircMode2), F::ATTACHABLE_OPT, Auto::None),
    d("flow_dissector", Exact, P::FlowDissector, Some(A::FlowDissector), F::ATTACHABLE_OPT, Auto::None),
    d("cgroup_skb/ingress", Exact, P::CgroupSkb, Some(A::CgroupInetIngress), F::ATTACHABLE_OPT, Auto::None),
    d("cgroup_skb/egress", Exact, P::CgroupSkb, Some(A::CgroupInetEgress), F::ATTACHABLE_OPT, Auto::None),
    d("cgroup/skb", Exact, P::CgroupSkb, None, F::NONE, Auto::None),
    d("cgroup/sock_create", Exact, P::CgroupSock, Some(A::CgroupInetSockCreate), F::ATTACHABLE, Auto::None),
    d("cgroup/sock_release", Exact, P::CgroupSock, Some(A::CgroupInetSockRelease), F::ATTACHABLE, Auto::None),
    d("cgroup/sock", Exact, P::CgroupSock, Some(A::CgroupInetSockCreate), F::ATTACHABLE_OPT, Auto::None),
    d("cgroup/post_bind4", Exact, P::CgroupSock, Some(A::CgroupInet4PostBind), F::ATTACHABLE, Auto::None),
    d("cgroup/post_bind6", Exact, P::CgroupSock, Some(A::CgroupInet6PostBind), F::ATTACHABLE, Auto::None),
    d("cgroup/bind4", Exact, P::CgroupSockAddr, Some(A::CgroupInet4Bind), F::ATTACHABLE, Auto::None),
    d("cgroup/bind6", Exact, P::CgroupSockAddr, Some(A::CgroupInet6Bind), F::ATTACHABLE, Auto::None),
    d("cgroup/connect4", Exact, P::CgroupSockAddr, Some(A::CgroupInet4Connect), F::ATTACHABLE, Auto::None),
    d("cgroup/connect6", Exact, P::CgroupSockAddr, Some(A::CgroupInet6Connect), F::ATTACHABLE, Auto::None),
    d("cgroup/connect_unix", Exact, P::CgroupSockAddr, Some(A::CgroupUnixConnect), F::ATTACHABLE, Auto::None),
    d("cgroup/sendmsg4", Exact, P::CgroupSockAddr, Some(A::CgroupUdp4Sendmsg), F::ATTACHABLE, Auto::None),
    d("cgroup/sendmsg6", Exact, P::CgroupSockAddr, Some(A::CgroupUdp6Sendmsg), F::ATTACHABLE, Auto::None),
    d("cgroup/sendmsg_unix", Exact, P::CgroupSockAddr, Some(A::CgroupUnixSendmsg), F::ATTACHABLE, Auto::None),
    d("cgroup/recvmsg4", Exact, P::CgroupSockAddr, Some(A::CgroupUdp4Recvmsg), F::ATTACHABLE, Auto::None),
    d("cgroup/recvmsg6", Exact, P::CgroupSockAddr, Some(A::CgroupUdp6Recvmsg), F::ATTACHABLE, Auto::None),
    d("cgroup/recvmsg_unix", Exact, P::CgroupSockAddr, Some(A::CgroupUnixRecvmsg), F::ATTACHABLE, Auto::None),
    d("cgroup/getpeername4", Exact, P::CgroupSockAddr, Some(A::CgroupInet4Getpeername), F::ATTACHABLE, Auto::None),
    d("cgroup/getpeername6", Exact, P::CgroupSockAddr, Some(A::CgroupInet6Getpeername), F::ATTACHABLE, Auto::None),
    d("cgroup/getpeername_unix", Exact, P::CgroupSockAddr, Some(A::CgroupUnixGetpeername), F::ATTACHABLE, Auto::None),
    d("cgroup/getsockname4", Exact, P::CgroupSockAddr, Some(A::CgroupInet4Getsockname), F::ATTACHABLE, Auto::None),
    d("cgroup/getsockname6", Exact, P::CgroupSockAddr, Some(A::CgroupInet6Getsockname), F::ATTACHABLE, Auto::None),
    d("cgroup/getsockname_unix", Exact, P::CgroupSockAddr, Some(A::CgroupUnixGetsockname), F::ATTACHABLE, Auto::None),
    d("cgroup/sysctl", Exact, P::CgroupSysctl, Some(A::CgroupSysctl), F::ATTACHABLE, Auto::None),
    d("cgroup/getsockopt", Exact, P::CgroupSockopt, Some(A::CgroupGetsockopt), F::ATTACHABLE, Auto::None),
    d("cgroup/setsockopt", Exact, P::CgroupSockopt, Some(A::CgroupSetsockopt), F::ATTACHABLE, Auto::None),
    d("cgroup/dev", Exact, P::CgroupDevice, Some(A::CgroupDevice), F::ATTACHABLE_OPT, Auto::None),
    d("struct_ops", Plus, P::StructOps, None, F::NONE, Auto::None),
    d("struct_ops.s", Plus, P::StructOps, None, F::SLEEPABLE, Auto::None),
    d("sk_lookup", Exact, P::SkLookup, Some(A::SkLookup), F::ATTACHABLE, Auto::None),
    d("netfilter", Exact, P::Netfilter, Some(A::Netfilter), F::NONE, Auto::None),
];
