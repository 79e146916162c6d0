#!/usr/bin/env bash
# The kernel matrix: every kernel test binary of the workspace, run as root
# inside a VM of each of Debian's 6.1 and 6.12 kernels (qemu under TCG,
# virtme-ng sharing this machine's files read-only), with
# SKELGEN_REQUIRE_KERNEL=1, so that a skip not backed by tests/kernel-matrix.tsv
# fails.
#
#   scripts/vm-test.sh [6.1|6.12 ...]      (default: both)
#
# Installs what it needs if missing (root): qemu-system-x86, busybox-static
# (virtme-ng builds its initramfs with it), the newest Debian kernel images
# linux-image-6.1.0-*-amd64-unsigned / linux-image-6.12.*+deb12-amd64-unsigned
# and virtme-ng from PyPI in a venv ($SKELGEN_VNG_VENV, default /opt/vng).
# Builds the test binaries once on the host (`cargo test --workspace --no-run`),
# then boots one VM per kernel (under `flock /tmp/vm.lock`: one VM at a time on
# the machine) that runs them all (scripts/vm-guest.sh). runtime/tests/matrix.rs
# runs first: it checks the table against the runtime's own feature probes.
#
# Prints one line per kernel and one line per failing test, naming the kernel;
# exits non-zero on any failure. Logs: $SKELGEN_VM_LOGS (default
# target/vm-test/<kernel>/NNN.log, one per binary). The guest needs no network.
#
# Environment: SKELGEN_VM_TESTS (an extended regex: run only the binaries
# whose label, e.g. skelgen-runtime/attach, matches; the matrix check still
# runs first), SKELGEN_VM_TEST_TIMEOUT (seconds per binary, default 900),
# SKELGEN_VM_CPUS (default 2), SKELGEN_VM_MEMORY (default 3G).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Test targets that never run in the VMs, each with the reason. They run on
# the host (scripts/test.sh); under TCG they would only burn the budget.
# Label: <package>/<target> (<package>/lib and <package>/bin:<name> for unit
# tests). Every other test binary is picked up, new ones included.
declare -A HOST_ONLY=(
	[skelgen-macro/ui]="trybuild: compiles crates with cargo"
	[skelgen-macro/expand]="macro expansion: no kernel"
	[skelgen/types]="compiles every fixture's skeleton with cargo"
	[skelgen/builder]="runs clang through Builder: no kernel"
	[skelgen/cli]="generator CLI: no kernel"
	[skelgen/embed_size]="generator output vs bpftool's: no kernel"
	[skelgen/strip]="ELF stripping vs llvm-objcopy: no kernel"
	[skelgen/fuzz_regressions]="parser/generator regressions: no kernel"
	[skelgen/link_fuzz_regressions]="static linker regressions: no kernel"
	[skelgen/lib]="generator unit tests: no kernel"
	[skelgen-macro/lib]="proc-macro unit tests: no kernel"
	[skelgen-runtime/object]="ELF object model parser: no kernel"
	[skelgen-runtime/object_bad_input]="parser on malformed objects: no kernel"
	[skelgen-runtime/section]="SEC() table: no kernel"
	[skelgen-runtime/fuzz_regressions]="parser regressions: no kernel"
	[skelgen-runtime/disasm]="disassembler vs llvm-objdump: no kernel"
	[skelgen-cli/cli]="generator CLI: no kernel"
	[skelgen-cli/strip]="ELF stripping vs llvm-objcopy: no kernel"
	[skelgen-cli/embed_size]="generator output vs bpftool's: no kernel"
	[skelgen-cli/btf_dump]="BTF to C vs bpftool btf dump: no kernel"
	[skelgen-cli/link]="skelgen link from the command line: no kernel"
	[skelgen-cli/bin:skelgen]="CLI unit tests: no kernel"
	[skelgen-cli/new]="builds, lints and runs a generated crate with cargo: the guest's filesystem is read-only and cargo would rebuild it under TCG"
	[skelgen/kernel_types]="compiles a scratch crate of kernel types with cargo: the guest's filesystem is read-only (the host runs it on the host kernel's BTF)"
)
# Targets of which only some tests touch the kernel: the libtest filter.
declare -A ONLY=(
	[skelgen-runtime/btf]="vmlinux"         # the running kernel's BTF; the rest parses bytes
	[skelgen-runtime/core_reloc]="fixture_" # CO-RE of the fixture against the kernel's BTF; the rest is pure
	[skelgen-cli/inspect]="loadall"         # bpftool prog loadall of every fixture; the rest is pure
)
# Run first: the table against the runtime's probes.
FIRST="skelgen-runtime/matrix"

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
for k in "${kernels[@]}"; do
	case $k in
	6.1 | 6.12) ;;
	*)
		echo "vm-test.sh: unknown kernel '$k' (want 6.1 or 6.12)" >&2
		exit 2
		;;
	esac
done

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
apt_updated=
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$apt_updated" ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	echo "vm-test.sh: installing $*" >&2
	as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The newest installed /boot/vmlinuz matching a glob, else the newest
# matching image package, installed.
kernel_image() {
	local glob=$1 pkg_re=$2 img pkg
	img=$(ls /boot/vmlinuz-$glob 2>/dev/null | sort -V | tail -n1 || true)
	if [ -z "$img" ]; then
		[ -n "$apt_updated" ] || as_root apt-get update -qq
		pkg=$(apt-cache search --names-only "$pkg_re" | awk '{print $1}' | sort -V | tail -n1)
		[ -n "$pkg" ] || {
			echo "vm-test.sh: no package matches $pkg_re" >&2
			return 1
		}
		apt_install "$pkg"
		img=$(ls /boot/vmlinuz-$glob 2>/dev/null | sort -V | tail -n1)
	fi
	echo "$img"
}

command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86
[ -x /bin/busybox ] || dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static
command -v python3 >/dev/null || apt_install python3

venv=${SKELGEN_VNG_VENV:-/opt/vng}
if [ ! -x "$venv/bin/vng" ]; then
	python3 -m venv "$venv" 2>/dev/null || {
		apt_install python3-venv
		python3 -m venv "$venv"
	}
	echo "vm-test.sh: installing virtme-ng into $venv"
	"$venv/bin/pip" install -q virtme-ng
fi
# vng starts virtme-run by name.
export PATH="$venv/bin:$PATH"

declare -A image
for k in "${kernels[@]}"; do
	case $k in
	6.1) image[$k]=$(kernel_image '6.1.0-*-amd64' '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$') ;;
	6.12) image[$k]=$(kernel_image '6.12.*+deb12-amd64' '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$') ;;
	esac
done

# Build every test binary once, on the host.
target_dir=${CARGO_TARGET_DIR:-$root/target}
logs=${SKELGEN_VM_LOGS:-$target_dir/vm-test}
mkdir -p "$logs"
echo "vm-test.sh: building test binaries"
build_start=$(date +%s)
. scripts/cargo-env.sh
cargo test --workspace --locked --no-run --message-format=json >"$logs/build.json"
echo "vm-test.sh: built in $(($(date +%s) - build_start))s"

# crate-dir, label, executable, filter; FIRST first.
list=$logs/binaries.tsv
python3 - "$logs/build.json" "$FIRST" >"$list.all" <<'EOF'
import json, os, sys
rows = []
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if not m["profile"]["test"]:
        continue
    t = m["target"]
    pkg = m["package_id"]
    # package_id: "path+file:///dir#name@ver", "path+file:///dir#ver" (the
    # name is the directory's) or, from older cargo, "name ver (path+...)".
    if "#" in pkg:
        url, frag = pkg.split("#", 1)
        name = frag.split("@")[0] if "@" in frag else os.path.basename(url.rstrip("/"))
    else:
        name = pkg.split()[0]
    kind = t["kind"][0]
    if kind == "test":
        label = f"{name}/{t['name']}"
    elif kind == "bin":
        label = f"{name}/bin:{t['name']}"
    else:
        label = f"{name}/lib"
    rows.append((label, os.path.dirname(m["manifest_path"]), m["executable"]))
rows.sort(key=lambda r: (r[0] != sys.argv[2], r[0]))
for label, d, exe in rows:
    print(f"{d}\t{label}\t{exe}")
EOF
: >"$list"
skipped_host_only=0
while IFS=$'\t' read -r dir label exe; do
	if [ -n "${HOST_ONLY[$label]:-}" ]; then
		skipped_host_only=$((skipped_host_only + 1))
		continue
	fi
	if [ -n "${SKELGEN_VM_TESTS:-}" ] && [ "$label" != "$FIRST" ] &&
		! [[ $label =~ $SKELGEN_VM_TESTS ]]; then
		continue
	fi
	printf '%s\t%s\t%s\t%s\n' "$dir" "$label" "$exe" "${ONLY[$label]:-}" >>"$list"
done <"$list.all"
grep -q "	$FIRST	" "$list" || {
	echo "vm-test.sh: no $FIRST test binary (runtime/tests/matrix.rs)" >&2
	exit 1
}
echo "vm-test.sh: $(wc -l <"$list") test binaries for the VMs ($skipped_host_only host-only)"

# The guest runs a copy of its script: bash reads a script as it goes, so an
# edit of scripts/vm-guest.sh during a run would break the run.
guest=$logs/vm-guest.sh
cp scripts/vm-guest.sh "$guest"

# Test binaries linked to the toolchain's libstd (proc-macro crates) find it
# there, as under cargo test.
rust_libs=$(rustc --print sysroot)/lib

failed=0
summary=()
for k in "${kernels[@]}"; do
	out=$logs/$k
	# A guest that dies without finishing, every finished binary passing, is
	# booted again, up to three times. Seen on 6.12 under TCG, at a different
	# test each time: the guest kernel oopses on an int3 in
	# bpf_dispatcher_xdp_func ("Fatal exception in interrupt"), i.e. a vCPU
	# runs the XDP dispatcher while another live-patches it (text_poke_bp),
	# which TCG's cross-vCPU code invalidation races; not our code, and not
	# seen on 6.1. The console, with the kernel's messages (-v), is kept as
	# console.died.log. Test failures are never retried.
	for attempt in 1 2 3; do
	rm -rf "$out"
	mkdir -p "$out"
	[ ! -f "$logs/$k.console.died.log" ] || cp "$logs/$k.console.died.log" "$out/console.died.log"
	start=$(date +%s)
	echo "vm-test.sh: booting ${image[$k]} (waiting for /tmp/vm.lock)"
	set +e
	# The time is counted from when the VM lock is ours (another VM on the
	# machine may hold it first), so the line shows what the kernel took.
	flock /tmp/vm.lock sh -c 'date +%s >"$0"; exec "$@"' "$out/started" \
		vng -v -r "${image[$k]}" --disable-kvm \
		--memory "${SKELGEN_VM_MEMORY:-4G}" --cpus "${SKELGEN_VM_CPUS:-$(case $k in 6.12) echo 1;; *) echo 2;; esac)}" \
		--append "lsm=lockdown,capability,landlock,yama,apparmor,bpf" \
		--rwdir "$out" --cwd "$root" \
		-- "bash $guest $list $out $rust_libs" >"$out/console.log" 2>&1
	vng_rc=$?
	set -e
	# Retry only a guest that died with every finished binary passing.
	if [ -f "$out/finished" ] || [ "$attempt" = 3 ] ||
		cat "$out"/*.rc 2>/dev/null | grep -qv '^0$'; then
		break
	fi
	cp "$out/console.log" "$logs/$k.console.died.log"
	echo "vm-test.sh: the $k guest died (vng exit $vng_rc) before finishing; booting it again (console: $logs/$k.console.died.log)"
	done
	end=$(date +%s)
	started=$(cat "$out/started" 2>/dev/null || echo "$start")
	secs=$((end - started))
	waited=$((started - start))
	[ "$waited" -lt 5 ] || echo "vm-test.sh: waited ${waited}s for /tmp/vm.lock"
	line=$(python3 - "$out" "$k" "$secs" "$vng_rc" <<'EOF'
import glob, os, re, sys
out, k, secs, vng_rc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def read(p, d=""):
    try:
        return open(p, errors="replace").read().strip()
    except OSError:
        return d
kernel = read(os.path.join(out, "kernel"), k)
rel = kernel.split("-")[0].split("+")[0]
passed = failed = ignored = lacking = 0
fails = []
for lab in sorted(glob.glob(os.path.join(out, "*.label"))):
    base = lab[:-len(".label")]
    label = read(lab)
    log = read(base + ".log")
    rc = read(base + ".rc", "missing")
    p = f = 0
    ok_tests = set()
    for m in re.finditer(r"^test (\S+) \.\.\. (ok|FAILED|ignored)", log, re.M):
        name, st = m.groups()
        if st == "ok":
            p += 1
            ok_tests.add(name)
        elif st == "FAILED":
            f += 1
            fails.append(f"FAIL kernel {kernel}: {label}::{name} (log {base}.log)")
        else:
            ignored += 1
    # Tests that took the table's "lacks" branch printed matrix::has's line.
    cur = None
    lack = set()
    for l in log.splitlines():
        m = re.match(r"^---- (\S+) stdout ----$", l)
        if m:
            cur = m.group(1)
        elif l.strip() in ("successes:", "failures:"):
            cur = None
        elif cur and re.match(rf"^kernel {re.escape(k)} lacks ", l):
            lack.add(cur)
    lacking += len(lack & ok_tests)
    passed += p
    failed += f
    if rc != "0" and f == 0:
        failed += 1
        fails.append(f"FAIL kernel {kernel}: {label}: exit status {rc} without a failing test (log {base}.log)")
if not os.path.exists(os.path.join(out, "finished")):
    failed += 1
    fails.append(f"FAIL kernel {kernel}: the guest did not finish (vng exit {vng_rc}; console {out}/console.log)")
for f in fails:
    print(f)
print(f"kernel {rel}: {passed} passed, {failed} failed, {lacking} skipped (feature table), "
      f"{ignored} ignored, {secs // 60}m{secs % 60:02d}s")
sys.exit(1 if failed else 0)
EOF
	) || failed=1
	echo "$line"
	summary+=("$(echo "$line" | tail -n1)")
done
echo "vm-test.sh: summary"
printf '  %s\n' "${summary[@]}"
exit $failed
