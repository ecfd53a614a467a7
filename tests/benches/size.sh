#!/usr/bin/env bash
# What each crate costs in libmailconnect.so (issue 18): the top crates by the size of their
# functions and constant data, and the ELF sections of the stripped file.
#
#   bash tests/benches/size.sh [LIB.so] [N]
#
# LIB.so must still have its symbol table (built with strip off); without it, the dist profile is
# built with `CARGO_PROFILE_DIST_STRIP=false` into target/size (a cold build takes minutes).
# Rust symbols are attributed by their demangled path (as cargo-bloat does, so generic code
# counts for the crate whose function was instantiated); C and assembly symbols by the static
# archive a build script made (`build/<crate>-*/out/*.a`: SQLite, ring's C and assembly).
# Unwind tables (.eh_frame, .gcc_except_table) and relocations belong to no symbol and are shown
# as sections. Needs binutils (nm, size, strip) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
so="${1:-}"
top="${2:-15}"
if [ -z "$so" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/size"
    CARGO_PROFILE_DIST_STRIP=false cargo build --locked --profile dist -p mailconnect-ffi >&2
    so="$CARGO_TARGET_DIR/dist/libmailconnect.so"
fi
if ! readelf -S "$so" | grep -q '\.symtab'; then
    echo "$so has no symbol table: build it with strip off" >&2
    exit 1
fi
dir="$(cd "$(dirname "$so")" && pwd)"
[ -d "$dir/build" ] || dir="$(dirname "$dir")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
strip --strip-all "$so" -o "$tmp/stripped.so"
# Defined symbols of the build scripts' static archives: "crate symbol".
for a in "$dir"/build/*/out/*.a; do
    [ -e "$a" ] || continue
    crate="$(basename "$(dirname "$(dirname "$a")")")"
    crate="${crate%-*}"
    nm --defined-only "$a" 2>/dev/null | awk -v c="$crate" 'NF == 3 { print c, $3 }'
done | sort -u >"$tmp/c-symbols"
nm -S --size-sort --radix=d "$so" | awk 'NF == 4 { print $2, $3, $4 }' >"$tmp/raw"
nm -S --size-sort --radix=d -C "$so" | awk 'NF >= 4 { $1 = ""; print }' >"$tmp/demangled"
python3 - "$tmp" "$so" "$top" <<'EOF'
import os, re, subprocess, sys
tmp, so, top = sys.argv[1], sys.argv[2], int(sys.argv[3])
def first_crate(p):
    """The crate of the first path in a demangled name, or None for a generic or primitive."""
    p = re.sub(r"^([<&*(\[ ]|dyn |mut |const |impl )+", "", p)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", p)
    return m.group(1) if m else None

def rust_crate(pretty):
    # `<Type as Trait>::f`: the type's crate, or the trait's for a generic or primitive type.
    m = re.match(r"<(.*?) as (.*)", pretty)
    crate = first_crate(pretty) if not m else (first_crate(m.group(1)) or first_crate(m.group(2)))
    crate = crate or "?"
    return "std" if crate in ("core", "alloc", "std") else crate

c_sym = {}
for line in open(f"{tmp}/c-symbols"):
    crate, sym = line.split()
    c_sym[sym] = crate
raw = [l.split() for l in open(f"{tmp}/raw")]
dem = [l.strip().split(" ", 2) for l in open(f"{tmp}/demangled")]
sizes, kinds = {}, {}
total = 0
for (size, kind, name), (_, _, pretty) in zip(raw, dem):
    size = int(size)
    if kind.lower() not in "trd" or size == 0:
        continue
    total += size
    if name in c_sym:
        crate = c_sym[name] + " (C/asm)"
    elif name.startswith("_ZN") or name.startswith("_R"):
        crate = rust_crate(pretty)
    elif name.startswith("mc_"):
        crate = "mailconnect"
    elif name.startswith("anon.") or name.startswith(".L"):
        crate = "[unnamed constants]"
    else:
        crate = "[other C]"
    key = crate
    sizes[key] = sizes.get(key, 0) + size
    kinds.setdefault(key, [0, 0])[0 if kind.lower() == "t" else 1] += size
file_size = os.path.getsize(f"{tmp}/stripped.so")
mib = lambda b: f"{b / 1048576:.2f} MiB" if b >= 1048576 else f"{b / 1024:.1f} KiB"
print(f"{so}: {mib(file_size)} stripped; symbols with a size: {mib(total)}\n")
print(f"| crate | code + data | of which code | share of the stripped file |")
print("|---|---|---|---|")
ranked = sorted(sizes.items(), key=lambda kv: -kv[1])
for crate, size in ranked[:top]:
    print(f"| {crate} | {mib(size)} | {mib(kinds[crate][0])} | {100 * size / file_size:.1f}% |")
rest = sum(s for _, s in ranked[top:])
print(f"| {len(ranked) - top} more | {mib(rest)} | | {100 * rest / file_size:.1f}% |")
out = subprocess.run(["size", "-A", f"{tmp}/stripped.so"], capture_output=True, text=True).stdout
secs = []
for line in out.splitlines():
    f = line.split()
    if len(f) == 3 and f[0].startswith(".") and f[1].isdigit() and int(f[1]) >= 65536:
        secs.append((f[0], int(f[1])))
print("\nsections of the stripped file: " + ", ".join(f"{n} {mib(s)}" for n, s in sorted(secs, key=lambda x: -x[1])))
EOF
