#!/usr/bin/env bash
# Builds what a Windows host ships, on this Linux machine, for x64 and x86 (32-bit):
#
#   target/windows/<arch>/mailconnect.dll      the C ABI (release; version resource; cdecl exports)
#   target/windows/<arch>/libmailconnect.dll.a import library for MinGW/GCC hosts
#   target/windows/<arch>/mailconnect.def      the exports, for any toolchain
#   target/windows/<arch>/mailconnect.lib      import library for MSVC hosts (made by MinGW dlltool)
#   target/windows/<arch>/mailconnect.exe      the command (also runs as a Windows service)
#   target/windows/<arch>/mailconnect.h        the headers (include/mailconnect.h and, for hosts
#   target/windows/<arch>/mailconnect_store.h  that keep the records in their own database, _store.h)
#
# rustup cannot fetch Windows targets here, so this uses Debian's rustc/cargo 1.96 with the std
# sources (`-Zbuild-std`, RUSTC_BOOTSTRAP=1) and the MinGW-w64 cross linkers; rustup's toolchain
# stays the Linux one (the Windows build puts /usr/bin first on PATH for itself only). Installs
# its packages when missing (root). The build directory is kept in ~/.cache/mailconnect/windows
# (MAILCONNECT_WINDOWS_CACHE), so a second run only rebuilds what changed.
#
#   MAILCONNECT_WINDOWS_ARCHS="x64 x86"   which architectures (default both)
#   MAILCONNECT_WINDOWS_OUT=DIR           output folder (default target/windows)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
sh ffi/windows/install-deps.sh

cache=${MAILCONNECT_WINDOWS_CACHE:-$HOME/.cache/mailconnect/windows}
out=${MAILCONNECT_WINDOWS_OUT:-$root/target/windows}
archs=${MAILCONNECT_WINDOWS_ARCHS:-"x64 x86"}
mkdir -p "$cache" "$out"

# Debian's toolchain for this build only; keep the registry cache rustup's cargo already has.
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$cache/target
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
export CARGO_TARGET_I686_PC_WINDOWS_GNU_LINKER=i686-w64-mingw32-gcc
export CC_i686_pc_windows_gnu=i686-w64-mingw32-gcc AR_i686_pc_windows_gnu=i686-w64-mingw32-ar

rustc_version=$(rustc --version)
echo "windows build: $rustc_version, $(x86_64-w64-mingw32-gcc --version | head -1)"

# -Zbuild-std does not produce the i686 startup objects rsbegin.o/rsend.o: build them from the
# std sources Debian ships (rust-web-src), once per compiler version.
rt=$cache/rt/i686
if [ ! -f "$rt/rsend.o" ] || [ "$(cat "$rt/version" 2>/dev/null)" != "$rustc_version" ]; then
  mkdir -p "$rt"
  for f in rsbegin rsend; do
    rustc --target i686-pc-windows-gnu --emit=obj -o "$rt/$f.o" \
      /usr/lib/rustlib/src/rust/library/rtstartup/$f.rs
  done
  echo "$rustc_version" > "$rt/version"
fi
export CARGO_TARGET_I686_PC_WINDOWS_GNU_RUSTFLAGS="-L native=$rt"

triple_of() {
  case $1 in
    x64) echo x86_64-pc-windows-gnu ;;
    x86) echo i686-pc-windows-gnu ;;
    *) echo "unknown architecture '$1' (x64, x86)" >&2; exit 2 ;;
  esac
}
# One cargo run for every architecture: the two targets build side by side on both cores.
targets=()
for arch in $archs; do targets+=(--target "$(triple_of "$arch")"); done
start=$(date +%s)
log=$cache/build.log
cargo build --locked --release "${targets[@]}" -Zbuild-std=std,panic_unwind \
  -p mailconnect-ffi -p mailconnect-cli 2>&1 | tee "$log"
echo "windows build: cargo $(( $(date +%s) - start ))s for $archs"
# clippy does not come with Debian's toolchain; rustc's warnings in the Windows-only code are errors.
if grep -E '^warning: `mailconnect-[a-z]+` \(.*\) generated [0-9]+ warning' "$log"; then
  echo "the Windows build has warnings (see above)" >&2
  exit 1
fi

for arch in $archs; do
  triple=$(triple_of "$arch")
  case $arch in
    x64) mingw=x86_64-w64-mingw32; machine=i386:x86-64 ;;
    x86) mingw=i686-w64-mingw32; machine=i386 ;;
  esac
  bin=$CARGO_TARGET_DIR/$triple/release
  dest=$out/$arch
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$bin/mailconnect.dll" "$bin/libmailconnect.dll.a" "$bin/mailconnect.exe" "$dest/"
  cp include/mailconnect.h include/mailconnect_store.h "$dest/"
  # The .def from the DLL's real export table (every mc_ function, undecorated: cdecl).
  {
    echo "LIBRARY mailconnect.dll"
    echo "EXPORTS"
    "$mingw-objdump" -p "$dest/mailconnect.dll" |
      awk '/\[Ordinal\/Name Pointer\] Table/ {t=1; next} t && NF==0 {t=0} t {print "    " $NF}' |
      grep -E '^    mc_[a-z0-9_]+$' | sort
  } > "$dest/mailconnect.def"
  exports=$(grep -c '^    mc_' "$dest/mailconnect.def")
  headers=$(cat include/mailconnect.h include/mailconnect_store.h | grep -c '^MC_API ')
  if [ "$exports" != "$headers" ]; then
    echo "mailconnect.dll ($arch) exports $exports mc_ functions, the headers declare $headers" >&2
    exit 1
  fi
  # MSVC import library. On x86, MSVC names a cdecl function _name; dlltool adds that underscore
  # and imports the undecorated DLL name.
  "$mingw-dlltool" -m "$machine" -d "$dest/mailconnect.def" -D mailconnect.dll -l "$dest/mailconnect.lib"
  # Only system DLLs may be imported: nothing else to ship beside mailconnect.dll.
  imports=$("$mingw-objdump" -p "$dest/mailconnect.dll" | awk '/DLL Name:/ {print tolower($3)}' | sort -u | tr '\n' ' ')
  for dll in $imports; do
    case $dll in
      kernel32.dll|ntdll.dll|msvcrt.dll|advapi32.dll|bcrypt.dll|bcryptprimitives.dll|crypt32.dll|\
      secur32.dll|shell32.dll|shlwapi.dll|ole32.dll|userenv.dll|ws2_32.dll|winhttp.dll|\
      api-ms-win-core-synch-l1-2-0.dll|user32.dll) ;;
      *) echo "mailconnect.dll ($arch) imports $dll, which Windows does not have" >&2; exit 1 ;;
    esac
  done
  printf 'windows build %s: %s functions exported, DLL %s bytes, exe %s bytes, imports: %s\n' \
    "$arch" "$exports" "$(stat -c %s "$dest/mailconnect.dll")" "$(stat -c %s "$dest/mailconnect.exe")" \
    "$imports"
done
