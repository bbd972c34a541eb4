"""Checks what a built native file is, for dist/check.sh.

    python3 dist/elfcheck.py FILE MACHINE LINKAGE

MACHINE is x86-64 or aarch64. LINKAGE is `static` (no interpreter, no shared
libraries: the idflow binary), `glibc` (needs libc.so.6 and no glibc symbol
newer than 2.28: the manylinux_2_28 promise) or `musl` (needs nothing but
musl's libc, and no glibc symbol).
Reads the file with binutils' readelf, which reads any architecture.
"""

import re
import subprocess
import sys

MACHINES = {"x86-64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}
GLIBC_MAX = (2, 28)


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def main(path: str, machine: str, linkage: str) -> None:
    header = readelf("-h", path)
    found = re.search(r"Machine:\s+(.*)", header).group(1).strip()
    assert found == MACHINES[machine], f"{path}: built for {found}, not {machine}"
    assert re.search(r"Class:\s+ELF64", header), f"{path}: not a 64-bit ELF"
    interpreter = re.search(r"Requesting program interpreter: (\S+?)\]", readelf("-l", path))
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", readelf("-d", path))
    if linkage == "static":
        assert interpreter is None and not needed, f"{path}: not static: {interpreter and interpreter.group(1)} {needed}"
    elif linkage == "glibc":
        assert "libc.so.6" in needed, f"{path}: does not link glibc: {needed}"
        versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", readelf("-V", path))}
        newest = max(versions)
        assert newest <= GLIBC_MAX, f"{path}: needs glibc {'.'.join(map(str, newest))}, newer than 2.28"
    elif linkage == "musl":
        # musl's loader answers every name of its own libc (libc.so, which
        # zig links, libc.musl-<arch>.so.1, libm.so, ...) with itself.
        musl = re.compile(r"lib(c|m|dl|pthread|rt|util)\.so(\.\d+)?|libc\.musl-\w+\.so\.1")
        assert needed and all(musl.fullmatch(n) for n in needed), f"{path}: needs more than musl's libc: {needed}"
        assert any(n.startswith("libc.") for n in needed), f"{path}: does not link musl's libc: {needed}"
        assert not re.search(r"GLIBC_\d", readelf("-V", path)), f"{path}: needs glibc symbols"
    else:
        raise SystemExit(f"unknown linkage {linkage}")
    print(f"{path.rsplit('/', 1)[-1]}: {machine}, {linkage}" + (f", needs {', '.join(needed)}" if needed else ""))


if __name__ == "__main__":
    main(*sys.argv[1:])
