#!/usr/bin/env python3
"""Build Mailconnect.dll with mcs and a NuGet package laid out the NuGet way:
lib/netstandard2.0/Mailconnect.dll and runtimes/<rid>/native/<library>. CI can only build linux-x64;
other RIDs are added with --native RID=PATH.

usage: pack.py OUT_DIR --native linux-x64=target/release/libmailconnect.so [--native win-x64=mailconnect.dll]"""
import argparse
import os
import subprocess
import zipfile

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--native", action="append", default=[], help="RID=PATH")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
dll = os.path.join(a.out, "Mailconnect.dll")
subprocess.run(["mcs", "-langversion:7", "-nologo", "-warnaserror", "-target:library", "-doc:" + dll[:-4] + ".xml",
                "-out:" + dll, os.path.join(here, "Mailconnect.cs")], check=True)
nupkg = os.path.join(a.out, "Mailconnect.0.1.0.nupkg")
with zipfile.ZipFile(nupkg, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(os.path.join(here, "Mailconnect.nuspec"), "Mailconnect.nuspec")
    z.write(dll, "lib/netstandard2.0/Mailconnect.dll")
    z.write(dll[:-4] + ".xml", "lib/netstandard2.0/Mailconnect.xml")
    for spec in a.native:
        rid, path = spec.split("=", 1)
        z.write(path, f"runtimes/{rid}/native/{os.path.basename(path)}")
print(nupkg)
