"""Build a C++ kernel source into a shared library once, and find it again.

The library lands in build/kernels/<stem>-<hash>.so under the repository, named by
the hash of its source and of the compiler command, so an edited source is rebuilt
and an unchanged one is reused (built on first use: 0.3-0.4 s here). It is
written to a temporary name and renamed, so a concurrent or interrupted build
never leaves a half-written library behind. The compiler is $CXX (default g++).
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.core.paths import BUILD_DIR

KERNELS_DIR = BUILD_DIR / "kernels"
# No fast-math and no contraction: the kernels' arithmetic is plain IEEE float32.
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-ffp-contract=off")


class KernelUnavailable(RuntimeError):
    """The kernel could not be built here (no compiler, or the compiler failed); the message says why."""


def compiler() -> list[str]:
    """The C++ compiler command: $CXX (split as a shell would), default g++."""
    try:
        cxx = shlex.split(os.environ.get("CXX") or "g++")
    except ValueError as exc:
        raise KernelUnavailable(f"CXX={os.environ['CXX']!r} does not parse ({exc}) "
                                "(fix: correct or unset CXX)") from None
    if shutil.which(cxx[0]) is None:
        raise KernelUnavailable(f"no C++ compiler {cxx[0]!r} on PATH (fix: install g++, or set CXX to one)")
    return cxx


def library_path(source: Path, build_dir: Path = KERNELS_DIR) -> tuple[Path, list[str]]:
    """Where `source` is built, and the compiler command (without the output path). The name hashes
    the source, the command and the compiler's version, so any of them changing builds anew."""
    command = [*compiler(), *FLAGS, str(source)]
    try:
        version = subprocess.run([command[0], "--version"], capture_output=True, timeout=60).stdout
        text = source.read_bytes()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelUnavailable(f"building {source.name} failed: {exc}") from exc
    digest = hashlib.sha256(b"\0".join([text, "\0".join(command[:-1]).encode(), version])).hexdigest()[:16]
    return build_dir / f"{source.stem}-{digest}.so", command


def build(source: Path, build_dir: Path = KERNELS_DIR) -> Path:
    """The shared library of `source`, compiled now if this source and command were never built."""
    if not source.is_file():
        raise KernelUnavailable(f"kernel source {source} is missing (fix: restore it from git)")
    path, command = library_path(source, build_dir)
    if path.is_file():
        return path
    tmp = None
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=build_dir)
        os.close(fd)
        done = subprocess.run([*command, "-o", tmp], capture_output=True, text=True, errors="replace", timeout=300)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise KernelUnavailable(f"{shlex.join(command)} failed (exit {done.returncode}):\n{tail}")
        os.replace(tmp, path)
        for old in build_dir.glob(f"{source.stem}-*.so"):   # earlier builds of this source: superseded
            if old != path:
                old.unlink(missing_ok=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelUnavailable(f"building {source.name} failed: {exc}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path
