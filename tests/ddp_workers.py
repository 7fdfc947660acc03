"""Process entry points for tests/test_ddp.py, in a module that imports only torch and the
Lab's distributed helpers: spawned children import it, so it must be light."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.distributed as dist

from melodex.lab.distributed import global_infonce
from melodex.lab.losses import InfoNCELoss

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def features(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.nn.Linear]:
    g = torch.Generator().manual_seed(seed)
    audio_in = torch.randn(16, 6, generator=g)
    text = torch.randn(16, 5, generator=g)
    layer = torch.nn.Linear(6, 5)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(5, 6, generator=g))
        layer.bias.copy_(torch.randn(5, generator=g))
    return audio_in, text, layer


def item_and_text_keys() -> tuple[list[int], list[int]]:
    items = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 3, 15]  # item 3 twice, across ranks
    texts = [100 + i for i in range(16)]
    texts[9] = texts[1]  # the same caption on both ranks
    return items, texts


def loss_worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        audio_in, text, layer = features()
        items, texts = item_and_text_keys()
        local = slice(rank * 8, rank * 8 + 8)
        loss_fn = InfoNCELoss(temperature=0.1, learnable=False)
        loss, backward = global_infonce(
            loss_fn, layer(audio_in[local]), text[local], items[local], texts[local]
        )
        backward.backward()
        grad = layer.weight.grad.clone()
        dist.all_reduce(grad)
        grad /= WORLD  # what DDP does with the gradients
        torch.save({"loss": loss.detach(), "grad": grad}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
