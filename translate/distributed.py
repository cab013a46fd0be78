"""Data-parallel training across the processes `torchrun` starts: which process this is, and the few collective
operations the training loop needs. torch.distributed does the work (gloo on CPU, NCCL on GPU); this module only
joins its process group and names what the loop asks of it.

    torchrun --standalone --nproc-per-node 2 -m translate train ...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    """This process's place among those training together; a lone process is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # this process's index on its machine: which GPU it drives

    @property
    def is_main(self) -> bool:
        """The one process that validates, writes the run folder and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def broadcast(self, value: T) -> T:
        """The main process's `value`, on every process (any picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """The main process runs the block first (it fills caches), the others after it (they read them)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


def launched_world_size() -> int:
    """How many processes torchrun (or another launcher setting WORLD_SIZE) started; 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextlib.contextmanager
def joined(use_cuda: bool) -> Iterator[Cluster]:
    """This process's place in the group the launcher described in the environment (RANK, WORLD_SIZE, MASTER_ADDR,
    ...), joined for the block and left after it.

    A block that ends normally ends with a barrier: Gloo's worker threads drop their last reference to a collective's
    tensors just after it completes, and a process whose interpreter is already exiting by then (after a final
    broadcast) aborts while freeing them. Meeting once more leaves those threads idle. A block that fails skips it:
    the others may never arrive.
    """
    cluster = _join(use_cuda)
    try:
        yield cluster
        cluster.barrier()
    finally:
        if cluster.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _join(use_cuda: bool) -> Cluster:
    if launched_world_size() == 1:
        return Cluster()
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Cluster(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
