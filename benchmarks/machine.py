"""The machine a benchmark runs on: its CPU, numpy's BLAS threads, and the CPU other processes take meanwhile.

Absolute times on 2-core VMs move by +-30% between runs, and anything else running (a test run, a build) moves them
more: a benchmark reports what other processes used while it measured, and can wait for a quiet machine.
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_info


def numpy_threads() -> tuple[int, str]:
    """numpy's BLAS thread count and which BLAS it is."""
    np.ones((64, 64)) @ np.ones((64, 64))  # make sure the BLAS library is loaded
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return os.cpu_count() or 1, "assumed = os.cpu_count() (threadpoolctl found no BLAS)"
    return int(blas[0]["num_threads"]), f"threadpoolctl: {blas[0].get('internal_api')} {blas[0].get('version')}"


class OtherLoad:
    """CPU time used by everything but this process (and its waited children) between two instants, in cores.

    The grid is meaningless if something else shares the 2 cores (a test run, a build): every row reports it."""

    def __init__(self):
        self.start = self._snap()

    @staticmethod
    def _snap():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
            busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            busy = float("nan")
        t = os.times()
        return busy, t.user + t.system + t.children_user + t.children_system, time.perf_counter()

    def cores(self) -> float:
        b1, o1, w1 = self._snap()
        b0, o0, w0 = self.start
        return max(0.0, (b1 - b0) - (o1 - o0)) / max(w1 - w0, 1e-9)


def wait_quiet(limit_s: float) -> float:
    """Wait (up to limit_s) for a second in which other processes use < 0.1 cores; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        probe = OtherLoad()
        time.sleep(1.0)
        if probe.cores() < 0.1:
            break
    return time.perf_counter() - t0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
