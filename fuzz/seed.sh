#!/bin/sh
# Seeds the fuzz corpora from the committed fixtures: whole objects for
# obj_parse and generate, their .BTF and .BTF.ext sections for btf_parse and
# btf_ext_parse, and core.bpf.o's BTF and CO-RE records for core_reloc.
# Usage: fuzz/seed.sh [CORPUS_DIR] (default: fuzz/corpus, git-ignored).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../tests/fixtures"
out=${1:-"$here/corpus"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in obj_parse btf_parse btf_ext_parse core_reloc generate; do
    mkdir -p "$out/$t"
done
for f in "$fixtures"/*.bpf.o; do
    b=$(basename "$f" .bpf.o)
    cp "$f" "$out/obj_parse/$b"
    cp "$f" "$out/generate/$b"
    llvm-objcopy --dump-section ".BTF=$out/btf_parse/$b" "$f" "$tmp/o"
    llvm-objcopy --dump-section ".BTF.ext=$out/btf_ext_parse/$b" "$f" "$tmp/o"
done
core="$out/btf_parse/core"
# Modes 1 and 2: the fixture's BTF as the local, then as the target.
{ printf '\001'; cat "$core"; } > "$out/core_reloc/local_btf"
{ printf '\002'; cat "$core"; } > "$out/core_reloc/target_btf"
# Mode 0: the fixture's own records (at most 255), then two access strings.
python3 - "$out/btf_ext_parse/core" "$out/core_reloc/records" <<'PY'
import struct, sys
ext = open(sys.argv[1], "rb").read()
hdr_len = struct.unpack_from("<I", ext, 4)[0]
core_off, core_len = struct.unpack_from("<II", ext, 24)
sub = ext[hdr_len + core_off : hdr_len + core_off + core_len]
rec_size = struct.unpack_from("<I", sub, 0)[0]
recs, at = [], 4
while at + 8 <= len(sub):
    _, n = struct.unpack_from("<II", sub, at)
    at += 8
    for i in range(n):
        recs.append(sub[at : at + 16])
        at += rec_size
recs = recs[:255]
data = bytes([0, len(recs)]) + b"".join(recs) + b"0:1:2\x000:0\x00"
open(sys.argv[2], "wb").write(data)
PY
# btf_dedup: every fixture's BTF (and the link fixtures'); link: each link
# fixture behind each mode byte (alone, after main, before lib, split).
mkdir -p "$out/btf_dedup" "$out/link"
cp "$out"/btf_parse/* "$out/btf_dedup/"
for f in "$fixtures"/link/*.bpf.o; do
    b=$(basename "$f" .bpf.o)
    llvm-objcopy --dump-section ".BTF=$out/btf_dedup/link_$b" "$f" "$tmp/o"
    for mode in 0 1 2 3; do
        { printf "\\00$mode"; cat "$f"; } > "$out/link/${b}_$mode"
    done
done
echo "seeded $out"
