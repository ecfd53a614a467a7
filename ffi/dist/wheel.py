#!/usr/bin/env python3
"""Python wheels of the mailconnect binding that carry the native library.

usage: wheel.py OUT_DIR VERSION PLATFORM:LIBRARY [PLATFORM:LIBRARY ...]
  PLATFORM  manylinux (the tag is worked out from the library: manylinux_2_N_x86_64, N the newest
            glibc symbol version it needs, as auditwheel reads it), win_amd64 or win32

Each wheel is built by pip from a copy of bindings/python with the library beside the package's
__init__.py (where mailconnect.library_path() looks first), then given its platform tag with the
`wheel tags` tool: a ctypes binding is not tied to a Python version or ABI, so py3-none-PLATFORM.
setuptools and wheel (PyPI) are installed into a private folder for the build."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def manylinux_tag(lib: str) -> str:
    dyn = subprocess.run(["objdump", "-T", lib], check=True, capture_output=True, text=True).stdout
    minors = [int(m) for m in re.findall(r"GLIBC_2\.(\d+)", dyn)]
    if not minors:
        sys.exit(f"wheel.py: {lib} names no glibc symbol version")
    arch = subprocess.run(["objdump", "-f", lib], check=True, capture_output=True, text=True).stdout
    if "x86-64" not in arch:
        sys.exit(f"wheel.py: {lib} is not an x86-64 library")
    return f"manylinux_2_{max(minors)}_x86_64"


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out, version = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # setuptools with its own bdist_wheel (70.1+) and the `wheel tags` tool, in a folder of
        # their own ahead of the interpreter's (which may be older or lack them).
        tools = os.path.join(tmp, "tools")
        run([sys.executable, "-m", "pip", "install", "-q", "--root-user-action=ignore", "--target", tools, "setuptools>=70.1", "wheel>=0.42"])
        env = dict(os.environ, PYTHONPATH=tools + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for spec in sys.argv[3:]:
            platform, lib = spec.split(":", 1)
            tag = manylinux_tag(lib) if platform == "manylinux" else platform
            src = os.path.join(tmp, "src-" + platform)
            shutil.copytree(os.path.join(root, "bindings/python"), src,
                            ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build"))
            shutil.copy(lib, os.path.join(src, "mailconnect", os.path.basename(lib)))
            built = os.path.join(tmp, "built-" + platform)
            run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", built, src],
                env=env)
            (whl,) = [f for f in os.listdir(built) if f.endswith(".whl")]
            if not whl.startswith(f"mailconnect-{version}-"):
                sys.exit(f"wheel.py: pip built {whl}, not version {version}")
            run([sys.executable, "-m", "wheel", "tags", "--remove", "--python-tag", "py3", "--abi-tag", "none",
                 "--platform-tag", tag, os.path.join(built, whl)], env=env, stdout=subprocess.DEVNULL)
            (tagged,) = [f for f in os.listdir(built) if f.endswith(".whl")]
            shutil.copy(os.path.join(built, tagged), out)
            print(os.path.join(out, tagged))


if __name__ == "__main__":
    main()
