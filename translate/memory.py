"""Process-wide allocator setting that makes CPU training and decoding faster.

glibc serves every allocation over 32 MB (a batch's logits: 4k tokens x 8k pieces x 4 bytes = 130 MB) with a fresh
mmap and unmaps it on free, so each training step page-faults and zeroes those buffers again: 15-50 % of the
CPU time went to the kernel on a 2-core machine. Keeping freed memory in the heap lets the next step reuse it.
`scripts/bench_memory.py` measures the difference.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4


def keep_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Serve large allocations from the heap and keep up to `trim_threshold` bytes of freed memory for reuse.

    Returns False (and changes nothing) where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def release_freed_memory() -> bool:
    """Give the memory the heap keeps but no longer uses back to the system (glibc's malloc_trim): once after a
    phase with its own large transient buffers (SentencePiece training), so they do not add to the steps' peak."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False
