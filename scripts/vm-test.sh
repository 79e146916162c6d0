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
# then boots one VM per kernel, all at once, one vCPU each (the machine has
# two cores and the guests run their tests one at a time anyway), each
# running them all (scripts/vm-guest.sh). runtime/tests/matrix.rs runs first:
# it checks the table against the runtime's own feature probes.
#
# Prints a line per finished binary as it goes ("[6.1] label rc=0 12s"), one
# line per kernel and one line per failing test, naming the kernel; exits
# non-zero on any failure. Logs: $SKELGEN_VM_LOGS (default
# target/vm-test/<kernel>/NNN.log, one per binary). The guest needs no network.
#
# Environment: SKELGEN_VM_TESTS (an extended regex: run only the binaries
# whose label, e.g. skelgen-runtime/attach, matches; the matrix check still
# runs first), SKELGEN_VM_TEST_TIMEOUT (seconds per binary, default 600),
# SKELGEN_VM_DEADLINE (seconds per guest, default 2100: a guest still running
# then is stopped and reported with the binary it was in, so that a hang
# cannot eat CI's whole budget), SKELGEN_VM_SERIAL=1 (one VM at a time, under
# `flock /tmp/vm.lock`, for a machine shared with other VM users),
# SKELGEN_VM_CPUS (default 1), SKELGEN_VM_MEMORY (default 3G).
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
	[skelgen/btf_dump]="BTF to C compiled by clang: the guest copies out its /sys/kernel/btf/vmlinux and this script dumps and compiles it on the host after the run (clang on a 3 MB header took 8 of 25 minutes under TCG)"
	[skelgen/kernel_types]="compiles a scratch crate of kernel types with cargo: the guest's filesystem is read-only (the host runs it on the host kernel's BTF)"
)
# Targets of which only some tests touch the kernel: libtest arguments (name
# filters, or --skip NAME), split on blanks. The tests left out run on the
# host; under TCG the pure ones only burn the budget (a parser loop of
# thousands of mutants takes minutes there).
declare -A ARGS=(
	[skelgen-runtime/btf]="vmlinux"         # the running kernel's BTF; the rest parses bytes
	[skelgen-runtime/core_reloc]="fixture_" # CO-RE of the fixture against the kernel's BTF; the rest is pure
	[skelgen-cli/inspect]="loadall"         # bpftool prog loadall of every fixture; the rest is pure
	[skelgen-runtime/usdt]="--skip mangled_notes_never_panic" # a parser loop
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
logs=$(cd "$logs" && pwd) # the guests and the host-side BTF check cd elsewhere
echo "vm-test.sh: building test binaries"
build_start=$(date +%s)
. scripts/cargo-env.sh
cargo test --workspace --locked --no-run --message-format=json >"$logs/build.json"
echo "vm-test.sh: built in $(($(date +%s) - build_start))s"

# crate-dir, label, executable, libtest arguments; FIRST first.
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
	printf '%s\t%s\t%s\t%s\n' "$dir" "$label" "$exe" "${ARGS[$label]:-}" >>"$list"
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

deadline=${SKELGEN_VM_DEADLINE:-2100}

# Prints "[k] label rc=0 12s" for each binary the guest in $2 finishes.
follow_progress() {
	local k=$1 out=$2 n=1 id
	while :; do
		id=$(printf '%03d' "$n")
		if [ -f "$out/$id.secs" ]; then
			echo "vm-test.sh: [$k] $(cat "$out/$id.label") rc=$(cat "$out/$id.rc") $(cat "$out/$id.secs")s"
			n=$((n + 1))
		else
			sleep 5
		fi
	done
}

# One kernel: boot, run, retry a guest that died, summarise into $logs/$k.line.
run_kernel() {
	local k=$1 out=$logs/$1 attempt start started end secs vng_rc=0 follow
	local lock=()
	[ "${SKELGEN_VM_SERIAL:-0}" = 0 ] || lock=(flock /tmp/vm.lock)
	# A guest that dies without finishing, every finished binary passing, is
	# booted again, up to three times. Seen on 6.12 under TCG with two vCPUs,
	# at a different test each time: the guest kernel oopses on an int3 in
	# bpf_dispatcher_xdp_func ("Fatal exception in interrupt"), i.e. a vCPU
	# runs the XDP dispatcher while another live-patches it (text_poke_bp),
	# which TCG's cross-vCPU code invalidation races; not our code, and not
	# seen on 6.1 nor with one vCPU. The console, with the kernel's messages
	# (-v), is kept as console.died.log. Test failures are never retried.
	for attempt in 1 2 3; do
		rm -rf "$out"
		mkdir -p "$out"
		[ ! -f "$logs/$k.console.died.log" ] || cp "$logs/$k.console.died.log" "$out/console.died.log"
		start=$(date +%s)
		echo "vm-test.sh: [$k] booting ${image[$k]}${lock[*]:+ (waiting for /tmp/vm.lock)}"
		: >"$out/console.log"
		# Progress as it happens, from the files the guest writes over 9p
		# (vng's console output reaches the log only in blocks).
		follow_progress "$k" "$out" &
		follow=$!
		set +e
		# The time is counted from when the VM lock is ours (another VM on
		# the machine may hold it first), so the line shows what the kernel
		# took.
		"${lock[@]}" sh -c 'date +%s >"$0"; exec "$@"' "$out/started" \
			timeout -k 30 "$deadline" \
			vng -v -r "${image[$k]}" --disable-kvm \
			--memory "${SKELGEN_VM_MEMORY:-3G}" --cpus "${SKELGEN_VM_CPUS:-1}" \
			--append "lsm=lockdown,capability,landlock,yama,apparmor,bpf" \
			--rwdir "$out" --cwd "$root" \
			-- "bash $guest $list $out $rust_libs" >>"$out/console.log" 2>&1
		vng_rc=$?
		set -e
		sleep 6
		kill "$follow" 2>/dev/null || true
		wait "$follow" 2>/dev/null || true
		if [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
			echo "deadline" >"$out/deadline"
			break
		fi
		# Retry only a guest that died with every finished binary passing.
		if [ -f "$out/finished" ] || [ "$attempt" = 3 ] ||
			cat "$out"/*.rc 2>/dev/null | grep -qv '^0$'; then
			break
		fi
		cp "$out/console.log" "$logs/$k.console.died.log"
		echo "vm-test.sh: [$k] the guest died (vng exit $vng_rc) before finishing; booting it again (console: $logs/$k.console.died.log)"
	done
	end=$(date +%s)
	started=$(cat "$out/started" 2>/dev/null || echo "$start")
	secs=$((end - started))
	[ $((started - start)) -lt 5 ] || echo "vm-test.sh: [$k] waited $((started - start))s for /tmp/vm.lock"
	python3 - "$out" "$k" "$secs" "$vng_rc" "$deadline" >"$logs/$k.line" <<'EOF'
import glob, os, re, sys
out, k, secs, vng_rc, deadline = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def read(p, d=""):
    try:
        return open(p, errors="replace").read().strip()
    except OSError:
        return d
kernel = read(os.path.join(out, "kernel"), k)
rel = kernel.split("-")[0].split("+")[0]
passed = failed = ignored = lacking = 0
fails = []
times = []
running = None
for lab in sorted(glob.glob(os.path.join(out, "*.label"))):
    base = lab[:-len(".label")]
    label = read(lab)
    log = read(base + ".log")
    rc = read(base + ".rc", "missing")
    if rc == "missing":
        running = label
    try:
        times.append((int(read(base + ".secs")), label))
    except ValueError:
        pass
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
    if rc not in ("0", "missing") and f == 0:
        failed += 1
        fails.append(f"FAIL kernel {kernel}: {label}: exit status {rc} without a failing test (log {base}.log)")
if os.path.exists(os.path.join(out, "deadline")):
    failed += 1
    fails.append(f"FAIL kernel {kernel}: the guest did not finish within SKELGEN_VM_DEADLINE={deadline}s"
                 + (f", stopped in {running}" if running else "") + f" (console {out}/console.log)")
elif not os.path.exists(os.path.join(out, "finished")):
    failed += 1
    fails.append(f"FAIL kernel {kernel}: the guest did not finish (vng exit {vng_rc}"
                 + (f", last in {running}" if running else "") + f"; console {out}/console.log)")
for f in fails:
    print(f)
slow = ", ".join(f"{l} {s}s" for s, l in sorted(times, reverse=True)[:3])
print(f"kernel {rel}: {passed} passed, {failed} failed, {lacking} skipped (feature table), "
      f"{ignored} ignored, {secs // 60}m{secs % 60:02d}s (slowest: {slow})")
sys.exit(1 if failed else 0)
EOF
}

pids=()
for k in "${kernels[@]}"; do
	run_kernel "$k" &
	pids+=($!)
done
failed=0
for i in "${!kernels[@]}"; do
	wait "${pids[$i]}" || failed=1
done

# Each guest copied out its kernel's BTF: `skelgen btf dump` of it must
# compile with clang (every size and offset asserted), declare what bpftool's
# dump declares, and build a libbpf-tools style program. Pure work, so it
# runs here rather than under TCG.
btf_files=() btf_line=""
for k in "${kernels[@]}"; do
	[ ! -s "$logs/$k/vmlinux.btf" ] || btf_files+=("$logs/$k/vmlinux.btf")
done
btf_exe=$(awk -F'\t' '$2 == "skelgen/btf_dump" { print $3 }' "$list.all")
if [ ${#btf_files[@]} -gt 0 ] && [ -n "$btf_exe" ]; then
	btf_start=$(date +%s)
	if (cd skelgen && SKELGEN_BTF_FILES=$(IFS=:; echo "${btf_files[*]}") \
		SKELGEN_REQUIRE_KERNEL=1 "$btf_exe" --exact --show-output \
		listed_btf_files_dump_the_same_way) >"$logs/btf-dump.log" 2>&1; then
		btf_line="guests' vmlinux BTF (${#btf_files[@]}) dumped to C on the host: compiles, bpftool's declarations, libbpf-tools program builds, $(($(date +%s) - btf_start))s"
	else
		btf_line="FAIL guests' vmlinux BTF dumped to C on the host (log $logs/btf-dump.log)"
		failed=1
	fi
fi

echo "vm-test.sh: summary"
for k in "${kernels[@]}"; do
	if [ -s "$logs/$k.line" ]; then
		cat "$logs/$k.line"
	else
		echo "FAIL kernel $k: no result (see $logs/$k/console.log)"
		failed=1
	fi
	[ -s "$logs/$k/vmlinux.btf" ] || { echo "FAIL kernel $k: the guest copied out no vmlinux BTF"; failed=1; }
done
[ -z "$btf_line" ] || echo "$btf_line"
exit $failed
