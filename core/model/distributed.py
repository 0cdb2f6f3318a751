"""Data-parallel pretraining on PyTorch's own engine: `fewlabel pretrain` under `torchrun`.

`torchrun --nproc-per-node N -m core.cli pretrain ...` starts N copies of the command with
RANK, WORLD_SIZE and LOCAL_RANK set; `world_from_env` joins them into one process group
(nccl on CUDA, one GPU per local rank; gloo on CPU). Each rank trains on its shard of the
corpus; after every backward pass the gradients are averaged across ranks (one flat
all-reduce), so every rank takes the same optimizer step and the replicas stay identical,
which is what DistributedDataParallel does, without wrapping a model whose loss is built
from several of its methods. Rank 0 alone decides when to stop and what the learning-rate
horizon is (a time budget measured on different clocks would otherwise split the ranks),
and rank 0 alone writes the checkpoint. Without WORLD_SIZE > 1 nothing here does anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one pretraining run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence) -> list:
        """This rank's share of `items`: every size-th one from its rank (sizes differ by at
        most one, and every item is in exactly one shard)."""
        return list(items[self.rank :: self.size])


def world_from_env() -> World:
    """The run's World from torchrun's variables, joining the process group on first call."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)  # "cuda" then means this rank's GPU
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def broadcast_parameters(modules: Iterable[nn.Module], world: World) -> None:
    """Every rank starts from rank 0's weights (a freshly initialised head differs by seed)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for module in modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)


def average_gradients(params: Sequence[nn.Parameter], world: World) -> None:
    """Replace each parameter's gradient by its mean over the ranks (a missing gradient
    counts as zeros, so every rank reduces the same flat buffer)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(g).to(g.dtype)
        offset += n


def agree(values: Sequence[float], world: World) -> list[float]:
    """Rank 0's `values` on every rank (stop flags, the schedule's horizon)."""
    if not world.distributed:
        return list(values)
    import torch.distributed as dist

    device = torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def barrier(world: World) -> None:
    """Wait for every rank (rank 0 finishing its checkpoint before the others exit)."""
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()
