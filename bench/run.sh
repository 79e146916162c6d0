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
for tool in cargo bpftool clang cc pkg-config strip ldd; do
	command -v "$tool" >/dev/null || {
		echo "bench/run.sh: $tool is missing" >&2
		exit 1
	}
done
pkg-config --exists libbpf || {
	echo "bench/run.sh: libbpf not found by pkg-config (apt-get install -y libbpf-dev)" >&2
	exit 1
}
# Tracepoint attach needs tracefs; libbpf 1.1 looks in both places.
if ! [ -e /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing
fi

echo "[bench] building skelgen and the bench workspace (release)" >&2
CARGO_TARGET_DIR=$target cargo build --release --quiet -p skelgen-cli
CARGO_TARGET_DIR=$target/bench-ws cargo build --release --quiet \
	--manifest-path bench/Cargo.toml --workspace

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
