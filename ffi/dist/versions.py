#!/usr/bin/env python3
"""Every copy of the version number agrees with the workspace's ([workspace.package] version in
Cargo.toml, the one place it is set): the Python project, the Pascal unit's MAILCONNECT_VERSION, the
C# assembly attributes and the committed C header (generated from it by ffi/build.rs). The library
itself (mc_version_get, the DLL's version resource) and the NuGet package (pack.py) take it from
Cargo directly.

usage: versions.py [VERSION]    (default: read Cargo.toml); exit 1 and a list when any differs."""
import os
import re
import sys
import tomllib

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(path: str) -> str:
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def found(path: str, pattern: str) -> str:
    m = re.search(pattern, read(path), re.M)
    return m.group(1) if m else "(missing)"


def main() -> None:
    with open(os.path.join(root, "Cargo.toml"), "rb") as f:
        cargo = tomllib.load(f)["workspace"]["package"]["version"]
    want = sys.argv[1] if len(sys.argv) > 1 else cargo
    copies = {
        "Cargo.toml [workspace.package] version": cargo,
        "bindings/python/pyproject.toml": found("bindings/python/pyproject.toml", r'^version = "([^"]+)"'),
        "bindings/pascal/Mailconnect.pas MAILCONNECT_VERSION": found(
            "bindings/pascal/Mailconnect.pas", r"^\s*MAILCONNECT_VERSION = '([^']+)';"),
        "bindings/dotnet/Mailconnect.cs AssemblyInformationalVersion": found(
            "bindings/dotnet/Mailconnect.cs", r'AssemblyInformationalVersion\("([^"]+)"\)'),
        "bindings/dotnet/Mailconnect.cs AssemblyVersion": found(
            "bindings/dotnet/Mailconnect.cs", r'AssemblyVersion\("([^"]+)\.0"\)'),
        "include/mailconnect.h MAILCONNECT_VERSION": found(
            "include/mailconnect.h", r'^#define MAILCONNECT_VERSION "([^"]+)"'),
    }
    wrong = {k: v for k, v in copies.items() if v != want}
    if wrong:
        for k, v in wrong.items():
            print(f"versions: {k} says {v}, not {want}", file=sys.stderr)
        sys.exit(1)
    print(f"versions: {len(copies)} copies say {want}")


if __name__ == "__main__":
    main()
