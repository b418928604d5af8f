"""The dashboard for tests and benchmarks: in process (`app`, Streamlit's AppTest) and as a real server.

`app(**query)` runs dashboard.py once with those URL query parameters and returns the AppTest.
`with dashboard() as url:` (the browser tests and the browser benchmark) starts `streamlit run dashboard.py`, waits until it answers its health check (60 s at
most) and stops it, by its own PID, on the way out.
"""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app(**query):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


@contextlib.contextmanager
def dashboard(env: dict | None = None, port: int | None = None, **popen) -> Iterator[str]:
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
                             "--server.headless", "true", "--server.port", str(port)], cwd=ROOT, env=env, **popen)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("the dashboard server did not become healthy in 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
