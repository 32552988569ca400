"""Running untrusted Python (a model's code) in a sandboxed subprocess.

The program runs with ``python -I`` in a fresh temporary directory, with an empty
environment, CPU-time, address-space and file-size limits, a wall-clock timeout, and no
network (a new user and network namespace via ``unshare -rn`` where the machine allows
one). Its standard output goes to a size-limited file and comes back truncated.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited 0 within its limits
    stdout: str  # at most ``max_output`` characters of what it printed
    timed_out: bool


def sandbox_exec(program: str, *, timeout_s: float = 10.0, memory_mb: int = 1024,
                 max_output: int = 65536) -> SandboxResult:
    """Run ``program`` under the limits above and return how it ended and what it printed."""
    def limits() -> None:
        cpu = int(timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
        os.setsid()

    with tempfile.TemporaryDirectory(prefix="rung-sandbox-") as tmp:
        script = Path(tmp) / "program.py"
        script.write_text(program)
        out_path = Path(tmp) / "stdout"
        cmd = [sys.executable, "-I", str(script)]
        if shutil.which("unshare") and _unshare_works():
            cmd = ["unshare", "-rn", *cmd]
        with out_path.open("wb") as out:
            try:
                done = subprocess.run(cmd, cwd=tmp, env={"PATH": "/usr/bin:/bin"},
                                      stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.DEVNULL, timeout=timeout_s,
                                      preexec_fn=limits, check=False)
            except subprocess.TimeoutExpired:
                return SandboxResult(ok=False, stdout="", timed_out=True)
        with out_path.open("rb") as f:
            text = f.read(max_output).decode("utf-8", errors="replace")
        return SandboxResult(ok=done.returncode == 0, stdout=text, timed_out=False)


def sandbox_run(program: str, *, timeout_s: float = 10.0, memory_mb: int = 1024) -> bool:
    """True when ``program`` exits 0 in the sandbox within its limits."""
    return sandbox_exec(program, timeout_s=timeout_s, memory_mb=memory_mb).ok


@functools.cache
def _unshare_works() -> bool:
    """Can this machine give a child its own (empty) network namespace?"""
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=5,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
