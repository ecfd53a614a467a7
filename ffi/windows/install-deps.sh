#!/bin/sh
# Installs what the Windows build and its Wine tests need on Debian 12 (bookworm), as root:
# Debian's rustc/cargo 1.96 with the std sources (for -Zbuild-std; rustup cannot fetch Windows
# targets here and stays the Linux toolchain), the MinGW-w64 cross compilers and binutils
# (windres, dlltool), and Wine 8 for 64- and 32-bit programs. Does nothing when all is present.
set -eu
need=""
for p in rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 gcc-mingw-w64-i686 \
         binutils-mingw-w64-x86-64 binutils-mingw-w64-i686 wine64; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
need32=""
dpkg-query -W -f='${Status}' wine32:i386 2>/dev/null | grep -q "install ok installed" || need32="wine32:i386"
if [ -z "$need$need32" ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ffi/windows/install-deps.sh: missing packages:$need $need32; run as root (sudo)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$need" ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends $need
fi
if [ -n "$need32" ]; then
  dpkg --print-foreign-architectures | grep -qx i386 || dpkg --add-architecture i386
  apt-get update -q
  apt-get install -y -q --no-install-recommends wine32:i386
fi
