"""One writer at a time, across threads and processes, woken as soon as the lock is free.

SQLite lets one writer in and makes the others retry on a busy handler that sleeps 1, 2, 5 ...
up to 100 ms between attempts, so a waiting writer often sleeps long after the lock was
released while the writer that had it takes it again (an MLLP listener storing a message
behind a worker: tens of milliseconds more before the ACK). A blocking lock on a file beside
the database queues writers instead. SQLite's own locking still guards the database: this lock
only decides who asks first. Both SQLite databases take it: the embedded store and the hub's
state.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's busy handler alone serialises writers
    fcntl = None  # type: ignore[assignment]


class WriteLock:
    def __init__(self, path: str) -> None:
        self._path = path
        self._open()

    def _open(self) -> None:
        self._pid = os.getpid()
        self._threads = threading.Lock()  # flock does not exclude threads of one process
        self._file = open(self._path, "a+b") if fcntl is not None else None  # noqa: SIM115

    def __enter__(self) -> WriteLock:
        if self._pid != os.getpid():
            # A forked child shares its parent's open file, and with it the parent's flock:
            # a lock of its own, or the two would not exclude each other.
            self._open()
        self._threads.acquire()
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
