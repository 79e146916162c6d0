#!/bin/sh
# The benchmark command: skelgen side by side with bpftool + libbpf (C),
# libbpf-rs and aya, all measured in this one run (see bench/README.md).
#
# usage: bench/run.sh [--quick] [--no-build-time] [--reps N] [OBJ.bpf.o | DIR ...]
#
# Builds the skelgen CLI and the bench workspace (bench/ is excluded from the
# root workspace, so none of this is in the default build or tests), then
# prints a markdown report and writes it into bench/RESULTS.md between the
# GENERATED markers (BENCH_RESULTS=path to write elsewhere). Objects and
# directories given on the command line are measured besides
# tests/fixtures/ and bench/objects/. Needs root. Full run: ~10-15 minutes
# on 2 cores; --quick: ~2.
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
target=${BENCH_TARGET_DIR:-$root/target/bench}
# A --quick run only prints (unless BENCH_RESULTS says where to write).
case " $* " in
*" --quick "*) results=${BENCH_RESULTS:-} ;;
*) results=${BENCH_RESULTS:-$root/bench/RESULTS.md} ;;
esac

if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: run as root (bpf(), perf_event_open, tracefs)" >&2
	exit 1
fi
command -v cargo >/dev/null || {
	echo "bench/run.sh: cargo is missing" >&2
	exit 1
}
# What the C side needs, from Debian's packages, as scripts/test.sh does:
# bpftool, clang, a C compiler, pkg-config and libbpf for the harness, and
# libelf/zlib headers for the libbpf that libbpf-sys vendors.
need=""
command -v bpftool >/dev/null || need="$need bpftool"
command -v clang >/dev/null || need="$need clang"
command -v cc >/dev/null || need="$need gcc"
command -v pkg-config >/dev/null || need="$need pkg-config"
command -v strip >/dev/null || need="$need binutils"
pkg-config --exists libbpf 2>/dev/null || need="$need libbpf-dev"
[ -f /usr/include/libelf.h ] || need="$need libelf-dev"
[ -f /usr/include/zlib.h ] || need="$need zlib1g-dev"
if [ -n "$need" ]; then
	echo "[bench] installing$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # a list of package names
	apt-get install -y -qq $need >/dev/null
fi
# Tracepoint attach needs tracefs; libbpf 1.1 looks in both places.
if ! [ -e /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing
fi

echo "[bench] building skelgen and the bench workspace (release)" >&2
CARGO_TARGET_DIR=$target cargo build --release --quiet -p skelgen-cli
CARGO_TARGET_DIR=$target/bench-ws cargo build --release --quiet \
	--manifest-path bench/Cargo.toml --workspace
# The two vfsstat tools again with a size profile, for the size table's
# second pair of rows (the same profile for both).
CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort \
	CARGO_TARGET_DIR=$target/bench-size cargo build --release --quiet \
	--manifest-path bench/Cargo.toml -p vfsstat-skelgen -p vfsstat-libbpf-rs
export BENCH_SIZE_PROFILE_DIR="$target/bench-size/release"

# The libbpf-tools-style generation row: an object built with -g against a
# full vmlinux.h from the running kernel's BTF (as skelgen/tests/embed_size.rs).
gobj=$target/g-object
mkdir -p "$gobj"
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$gobj/vmlinux.h"
cp skelgen/tests/data/exec_vmlinux.bpf.c "$gobj/exec.bpf.c"
(cd "$gobj" && clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -c exec.bpf.c -o exec_vmlinux.bpf.o)
set -- --g-object "$gobj/exec_vmlinux.bpf.o" "$@"

if [ -n "$results" ]; then
	set -- --results "$results" "$@"
fi
exec "$target/bench-ws/release/skelgen-bench" --skelgen "$target/release/skelgen" "$@"
