"""Random bytes from the operating system's CSPRNG, fetched a block at a time.

Each `os.urandom` call is a system call that releases the interpreter lock; on an event loop
that shares its process with database threads (aiosqlite runs one per connection), taking the
lock back can wait for a whole switch interval, several milliseconds. Hot paths that need a few
random bytes per mail or per click take them from a pool instead: the same bytes, one system
call per block.
"""

import os
import threading

BLOCK_BYTES = 4096


class EntropyPool:
    def __init__(self, block_bytes: int = BLOCK_BYTES) -> None:
        self._block_bytes = block_bytes
        self._lock = threading.Lock()
        self._buffer = b""
        self._position = 0

    def take(self, size: int) -> bytes:
        """`size` fresh random bytes; no byte is ever handed out twice."""
        with self._lock:
            if self._position + size > len(self._buffer):
                self._buffer = os.urandom(max(self._block_bytes, size))
                self._position = 0
            start = self._position
            self._position += size
            return self._buffer[start : self._position]

    def token_hex(self, size: int) -> str:
        return self.take(size).hex()

    def forget(self) -> None:
        """Drop the unused bytes (a forked child must never hand out its parent's)."""
        self._buffer = b""
        self._position = 0
        self._lock = threading.Lock()


POOL = EntropyPool()
os.register_at_fork(after_in_child=POOL.forget)
