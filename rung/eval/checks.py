"""Verifiable checks of an answer: numeric exact match, a letter, or unit tests run in a
sandboxed subprocess (no network, CPU time and memory limits, a private temp directory).
"""

from __future__ import annotations

import functools
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rung.eval.datasets import Item

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_number(text: str) -> str | None:
    """The model's final number: after 'The answer is' / '####' if present, else the last
    number in the text. Commas and a trailing '.0' are dropped."""
    for marker in (r"answer is", r"####"):
        parts = re.split(marker, text, flags=re.IGNORECASE)
        if len(parts) > 1:
            nums = _NUMBER.findall(parts[-1])
            if nums:
                return _norm(nums[0])
    nums = _NUMBER.findall(text)
    return _norm(nums[-1]) if nums else None


def _norm(n: str) -> str:
    n = n.replace(",", "")
    if "." in n:
        n = n.rstrip("0").rstrip(".")
    return n or "0"


def extract_code(text: str, prompt: str) -> str:
    """The completion's code: the last ```python block if any, else the text; if it does not
    define the function, it is taken as the body following the prompt."""
    blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", text, flags=re.DOTALL)
    code = blocks[-1] if blocks else text
    return code if "def " in code else prompt + code


def sandbox_run(program: str, *, timeout_s: float = 10.0, memory_mb: int = 1024) -> bool:
    """Run ``program`` with ``python -I`` in a fresh temp dir; True when it exits 0.

    Limits: CPU seconds and address space via setrlimit, a wall-clock timeout, no network
    (a new user and network namespace via ``unshare -rn`` when available), an empty
    environment, output discarded."""
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
        cmd = [sys.executable, "-I", str(script)]
        if shutil.which("unshare") and _unshare_works():
            cmd = ["unshare", "-rn", *cmd]
        try:
            done = subprocess.run(cmd, cwd=tmp, env={"PATH": "/usr/bin:/bin"},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout_s,
                                  preexec_fn=limits, check=False)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


@functools.cache
def _unshare_works() -> bool:
    """Can this machine give a child its own (empty) network namespace?"""
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=5,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def is_correct(item: Item, answer: str) -> bool:
    if item.dataset == "gsm8k":
        return final_number(answer) == _norm(item.reference)
    if item.dataset == "mc":
        m = re.search(r"\b([A-J])\b", answer.strip().upper())
        return m is not None and m.group(1) == item.reference
    code = extract_code(answer, item.extra["code_prompt"])
    program = f"{code}\n\n{item.reference}\n\ncheck({item.extra['entry_point']})\n"
    return sandbox_run(program)
