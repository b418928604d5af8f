"""A byte budget shared by everyone using one server: work that would push the total past it is refused at once
with a message, rather than queued into swap (a lecture hall of students pressing Train at the same moment).

Standard library only; the dashboard holds one `SERVER` budget per process and asks it before each training.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

SERVER_BYTES = 3 * 2**30  # what this process may hold in trainings at once (the machine has more, the room shares it)


class Budget:
    def __init__(self, limit: int):
        self.limit, self.used, self.holders = limit, 0, 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, need: int, what: str) -> Iterator[None]:
        """Hold `need` bytes for the block, or raise ValueError in one line when they are not free."""
        with self._lock:
            if need > self.limit:
                raise ValueError(f"{what} needs about {need / 2**30:.2f} GB, more than this server's "
                                 f"{self.limit / 2**30:.0f} GB limit: lower seq_len, hidden or batch")
            if self.used + need > self.limit:
                one = self.holders == 1
                raise ValueError(f"{what} needs about {need / 2**30:.2f} GB and {self.holders} other "
                                 f"training{'' if one else 's'} running on this server hold{'s' if one else ''} "
                                 f"{self.used / 2**30:.1f} GB (limit {self.limit / 2**30:.0f} GB): try again when "
                                 f"{'it' if one else 'one'} finishes, or lower seq_len, hidden or batch")
            self.used += need
            self.holders += 1
        try:
            yield
        finally:
            with self._lock:
                self.used -= need
                self.holders -= 1


SERVER = Budget(SERVER_BYTES)
