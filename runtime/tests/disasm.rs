//! The disassembler against llvm-objdump on objects clang compiles here, and
//! on hand-encoded instructions clang 14 cannot emit (cpu v4 and later).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection, SectionKind};
use skelgen_runtime::insn::*;
use skelgen_test_support::{have_tool, require};

/// Arithmetic, memory, branches, calls, global data, byte swaps: every cpu
/// version compiles it.
const BASIC: &str = r##"
typedef unsigned char u8; typedef unsigned short u16;
typedef unsigned int u32; typedef unsigned long long u64;
#define SEC(n) __attribute__((section(n), used))
struct xdp_md { u32 data; u32 data_end; u32 data_meta; };
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *) 1;
struct {
	int (*type)[2];
	int (*max_entries)[4];
	u32 *key;
	u64 *value;
} counts SEC(".maps");
u64 total = 0;
u32 small = 0;
const volatile u64 limit = 100;
char buf[16];

static __attribute__((noinline)) int sub(int a, int b)
{
	return a * b + (a ^ b) - (a >> 3) + (int)((unsigned)a >> 2);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_prog(void *ctx)
{
	u32 key = 0;
	u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		__sync_fetch_and_add(&small, 3);
		*v += total;
	}
	if (total > limit)
		return sub((int)total, 3);
	return 0;
}

SEC("xdp")
int xdp_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	unsigned char *p = data;
	if (p + 24 > (unsigned char *)end)
		return 2;
	u16 x = __builtin_bswap16(*(u16 *)p);
	u32 y = __builtin_bswap32(*(u32 *)(p + 4));
	u64 z = __builtin_bswap64(*(u64 *)(p + 8));
	int a = (signed char)p[1];
	int b = (short)(p[2] << 8);
	long long c = (int)y;
	unsigned d = (unsigned)a / (unsigned)(b | 1);
	unsigned e = (unsigned)a % 7u;
	long long f = c >> 5;
	unsigned long long g = ~z * (z | 3);
	buf[0] = x;
	buf[1] = -a;
	*(u16 *)(buf + 2) = y;
	*(u32 *)(buf + 4) = (u32)z;
	*(volatile u64 *)&total = z + g + f + e + d + 0x123456789abcULL - (u64)p[20] / (u64)(p[21] | 1);
	if ((int)y < -5 || (long long)z <= -7)
		return 1;
	if (y & 0x10)
		return 3;
	if ((long long)g >= 40000000000LL)
		return 4;
	for (int i = 0; i < 4; i++)
		if (p[12 + i] == 0xff)
			return 0;
	return x > 1000 ? 0 : 2;
}

SEC("socket")
int sock_neg(unsigned long long *p)
{
	p[0] = 0xffffffff80000000ULL;
	p[1] = 0x8000000000000000ULL;
	p[2] = -p[3];
	return p[4] == -1ULL ? 0x80000000 : (long long)p[5] < 0xffffffff80000000LL;
}
char LICENSE[] SEC("license") = "GPL";
"##;

/// Every atomic clang 14 emits with `-mcpu=v3`.
const ATOMICS: &str = r##"
typedef unsigned int u32; typedef unsigned long long u64;
#define SEC(n) __attribute__((section(n), used))
u64 g64;
u32 g32;
SEC("tp/x/y")
int atomics(u64 *p)
{
	u64 a = __sync_fetch_and_add(&g64, p[0]);
	u64 b = __sync_fetch_and_or(&g64, p[1]);
	u64 c = __sync_fetch_and_and(&g64, p[2]);
	u64 d = __sync_fetch_and_xor(&g64, p[3]);
	u64 e = __sync_val_compare_and_swap(&g64, a, b);
	u64 f = __sync_lock_test_and_set(&g64, c);
	u32 h = __sync_fetch_and_add(&g32, (u32)p[4]);
	u32 i = __sync_fetch_and_or(&g32, (u32)p[5]);
	u32 j = __sync_fetch_and_and(&g32, (u32)p[6]);
	u32 k = __sync_fetch_and_xor(&g32, (u32)p[7]);
	u32 l = __sync_val_compare_and_swap(&g32, h, i);
	u32 m = __sync_lock_test_and_set(&g32, j);
	__sync_fetch_and_or(&g32, 1);
	__sync_fetch_and_and(&g32, 2);
	__sync_fetch_and_xor(&g32, 3);
	__sync_fetch_and_add(&g32, 4);
	__sync_fetch_and_or(&g64, 1);
	__sync_fetch_and_and(&g64, 2);
	__sync_fetch_and_xor(&g64, 3);
	__sync_fetch_and_sub(&g64, 5);
	return a + b + c + d + e + f + h + i + j + k + l + m;
}
"##;

/// Forms the compiler does not pick on its own, written as clang 14's
/// assembler reads them.
const ASM_FORMS: &str = r##"
#define SEC(n) __attribute__((section(n), used))
SEC("socket")
int asm_forms(void *ctx)
{
	asm volatile(
		"r0 = 0\n"
		"r1 = r2\n" "w1 = w2\n" "r1 = -1\n" "w1 = -1\n" "r1 = 2147483647\n"
		"r1 += r2\n" "r1 -= 5\n" "r1 *= r2\n" "r1 /= 3\n" "r1 |= r2\n" "r1 &= 255\n"
		"r1 <<= r2\n" "r1 >>= 7\n" "r1 ^= -8\n" "r1 s>>= r2\n" "r1 s>>= 63\n"
		"w1 += w2\n" "w1 -= 5\n" "w1 *= w2\n" "w1 /= 3\n" "w1 |= w2\n" "w1 &= 255\n"
		"w1 <<= w2\n" "w1 >>= 7\n" "w1 ^= -8\n" "w1 s>>= w2\n" "w1 s>>= 31\n"
		"r1 -= r2\n" "r1 /= r2\n" "r1 ^= r2\n" "r1 >>= r2\n" "w1 -= w2\n" "w1 ^= w2\n"
		"r1 = -r1\n" "w1 = -w1\n"
		"r1 = be16 r1\n" "r1 = be32 r1\n" "r1 = be64 r1\n"
		"r1 = le16 r1\n" "r1 = le32 r1\n" "r1 = le64 r1\n"
		"r1 = 0x123456789abcdef0 ll\n" "r2 = -1 ll\n" "r3 = 0 ll\n" "r4 = 2147483648 ll\n"
		"r1 = *(u8 *)(r2 + 0)\n" "r1 = *(u16 *)(r2 - 2)\n"
		"r1 = *(u32 *)(r2 + 32767)\n" "r1 = *(u64 *)(r10 - 32768)\n"
		"*(u8 *)(r2 + 0) = r1\n" "*(u16 *)(r2 - 2) = r1\n"
		"*(u32 *)(r2 + 4) = r1\n" "*(u64 *)(r10 - 8) = r1\n"
		"r6 = r1\n"
		"r0 = *(u8 *)skb[1]\n" "r0 = *(u16 *)skb[2]\n" "r0 = *(u32 *)skb[4]\n"
		"r0 = *(u8 *)skb[r3]\n" "r0 = *(u16 *)skb[r3]\n" "r0 = *(u32 *)skb[r3]\n"
		"lock *(u64 *)(r1 + 8) += r2\n" "lock *(u64 *)(r1 + 8) |= r2\n"
		"lock *(u64 *)(r1 + 8) &= r2\n" "lock *(u64 *)(r1 - 8) ^= r2\n"
		"lock *(u32 *)(r1 + 8) += w2\n" "lock *(u32 *)(r1 + 8) |= w2\n"
		"lock *(u32 *)(r1 + 8) &= w2\n" "lock *(u32 *)(r1 - 8) ^= w2\n"
		"if r1 == r2 goto +1\n" "if r1 != 5 goto +1\n" "if r1 > r2 goto +1\n"
		"if r1 >= -1 goto +1\n" "if r1 < r2 goto +1\n" "if r1 <= 7 goto +1\n"
		"if r1 s> r2 goto +1\n" "if r1 s>= -3 goto +1\n" "if r1 s< r2 goto +1\n"
		"if r1 s<= 9 goto +1\n"
		"if w1 == w2 goto +1\n" "if w1 != 5 goto +1\n" "if w1 > w2 goto +1\n"
		"if w1 >= -1 goto +1\n" "if w1 < w2 goto +1\n" "if w1 <= 7 goto +1\n"
		"if w1 s> w2 goto +1\n" "if w1 s>= -3 goto +1\n" "if w1 s< w2 goto +1\n"
		"if w1 s<= 9 goto +1\n"
		"goto +0\n" "goto -2\n" "if r9 == 0 goto -32768\n" "goto +32767\n"
		"call 1\n" "call 14\n" "call 212\n"
		::: "r0", "r1", "r2", "r3", "r4", "r5", "r6", "memory");
	return 0;
}
"##;

/// Whether a test that needs clang and llvm-objdump may skip without them.
fn tools_available() -> bool {
    require(have_tool("clang"), "clang is not installed")
        && require(have_tool("llvm-objdump"), "llvm-objdump is not installed")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("skelgen-disasm-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn compile(dir: &Path, name: &str, src: &str, cpu: &str) -> PathBuf {
    let c = dir.join(format!("{name}.bpf.c"));
    let o = dir.join(format!("{name}.{cpu}.bpf.o"));
    std::fs::write(&c, src).unwrap();
    let out = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", &format!("-mcpu={cpu}"), "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clang {name} -mcpu={cpu} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    o
}

type Listing = BTreeMap<String, BTreeMap<usize, String>>;

/// llvm-objdump's listing: section -> slot index -> text, with the label
/// after jump targets dropped and spaces collapsed.
fn objdump(obj: &Path, alu32: bool) -> Listing {
    let mut cmd = Command::new("llvm-objdump");
    cmd.args(["-d", "--no-show-raw-insn"]);
    if alu32 {
        cmd.arg("--mattr=+alu32");
    }
    let out = cmd.arg(obj).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut listing = Listing::new();
    let mut section = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("Disassembly of section ") {
            let name = name.trim_end_matches(':').to_owned();
            listing.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        let Some((index, insn)) = line.split_once(":\t") else {
            continue;
        };
        let Ok(index) = index.trim().parse::<usize>() else {
            continue;
        };
        let mut insn = insn.trim();
        if insn.ends_with('>') {
            if let Some(at) = insn.rfind(" <") {
                insn = &insn[..at];
            }
        }
        let insn = insn.split_whitespace().collect::<Vec<_>>().join(" ");
        let section = section
            .clone()
            .expect("instruction before any section header");
        listing.get_mut(&section).unwrap().insert(index, insn);
    }
    listing
}

fn is_atomic32(insn: &Insn) -> bool {
    insn.code == BPF_STX | BPF_ATOMIC | BPF_W
}

/// Disassemble every code section of `obj` and compare with llvm-objdump;
/// returns how many instructions were compared.
fn compare(obj: &Path) -> usize {
    let data = std::fs::read(obj).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let plain = objdump(obj, false);
    let alu32 = objdump(obj, true);
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for section in file.sections() {
        if section.kind() != SectionKind::Text || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap().to_owned();
        let insns = Insn::from_bytes(section.data().unwrap()).unwrap();
        let lines = disasm_lines(&insns, |_| None);
        let (Some(plain), Some(alu32)) = (plain.get(&name), alu32.get(&name)) else {
            panic!("{}: llvm-objdump has no section {name}", obj.display());
        };
        let ours: Vec<usize> = lines.iter().map(|l| l.index).collect();
        let theirs: Vec<usize> = plain.keys().copied().collect();
        assert_eq!(ours, theirs, "{name}: instruction boundaries");
        for line in &lines {
            // llvm-objdump decodes 32-bit atomics only with alu32 on.
            let listing = if is_atomic32(&insns[line.index]) {
                alu32
            } else {
                plain
            };
            let want = &listing[&line.index];
            assert!(
                !want.contains("<unknown>"),
                "{name}:{}: objdump cannot decode",
                line.index
            );
            if *want != line.text {
                mismatches.push(format!(
                    "{name}:{}: want `{want}`, got `{}`",
                    line.index, line.text
                ));
            }
            compared += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}:\n{}",
        obj.display(),
        mismatches.join("\n")
    );
    compared
}

#[test]
fn matches_llvm_objdump_on_clang_output() {
    if !tools_available() {
        return;
    }
    let dir = TempDir::new("objdump");
    let mut total = 0;
    for cpu in ["v1", "v2", "v3"] {
        total += compare(&compile(&dir.0, "basic", BASIC, cpu));
    }
    total += compare(&compile(&dir.0, "atomics", ATOMICS, "v3"));
    let forms = compare(&compile(&dir.0, "asm_forms", ASM_FORMS, "v3"));
    assert!(
        forms > 90,
        "inline asm block compiled to {forms} instructions"
    );
    total += forms;
    eprintln!("compared {total} instructions with llvm-objdump");
}

/// Hand-encoded instructions: cpu v4 forms and what loaders write.
#[test]
fn forms_newer_than_clang_14() {
    let one = |insn: Insn| insn_text(&[insn], 0).unwrap().0;
    let cases = [
        (
            Insn::new(BPF_ALU64 | BPF_DIV | BPF_X, 1, 2, 1, 0),
            "r1 s/= r2",
        ),
        (
            Insn::new(BPF_ALU | BPF_MOD | BPF_K, 1, 0, 1, -3),
            "w1 s%= -3",
        ),
        (
            Insn::new(BPF_ALU64 | BPF_MOD | BPF_X, 3, 4, 0, 0),
            "r3 %= r4",
        ),
        (
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 8, 0),
            "r1 = (s8)r2",
        ),
        (
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 16, 0),
            "r1 = (s16)r2",
        ),
        (
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 32, 0),
            "r1 = (s32)r2",
        ),
        (
            Insn::new(BPF_ALU | BPF_MOV | BPF_X, 1, 2, 8, 0),
            "w1 = (s8)w2",
        ),
        (
            Insn::new(BPF_ALU64 | BPF_END | BPF_TO_LE, 1, 0, 0, 16),
            "r1 = bswap16 r1",
        ),
        (
            Insn::new(BPF_ALU64 | BPF_END | BPF_TO_LE, 5, 0, 0, 64),
            "r5 = bswap64 r5",
        ),
        (
            Insn::new(BPF_LDX | BPF_MEMSX | BPF_B, 1, 2, -4, 0),
            "r1 = *(s8 *)(r2 - 4)",
        ),
        (
            Insn::new(BPF_LDX | BPF_MEMSX | BPF_W, 1, 2, 0, 0),
            "r1 = *(s32 *)(r2 + 0)",
        ),
        (
            Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, -70000),
            "gotol -70000",
        ),
        (
            Insn::new(BPF_JMP | BPF_JSET | BPF_X, 1, 2, 3, 0),
            "if r1 & r2 goto +3",
        ),
        (
            Insn::new(BPF_JMP32 | BPF_JSET | BPF_K, 1, 0, -1, 4),
            "if w1 & 4 goto -1",
        ),
        (Insn::new(BPF_JMP | BPF_JCOND, 0, 0, 5, 0), "may_goto +5"),
        (
            Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, 42),
            "*(u64 *)(r10 - 8) = 42",
        ),
        (
            Insn::new(BPF_ST | BPF_MEM | BPF_B, 1, 0, 3, -1),
            "*(u8 *)(r1 + 3) = -1",
        ),
        (
            Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, -5),
            "call -5",
        ),
        (
            Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 1234),
            "call 1234",
        ),
        (
            Insn::new(BPF_JMP | BPF_CALL | BPF_X, 3, 0, 0, 0),
            "callx r3",
        ),
        (
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 1, 1),
            "r1 = addr_space_cast(r2, 0, 1)",
        ),
        (
            Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, 1, 2, 0, BPF_LOAD_ACQ),
            "r1 = load_acquire((u64 *)(r2 + 0))",
        ),
        (
            Insn::new(BPF_STX | BPF_ATOMIC | BPF_W, 1, 2, 8, BPF_STORE_REL),
            "store_release((u32 *)(r1 + 8), w2)",
        ),
        (
            Insn::new(BPF_LD | BPF_IND | BPF_W, 0, 3, 0, 8),
            "r0 = *(u32 *)skb[r3 + 8]",
        ),
        (Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0), "exit"),
    ];
    for (insn, want) in cases {
        assert_eq!(one(insn), want, "{insn:?}");
    }
}

#[test]
fn ld_imm64_kinds() {
    let text = |src: u8, imm: u64| {
        let pair = Insn::ld_imm64(1, src, imm);
        let (text, slots) = insn_text(&pair, 0).unwrap();
        assert_eq!(slots, 2);
        text
    };
    assert_eq!(text(0, 0), "r1 = 0 ll");
    assert_eq!(text(0, u64::MAX), "r1 = -1 ll");
    assert_eq!(text(0, 0x1_0000_0000), "r1 = 4294967296 ll");
    assert_eq!(text(BPF_PSEUDO_MAP_FD, 5), "r1 = map[fd:5] ll");
    assert_eq!(
        text(BPF_PSEUDO_MAP_VALUE, (16 << 32) | 5),
        "r1 = map[fd:5][0]+16 ll"
    );
    assert_eq!(text(BPF_PSEUDO_MAP_IDX, 2), "r1 = map[idx:2] ll");
    assert_eq!(
        text(BPF_PSEUDO_MAP_IDX_VALUE, (4 << 32) | 2),
        "r1 = map[idx:2][0]+4 ll"
    );
    assert_eq!(text(BPF_PSEUDO_BTF_ID, 77), "r1 = btf_id[77] ll");
    assert_eq!(text(BPF_PSEUDO_FUNC, 12), "r1 = func[+12] ll");
    assert!(text(9, 1).starts_with("invalid"));

    let pair = Insn::ld_imm64(2, 0, 0xdead_beef_0000_0001);
    assert!(pair[0].is_ld_imm64());
    assert_eq!(pair[0].imm64(&pair[1]), 0xdead_beef_0000_0001);
    // A truncated pair is reported, not indexed past the end.
    assert_eq!(
        insn_text(&pair[..1], 0),
        Some(("invalid ld_imm64: second slot missing".to_owned(), 1))
    );
}

#[test]
fn lines_skip_second_slot_and_carry_notes() {
    let mut insns = Vec::new();
    insns.extend(Insn::ld_imm64(1, BPF_PSEUDO_MAP_FD, 3));
    insns.push(Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 1));
    insns.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    let lines = disasm(&insns, |i| {
        (i == 2).then(|| "bpf_map_lookup_elem".to_owned())
    });
    assert_eq!(
        lines,
        [
            "    0: r1 = map[fd:3] ll",
            "    2: call 1  ; bpf_map_lookup_elem",
            "    3: exit",
        ]
    );
    assert!(disasm(&[], |_| None).is_empty());
}

#[test]
fn no_opcode_panics() {
    let offs = [0i16, 1, -1, 8, 16, 32, i16::MIN, i16::MAX];
    let imms = [
        0i32,
        1,
        -1,
        16,
        32,
        64,
        0xe1,
        0xf1,
        0x100,
        0x110,
        i32::MIN,
        i32::MAX,
    ];
    let mut invalid = 0;
    for code in 0..=255u8 {
        for &off in &offs {
            for &imm in &imms {
                let insns = [
                    Insn::new(code, 10, 15, off, imm),
                    Insn::new(code, 0, 0, 0, 0),
                ];
                let lines = disasm_lines(&insns, |_| None);
                assert!(!lines.is_empty());
                invalid += lines
                    .iter()
                    .filter(|l| l.text.starts_with("invalid"))
                    .count();
            }
        }
    }
    assert!(invalid > 0);
    let text = insn_text(&[Insn::new(0xff, 1, 2, 3, 4)], 0).unwrap().0;
    assert_eq!(text, "invalid opcode 0xff (dst r1, src r2, off 3, imm 4)");
    assert_eq!(insn_text(&[], 0), None);
}

#[test]
fn encoding() {
    let mut insn = Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, -4);
    assert_eq!(
        insn.to_le_bytes(),
        [0x07, 0x01, 0, 0, 0xfc, 0xff, 0xff, 0xff]
    );
    insn.set_dst(10);
    insn.set_src(3);
    assert_eq!((insn.dst(), insn.src()), (10, 3));
    insn.set_dst(0x1f);
    assert_eq!((insn.dst(), insn.src()), (15, 3));

    let bytes = [
        0xb7, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, // r0 = 42
        0x85, 0x10, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, // call -1 (pseudo)
        0x63, 0x1a, 0xf8, 0xff, 0x00, 0x00, 0x00, 0x00, // *(u32 *)(r10 - 8) = r1
        0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
    ];
    let insns = Insn::from_bytes(&bytes).unwrap();
    assert_eq!(insns.len(), 4);
    assert_eq!(Insn::to_bytes(&insns), bytes);
    assert!(insns[1].is_call() && insns[1].is_pseudo_call() && !insns[1].is_helper_call());
    assert!(insns[3].is_exit() && !insns[0].is_exit());
    assert_eq!((insns[2].dst(), insns[2].src(), insns[2].off), (10, 1, -8));
    let text: Vec<String> = disasm_lines(&insns, |_| None)
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(
        text,
        ["r0 = 42", "call -1", "*(u32 *)(r10 - 8) = r1", "exit"]
    );

    let err = Insn::from_bytes(&bytes[..13]).unwrap_err();
    assert_eq!(
        err,
        InsnError::BadLength {
            len: 13,
            trailing: 5
        }
    );
    assert!(err.to_string().contains("13"));
    assert!(Insn::from_bytes(&[]).unwrap().is_empty());
}
