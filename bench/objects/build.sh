#!/bin/sh
# Rebuild bench/objects/*.bpf.o with the flags of tests/fixtures/build.sh
# (deterministic: relative paths, -fdebug-compilation-dir=.).
#
# usage: bench/objects/build.sh
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
SYS_INCLUDES=$($CLANG -v -E - </dev/null 2>&1 |
	sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
for src in *.bpf.c; do
	# shellcheck disable=SC2086
	$CLANG -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Werror \
		-fdebug-compilation-dir=. -I../../tests/fixtures/include -I. $SYS_INCLUDES \
		-c "$src" -o "${src%.c}.o"
	echo "built ${src%.c}.o"
done
