#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (clang,
# bpftool, libbpf headers, llvm-objdump from Debian's packages), mounts
# tracefs and bpffs if missing, then lints and runs every test.
# Kernel tests skip with a printed reason when not root; with
# SKELGEN_REQUIRE_KERNEL=1 (set by .ci/run) a skip is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v clang >/dev/null || need+=(clang)
command -v bpftool >/dev/null || need+=(bpftool)
command -v llvm-objdump >/dev/null || need+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -n "$(ls /usr/include/sys/sdt.h /usr/include/*-linux-gnu/sys/sdt.h 2>/dev/null)" ] || need+=(systemtap-sdt-dev)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "test.sh: installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "test.sh: missing ${need[*]} (not root: tests that need them will skip)"
	fi
fi

if [ "$(id -u)" = 0 ]; then
	if ! mountpoint -q /sys/kernel/tracing 2>/dev/null; then
		mount -t tracefs nodev /sys/kernel/tracing || echo "test.sh: could not mount tracefs"
	fi
	if ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
		mount -t bpf bpf /sys/fs/bpf || echo "test.sh: could not mount bpffs"
	fi
fi

. scripts/cargo-env.sh
echo "test.sh: $(df -h --output=avail . | tail -1 | tr -d ' ') free on the disk of $(pwd) at the start"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p skelgen-runtime --all-targets --features tokio --locked -- -D warnings
# What include_bpf! builds for the compiler: the generator without
# prettyplease, over the runtime's object model without the loader (issue 12:
# a crate using the macro builds in 1.1x the time of one with CLI output).
cargo clippy -p skelgen --no-default-features --lib --locked -- -D warnings
cargo clippy -p skelgen-runtime --no-default-features --lib --locked -- -D warnings
if cargo tree -p skelgen-macro -e normal --locked | grep -E 'prettyplease|flate2|libc'; then
	echo "test.sh: include_bpf! pulls in a formatter or the loader's dependencies (above)" >&2
	exit 1
fi
cargo test --workspace --locked
# The async ring buffer, behind its feature.
cargo test -p skelgen-runtime --features tokio --test ringbuf --locked
# Docs as users read them: broken links and missing docs are errors.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
# The publishable crates: contents and manifests, each verified by building
# its packaged sources against the others' (cargo packages them in
# dependency order into a local overlay, so nothing needs crates.io first).
# Cargo extracts those overlay packages under $CARGO_HOME/registry/src/-HASH/
# and reuses an extraction while the version is unchanged, so a later run
# would verify against an earlier run's sources: remove ours first.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$cargo_home"/registry/src/-*/skelgen-[0-9]* "$cargo_home"/registry/src/-*/skelgen-runtime-[0-9]* \
	"$cargo_home"/registry/src/-*/skelgen-macro-[0-9]* "$cargo_home"/registry/src/-*/skelgen-cli-[0-9]*
cargo package --locked --allow-dirty -p skelgen-runtime -p skelgen -p skelgen-macro -p skelgen-cli
echo "test.sh: $(du -sh target 2>/dev/null | cut -f1) in target/, $(df -h --output=avail . | tail -1 | tr -d ' ') free at the end"
