#!/usr/bin/env python3
"""Build Mailconnect.dll and the NuGet package Mailconnect.<version>.nupkg.

usage: pack.py OUT_DIR --native linux-x64=PATH/libmailconnect.so [--native win-x64=PATH/mailconnect.dll
                       --native win-x86=PATH/mailconnect.dll ...]

The version is the workspace's ([workspace.package] version in Cargo.toml); so are the authors, the
license expression and the repository. OUT_DIR ends up with exactly one Mailconnect.*.nupkg (older ones
are removed) and nothing else from this script.

What the assembly is: Mono's mcs compiles Mailconnect.cs against the .NET Framework 4.7.1 reference
assemblies Mono ships (/usr/lib/mono/4.7.1-api, `-sdk:4.7.1-api`); the result references mscorlib and
System 4.0.0.0 and carries [TargetFramework(".NETFramework,Version=v4.7.1")]. 4.7.1 is the lowest .NET
Framework it compiles against (RuntimeInformation.ProcessArchitecture is in mscorlib from 4.7.1 on; 4.7
and below lack it). So it goes to lib/net471/; .NET (Core) projects use it through NuGet's .NET
Framework fallback (warning NU1701), and it runs there (tests/packages_nuget.rs runs it on .NET 8). It
is not a netstandard2.0 assembly: that needs the netstandard.dll reference assembly (NuGet's
NETStandard.Library), which no reachable registry has; Mono's Facades/netstandard.dll only forwards
types to mscorlib, so compiling against it gives a .NET Framework assembly again.

Package layout (an OPC package, as nuget.exe writes it, so NuGet 2.x and later read it):
  [Content_Types].xml, _rels/.rels, package/services/metadata/core-properties/<id>.psmdcp
  Mailconnect.nuspec                       id, version, authors, license expression (+ licenseUrl
                                           for old clients), readme, repository, dependency group
  README.md                                bindings/dotnet/README.md
  lib/net471/Mailconnect.dll, .xml         the assembly and its XML documentation
  runtimes/<rid>/native/<library>          libmailconnect.so (linux-*) / mailconnect.dll (win-*),
                                           renamed to what DllImport("mailconnect") looks for
  build/Mailconnect.targets                copies the native library for packages.config / .NET
                                           Framework projects (bindings/dotnet/build/Mailconnect.targets)
  buildTransitive/Mailconnect.targets      the same for projects that get the package transitively"""
import argparse
import datetime
import glob
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from xml.sax.saxutils import escape

TFM = "net471"
TFM_NAME = ".NETFramework4.7.1"
TFM_ATTR = ".NETFramework,Version=v4.7.1"
MCS_SDK = "4.7.1-api"
NATIVE_NAME = {"linux": "libmailconnect.so", "win": "mailconnect.dll", "osx": "libmailconnect.dylib"}
# ELF/PE checks of what is packed, by RID: (format, machine).
NATIVE_MACHINE = {"linux-x64": ("elf", 62), "win-x64": ("pe", 0x8664), "win-x86": ("pe", 0x14C),
                  "win-arm64": ("pe", 0xAA64), "linux-arm64": ("elf", 183)}

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))


def fail(msg: str) -> None:
    print(f"pack.py: {msg}", file=sys.stderr)
    sys.exit(1)


def machine_of(path: str):
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:4] == b"\x7fELF":
        return ("elf", int.from_bytes(head[18:20], "little"))
    if head[:2] == b"MZ":
        pe = int.from_bytes(head[0x3C:0x40], "little")
        if head[pe:pe + 4] == b"PE\0\0":
            return ("pe", int.from_bytes(head[pe + 4:pe + 6], "little"))
    return ("unknown", 0)


def main() -> None:
    ap = argparse.ArgumentParser(description="Build Mailconnect.<version>.nupkg")
    ap.add_argument("out")
    ap.add_argument("--native", action="append", default=[], help="RID=PATH (linux-x64, win-x64, win-x86)")
    a = ap.parse_args()

    with open(os.path.join(root, "Cargo.toml"), "rb") as f:
        ws = tomllib.load(f)["workspace"]["package"]
    version = ws["version"]
    cs = os.path.join(here, "Mailconnect.cs")
    with open(cs, encoding="utf-8") as f:
        m = re.search(r'AssemblyInformationalVersion\("([^"]+)"\)', f.read())
    if m and m.group(1) != version:
        fail(f"Mailconnect.cs says version {m.group(1)}, Cargo.toml {version} (see ffi/dist/versions.py)")

    natives = {}
    for spec in a.native:
        rid, sep, path = spec.partition("=")
        if not sep or not re.fullmatch(r"[a-z0-9]+-[a-z0-9]+", rid):
            fail(f"--native {spec!r}: want RID=PATH, e.g. linux-x64=target/release/libmailconnect.so")
        if not os.path.isfile(path):
            fail(f"--native {rid}: no file {path}")
        os_name = rid.split("-")[0]
        if os_name not in NATIVE_NAME:
            fail(f"--native {rid}: unknown operating system {os_name!r}")
        want = NATIVE_MACHINE.get(rid)
        if want and machine_of(path) != want:
            fail(f"--native {rid}: {path} is not a {rid} library ({machine_of(path)}, want {want})")
        if rid in natives:
            fail(f"--native {rid} given twice")
        natives[rid] = path
    if not natives:
        fail("no --native RID=PATH: a package without the native library cannot run")

    os.makedirs(a.out, exist_ok=True)
    for old in glob.glob(os.path.join(a.out, "Mailconnect.*.nupkg")):
        os.remove(old)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch else datetime.datetime.now()
    date_time = (max(stamp.year, 1980),) + tuple(stamp.timetuple()[1:6])

    with tempfile.TemporaryDirectory() as tmp:
        info = os.path.join(tmp, "TargetFramework.cs")
        with open(info, "w", encoding="utf-8") as f:
            f.write(f'[assembly: System.Runtime.Versioning.TargetFramework("{TFM_ATTR}", '
                    f'FrameworkDisplayName = ".NET Framework 4.7.1")]\n')
        dll = os.path.join(tmp, "Mailconnect.dll")
        xml = os.path.join(tmp, "Mailconnect.xml")
        subprocess.run(["mcs", "-langversion:7", "-nologo", "-warnaserror", "-target:library",
                        f"-sdk:{MCS_SDK}", "-doc:" + xml, "-out:" + dll, cs, info], check=True)

        authors = ", ".join(re.sub(r"\s*<[^>]*>", "", x) for x in ws.get("authors", [])) or "mailconnect"
        license_expr = ws.get("license", "")
        repo = ws.get("repository", "")
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        description = ("Connect business applications to Microsoft 365 (and other OAuth 2.0) mailboxes: "
                       "sign-in by browser, device code or app-only, tokens kept and refreshed, mail sent "
                       "and fetched over SMTP/IMAP/POP3 with XOAUTH2 or over Microsoft Graph. C# over the "
                       "mailconnect native library (" + ", ".join(sorted(natives)) + ").")
        tags = "oauth2 xoauth2 microsoft365 exchange-online imap pop3 smtp graph mail native"
        md = [
            "    <id>Mailconnect</id>",
            f"    <version>{escape(version)}</version>",
            "    <title>mailconnect</title>",
            f"    <authors>{escape(authors)}</authors>",
            f"    <owners>{escape(authors)}</owners>",
            "    <requireLicenseAcceptance>false</requireLicenseAcceptance>",
        ]
        if license_expr:
            md.append(f'    <license type="expression">{escape(license_expr)}</license>')
            # Clients before NuGet 4.9 show this instead (nuget pack writes the same).
            md.append("    <licenseUrl>https://licenses.nuget.org/"
                      + escape(license_expr.replace(" ", "%20")) + "</licenseUrl>")
        if repo:
            md.append(f"    <projectUrl>{escape(repo)}</projectUrl>")
        md += [
            f"    <description>{escape(description)}</description>",
            "    <readme>README.md</readme>",
            f"    <tags>{tags}</tags>",
        ]
        if repo:
            attr = f' commit="{commit}"' if re.fullmatch(r"[0-9a-f]{40}", commit) else ""
            md.append(f'    <repository type="git" url="{escape(repo)}"{attr} />')
        md += [
            "    <dependencies>",
            f'      <group targetFramework="{TFM_NAME}" />',
            "    </dependencies>",
            "    <frameworkAssemblies>",
            f'      <frameworkAssembly assemblyName="System" targetFramework="{TFM_NAME}" />',
            "    </frameworkAssemblies>",
        ]
        nuspec = ('<?xml version="1.0" encoding="utf-8"?>\n'
                  '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">\n'
                  "  <metadata>\n" + "\n".join(md) + "\n  </metadata>\n</package>\n")

        files = [
            ("Mailconnect.nuspec", nuspec.encode()),
            ("README.md", open(os.path.join(here, "README.md"), "rb").read()),
            (f"lib/{TFM}/Mailconnect.dll", open(dll, "rb").read()),
            (f"lib/{TFM}/Mailconnect.xml", open(xml, "rb").read()),
            ("build/Mailconnect.targets", open(os.path.join(here, "build/Mailconnect.targets"), "rb").read()),
            ("buildTransitive/Mailconnect.targets",
             open(os.path.join(here, "build/Mailconnect.buildTransitive.targets"), "rb").read()),
        ]
        for rid, path in sorted(natives.items()):
            name = NATIVE_NAME[rid.split("-")[0]]
            files.append((f"runtimes/{rid}/native/{name}", open(path, "rb").read()))

        # The OPC parts nuget.exe writes: the core properties (named like nuget's, 32 hex digits,
        # here from the id and version so the same input gives the same package), the package
        # relationships and the content types of every extension in the package.
        psmdcp = "package/services/metadata/core-properties/" + \
            hashlib.md5(f"Mailconnect {version}".encode()).hexdigest() + ".psmdcp"
        core = ('<?xml version="1.0" encoding="utf-8"?>'
                '<coreProperties xmlns:dc="http://purl.org/dc/elements/1.1/" '
                'xmlns:dcterms="http://purl.org/dc/terms/" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                'xmlns="http://schemas.openxmlformats.org/package/2006/metadata/core-properties">'
                f"<dc:creator>{escape(authors)}</dc:creator>"
                f"<dc:description>{escape(description)}</dc:description>"
                "<dc:identifier>Mailconnect</dc:identifier>"
                f"<version>{escape(version)}</version>"
                f"<keywords>{tags}</keywords>"
                "<lastModifiedBy>mailconnect bindings/dotnet/pack.py</lastModifiedBy>"
                "</coreProperties>")
        rels = ('<?xml version="1.0" encoding="utf-8"?>'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                '<Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" '
                'Target="/Mailconnect.nuspec" Id="R' + hashlib.md5(b"nuspec").hexdigest()[:16].upper() + '" />'
                '<Relationship Type="http://schemas.openxmlformats.org/package/2006/relationships/'
                f'metadata/core-properties" Target="/{psmdcp}" Id="R'
                + hashlib.md5(b"psmdcp").hexdigest()[:16].upper() + '" />'
                "</Relationships>")
        files += [("_rels/.rels", rels.encode()), (psmdcp, core.encode())]
        types = {"rels": "application/vnd.openxmlformats-package.relationships+xml",
                 "psmdcp": "application/vnd.openxmlformats-package.core-properties+xml"}
        for name, _ in files:
            base = name.rsplit("/", 1)[-1]
            ext = base.rsplit(".", 1)[1].lower() if "." in base else ""
            if not ext:
                fail(f"{name}: a part without an extension needs an Override in [Content_Types].xml")
            types.setdefault(ext, "application/octet-stream")
        content_types = ('<?xml version="1.0" encoding="utf-8"?>'
                         '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                         + "".join(f'<Default Extension="{e}" ContentType="{t}" />' for e, t in types.items())
                         + "</Types>")
        files.insert(0, ("[Content_Types].xml", content_types.encode()))

        nupkg = os.path.join(a.out, f"Mailconnect.{version}.nupkg")
        with zipfile.ZipFile(nupkg, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files:
                zi = zipfile.ZipInfo(name, date_time)
                zi.compress_type = zipfile.ZIP_DEFLATED
                zi.external_attr = 0o644 << 16
                z.writestr(zi, data)
    print(nupkg)


if __name__ == "__main__":
    main()
