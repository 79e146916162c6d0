#!/usr/bin/env bash
# Usage: vm-guest.sh LIST OUT [RUST_LIBS]
# Runs inside a scripts/vm-test.sh guest (as root, over the host's files):
# every test binary of LIST, one after another, each from its crate's
# directory, with SKELGEN_REQUIRE_KERNEL=1. Writes OUT/NN.log (the binary's
# whole output) and OUT/NN.rc (its exit status); the host reads them.
# LIST lines: crate-dir<TAB>label<TAB>executable<TAB>libtest arguments (may be
# empty; split on blanks: name filters, --skip NAME).
# RUST_LIBS: the toolchain's lib directory (for binaries linked to libstd.so).
set -uo pipefail
list=$1
out=$2
export LD_LIBRARY_PATH=${3:-}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
per_binary_timeout=${SKELGEN_VM_TEST_TIMEOUT:-600}
set -f # the libtest arguments are split, never globbed

mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
# The guest's /tmp is the host's (read-only): tests write temporary files.
if ! touch /tmp/.skelgen-vm-w 2>/dev/null; then
	mount -t tmpfs tmpfs /tmp
fi
rm -f /tmp/.skelgen-vm-w
# Tests write scratch files under target/tmp (CARGO_TARGET_TMPDIR, fixed at
# build time), also read-only here: an overlay keeps what the host built
# there visible and takes the guest's writes in memory.
scratch=$(pwd)/target/tmp
mkdir -p /tmp/.scratch-up /tmp/.scratch-work
if [ -d "$scratch" ] && ! touch "$scratch/.skelgen-vm-w" 2>/dev/null; then
	mount -t overlay overlay \
		-o "lowerdir=$scratch,upperdir=/tmp/.scratch-up,workdir=/tmp/.scratch-work" "$scratch" ||
		mount -t tmpfs tmpfs "$scratch"
fi
rm -f "$scratch/.skelgen-vm-w"
ulimit -l unlimited

uname -r >"$out/kernel"
# The host dumps this kernel's BTF to C after the run (scripts/vm-test.sh).
cp /sys/kernel/btf/vmlinux "$out/vmlinux.btf"
export SKELGEN_REQUIRE_KERNEL=1 RUST_BACKTRACE=1
n=0
while IFS=$'\t' read -r dir label exe args; do
	n=$((n + 1))
	id=$(printf '%03d' "$n")
	echo "$label" >"$out/$id.label"
	start=$(date +%s)
	# --show-output: the host counts the tests that took the feature
	# table's "lacks" branch from what they printed. --test-threads=1: under
	# TCG, one vCPU running the XDP dispatcher while another test's load
	# live-patches it oopses the 6.12 guest (int3 in bpf_dispatcher_xdp_func,
	# seen in perfbuf at the same point in two runs); tests that want
	# concurrency start their own threads.
	(
		cd "$dir" &&
			CARGO_MANIFEST_DIR=$dir timeout -k 10 "$per_binary_timeout" \
				"$exe" --show-output --test-threads=1 $args
	) </dev/null >"$out/$id.log" 2>&1
	echo $? >"$out/$id.rc"
	echo $(($(date +%s) - start)) >"$out/$id.secs"
	echo "vm-guest: $label rc=$(cat "$out/$id.rc") $(cat "$out/$id.secs")s"
done <"$list"
echo done >"$out/finished"
