"""Running untrusted Python (a model's code) in a sandboxed subprocess.

The program runs with ``python -I`` in a fresh temporary directory, with an empty
environment, CPU-time, address-space and file-size limits, a wall-clock timeout, and no
network (a new user and network namespace via ``unshare -rn`` where the machine allows
one). Inside, an audit hook installed before the program starts refuses what a test of a
function never needs and a hostile answer would: writing, deleting or renaming files
outside its own directory, starting processes, signals, sockets, and loading C code
through ctypes (defence in depth, not a security boundary: run untrusted code on a
machine you can lose). Its standard output goes to a size-limited file and comes back
truncated.
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

_GUARD = """
import os as _os, runpy as _runpy, sys as _sys
_HOME = _os.getcwd()
_DENY = {"os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "shutil.move", "os.system",
         "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
         "os.forkpty", "os.kill", "os.killpg", "os.chmod", "os.chown", "os.symlink",
         "os.link", "os.truncate", "os.chdir", "os.chroot", "socket.connect", "socket.bind",
         "socket.sendto", "ctypes.dlsym", "ctypes.call_function",
         "pty.spawn", "resource.setrlimit"}
def _inside(path):
    try:
        real = _os.path.realpath(_os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return real == _HOME or real.startswith(_HOME + _os.sep)
def _hook(event, args):
    if event in _DENY:
        raise PermissionError("sandbox: " + event + " is not allowed")
    writes = event == "os.mkdir" or (
        event == "open" and bool(args) and args[0] is not None
        and not isinstance(args[0], int)
        and (any(c in str(args[1] or "") for c in "wax+") or (args[2] or 0) & (
            _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | _os.O_APPEND)))
    if writes and not _inside(args[0]):
        raise PermissionError("sandbox: writing outside the sandbox is not allowed")
_sys.addaudithook(_hook)
_sys.argv = ["program.py"]
_runpy.run_path("program.py", run_name="__main__")
"""


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
        (Path(tmp) / "program.py").write_text(program)
        launcher = Path(tmp) / "launch.py"
        launcher.write_text(_GUARD)
        out_path = Path(tmp) / "stdout"
        cmd = [sys.executable, "-I", str(launcher)]
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
