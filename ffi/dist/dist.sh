#!/usr/bin/env bash
# Release packages of mailconnect from this checkout, the way each ecosystem installs them:
#
#   bash ffi/dist/dist.sh [OUT]        (default target/packages; CI: tests/packages/run.sh)
#
# OUT/
#   mailconnect-V-linux-x86_64.tar.gz   libmailconnect.so.V (soname libmailconnect.so.MAJOR.MINOR while
#                                       the major version is 0, .MAJOR after), libmailconnect.a, the
#                                       headers, a pkg-config file and a Makefile: `make install PREFIX=...`
#   mailconnect-V-windows-x64.zip       when the Windows DLLs exist (ffi/windows/build.sh, target/windows):
#   mailconnect-V-windows-x86.zip       DLL, mailconnect.exe, import libraries for MinGW (.dll.a) and
#                                       MSVC (.lib + .def), headers, Pascal unit, C# file, docs
#   Mailconnect.V.nupkg                 bindings/dotnet/pack.py: runtimes/{linux-x64,win-x64,win-x86}/native
#   mailconnect-V-py3-none-*.whl        the Python binding with the native library inside, one wheel
#                                       per platform (manylinux_2_N_x86_64, win_amd64, win32)
#   SHA256SUMS
#
# The version is the workspace's ([workspace.package] version in Cargo.toml): the library reports
# it (mc_version_get, MAILCONNECT_VERSION in the header, the DLL's version resource) and the
# script refuses to package when the Python project, the Pascal unit or the C# file say another.
# The Linux library is built with the `dist` profile (fat LTO, opt-level z; Cargo.toml).
# Needs: cargo, python3 with pip (the `wheel` tool is installed into a private folder when
# missing), tar, zip from python3, binutils (objdump). A cold build takes about 4 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=${1:-$root/target/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
t0=$(date +%s)

version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')
python3 ffi/dist/versions.py "$version"
major=${version%%.*}
rest=${version#*.}
minor=${rest%%.*}
if [ "$major" = 0 ]; then soname=libmailconnect.so.0.$minor; else soname=libmailconnect.so.$major; fi
abi=$(sed -n 's/^#define MC_ABI_VERSION \([0-9]*\)$/\1/p' include/mailconnect.h)
echo "== dist: mailconnect $version (C ABI $abi, soname $soname) into $out"
rm -rf "$out"/mailconnect-* "$out"/Mailconnect.*.nupkg "$out"/SHA256SUMS
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

echo "== dist: Linux library (cargo rustc --profile dist, cdylib + staticlib)"
# One rustc run gives both libraries, the soname and the system libraries a static link needs.
cargo rustc --locked --profile dist -p mailconnect-ffi --lib --crate-type cdylib,staticlib -- \
    -C link-arg=-Wl,-soname,"$soname" --print native-static-libs 2>"$stage/rustc.log" ||
    { cat "$stage/rustc.log" >&2; exit 1; }
libs_private=$(sed -n 's/^note: native-static-libs: //p' "$stage/rustc.log" | tail -n 1)
[ -n "$libs_private" ] || { echo "dist: rustc printed no native-static-libs" >&2; exit 1; }
so=$target/dist/libmailconnect.so
objdump -p "$so" | grep -q "SONAME *$soname\$" || { echo "dist: $so has no soname $soname" >&2; exit 1; }

name=mailconnect-$version-linux-x86_64
d=$stage/$name
mkdir -p "$d/lib/pkgconfig" "$d/include" "$d/doc/img"
cp "$so" "$d/lib/libmailconnect.so.$version"
cp "$target/dist/libmailconnect.a" "$d/lib/"
cp include/mailconnect.h include/mailconnect_store.h "$d/include/"
sed -e "s|@VERSION@|$version|g" -e "s|@ABI@|$abi|g" -e "s|@LIBS_PRIVATE@|$libs_private|g" \
    ffi/dist/mailconnect.pc.in > "$d/lib/pkgconfig/mailconnect.pc.in"
sed -e "s|@VERSION@|$version|g" -e "s|@SONAME@|$soname|g" ffi/dist/Makefile.in > "$d/Makefile"
docs() { # the documents every package carries
    cp README.md docs/integration.md docs/admin-guide.md docs/admin-guide.de.md \
        docs/diagnostics.md docs/diagnostics.de.md "$1/"
    cp docs/img/*.png "$1/img/"
}
docs "$d/doc"
tar -C "$stage" --owner=0 --group=0 -czf "$out/$name.tar.gz" "$name"

echo "== dist: Windows zips (from target/windows, when ffi/windows/build.sh has run)"
natives=(--native "linux-x64=$so")
wheels=("manylinux:$so")
for arch in x64 x86; do
    w=$target/windows/$arch
    if [ ! -f "$w/mailconnect.dll" ]; then
        echo "dist: no $w/mailconnect.dll: no Windows $arch zip, NuGet runtime or wheel (run ffi/windows/build.sh first)"
        continue
    fi
    name=mailconnect-$version-windows-$arch
    d=$stage/$name
    mkdir -p "$d/bin" "$d/lib" "$d/include" "$d/bindings" "$d/doc/img"
    cp "$w/mailconnect.dll" "$w/mailconnect.exe" "$d/bin/"
    cp "$w/libmailconnect.dll.a" "$w/mailconnect.lib" "$w/mailconnect.def" "$d/lib/"
    cp include/mailconnect.h include/mailconnect_store.h "$d/include/"
    cp bindings/pascal/Mailconnect.pas bindings/dotnet/Mailconnect.cs "$d/bindings/"
    docs "$d/doc"
    (cd "$stage" && python3 -m zipfile -c "$out/$name.zip" "$name")
    rid=win-$arch
    natives+=(--native "$rid=$w/mailconnect.dll")
    wheels+=("$([ $arch = x64 ] && echo win_amd64 || echo win32):$w/mailconnect.dll")
done

echo "== dist: NuGet (bindings/dotnet/pack.py)"
python3 bindings/dotnet/pack.py "$stage/nuget" "${natives[@]}"
cp "$stage"/nuget/Mailconnect."$version".nupkg "$out/"

echo "== dist: Python wheels"
python3 ffi/dist/wheel.py "$out" "$version" "${wheels[@]}"

(cd "$out" && sha256sum mailconnect-* Mailconnect.*.nupkg > SHA256SUMS)
echo "== dist: done in $(( $(date +%s) - t0 )) s"
ls -l "$out"
