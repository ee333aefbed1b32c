#!/usr/bin/env python3
"""PyTorch timing of the authors' model as they wrote it (the comparison point of `icl-train bench`).

The model is the one their main_icl.py trains (attention.py, the last `CausalTransformer`):
LayerNorm(65) on every token, one head with a packed bias-free Linear(65, 195) for Q, K, V,
causal `F.scaled_dot_product_attention` with scale 1 over ALL positions, then
MLP(x[:, -1] + sa[:, -1]) with Linear(65, W)-ReLU-Linear(W, W)-ReLU-Linear(W, 1); PyTorch default
init; loss mean(-logsigmoid(l * logit)); SGD lr 0.01 with the attention/LayerNorm and MLP groups
(weight decay 1e-10). Timed on one thread (torch.set_num_threads(1)) per CPU second of the
process, best of --windows windows, as `icl-train bench` times itself, on pre-built batches of
random tokens in the task's format, so the authors' slow DataLoader is NOT counted (this favours
the reference). Prints one line: `reference: its_per_s=<x> ...`.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class AuthorsTransformer(nn.Module):
    def __init__(self, x_dim, width):
        super().__init__()
        self.to_embedding = nn.Sequential(nn.LayerNorm(x_dim))
        self.qkv = nn.Linear(x_dim, 3 * x_dim, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(x_dim, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(),
            nn.Linear(width, 1),
        )

    def forward(self, x):
        x = self.to_embedding(x)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        sa = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)
        return self.mlp(x[:, -1, :] + sa[:, -1, :])


def make_batch(gen, b, n, d):
    items = torch.randn(b, n, d, generator=gen) / d ** 0.5
    labels = torch.randint(0, 2, (b, n), generator=gen)
    onehot = F.one_hot(labels, 2).float()
    onehot[:, -1, :] = 0.0
    items[:, -1, :] = items[:, 0, :]  # the query matches a context item
    return torch.cat([items, onehot], dim=-1), (labels[:, 0] * 2 - 1).float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--d", type=int, default=63)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--windows", type=int, default=5)
    a = ap.parse_args()

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = AuthorsTransformer(a.d + 2, a.width)
    opt = torch.optim.SGD(
        [
            {"params": model.to_embedding.parameters(), "weight_decay": 1e-10},
            {"params": model.qkv.parameters(), "weight_decay": 1e-10},
            {"params": model.mlp.parameters(), "weight_decay": 1e-10},
        ],
        lr=0.01,
    )
    batches = [make_batch(gen, a.batch, a.n, a.d) for _ in range(8)]

    def step(i):
        x, l = batches[i % len(batches)]
        opt.zero_grad()
        out = model(x).squeeze(1)
        loss = -F.logsigmoid(out * l).mean()
        loss.backward()
        opt.step()
        return loss

    for i in range(a.warmup):
        step(i)
    # CPU time of the process, as icl-train bench measures itself (robust to other load on the
    # machine; equal to wall time on an idle core); the best of --windows windows, as the bench.
    best, total_iters, total_cpu = 0.0, 0, 0.0
    w0 = time.perf_counter()
    for _ in range(a.windows):
        iters, t0 = 0, time.process_time()
        while True:
            step(iters)
            iters += 1
            el = time.process_time() - t0
            if el >= a.seconds / a.windows and iters >= 2:
                break
        best = max(best, iters / el)
        total_iters += iters
        total_cpu += el
    wall = time.perf_counter() - w0
    print(
        f"reference: its_per_s={best:.3f} iters={total_iters} cpu_seconds={total_cpu:.2f} "
        f"mean_its_per_s={total_iters / total_cpu:.3f} wall_its_per_s={total_iters / wall:.3f} n={a.n} batch={a.batch} "
        f"width={a.width} threads={torch.get_num_threads()} torch={torch.__version__}"
    )


if __name__ == "__main__":
    main()
