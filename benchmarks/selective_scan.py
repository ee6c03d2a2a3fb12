"""Selective scan (Mamba): gnnlab's compiled CPU kernel vs its sequential torch reference (and mambapy).

    python benchmarks/selective_scan.py                    # L = 128, 512, 2048; 96 channels, N = 16, batch 8
    python benchmarks/selective_scan.py --lengths 512 --csv out.csv

Per-step B, C (Mamba's layout), D, gate z, delta_bias and softplus, float32. The "exp floor" is one
``torch.exp`` over the batch·channels·L·N state elements (the transitions a scan must compute). The
reference's forward+backward is only run up to --reference-max-length (autograd through its per-step
loop is slow). mambapy's parallel scan (`mambapy.pscan.pscan`, its own [B, L, D, N] layout, as its
`MambaBlock.selective_scan` calls it) is timed when mambapy is installed (a benchmark-only peer,
never a gnnlab dependency; that branch has not been run yet). Figures are medians over --repeat runs
in this process; ratios are peer / gnnlab.
"""
from __future__ import annotations

import argparse
import csv

import torch

from _timing import median_ms

import gnnlab.ops
from gnnlab.ops import selective_scan


def inputs(batch, dim, state, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        u=torch.randn(batch, dim, length, generator=g),
        delta=torch.randn(batch, dim, length, generator=g) * 0.5,
        A=-torch.rand(dim, state, generator=g) - 0.1,
        B=torch.randn(batch, state, length, generator=g),
        C=torch.randn(batch, state, length, generator=g),
        D=torch.randn(dim, generator=g),
        z=torch.randn(batch, dim, length, generator=g),
        delta_bias=torch.randn(dim, generator=g) * 0.1,
    )


def time_gnnlab(backend, x, repeat, backward):
    def run():
        args = {k: v.clone().requires_grad_(backward) for k, v in x.items()}
        with gnnlab.ops.backend_scope(backend):
            out = selective_scan(**args, delta_softplus=True)
        if backward:
            out.sum().backward()

    return median_ms(run, repeat)


def time_mambapy(x, repeat, backward):
    try:
        from mambapy.pscan import pscan
    except ImportError:
        return None
    delta = torch.nn.functional.softplus(x["delta"] + x["delta_bias"][:, None]).transpose(1, 2)  # (B, L, D)
    u = x["u"].transpose(1, 2)

    def run():
        d, uu = delta.clone().requires_grad_(backward), u.clone().requires_grad_(backward)
        dA = torch.exp(d.unsqueeze(-1) * x["A"])  # (B, L, D, N)
        BX = d.unsqueeze(-1) * x["B"].transpose(1, 2).unsqueeze(2) * uu.unsqueeze(-1)
        hs = pscan(dA, BX)
        y = (hs @ x["C"].transpose(1, 2).unsqueeze(-1)).squeeze(3)
        if backward:
            y.sum().backward()

    return median_ms(run, repeat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dim", type=int, default=96)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reference-max-length", type=int, default=512)
    parser.add_argument("--csv", default=None)
    args = parser.parse_args()
    if not gnnlab.ops.extension_available():
        raise SystemExit(f"gnnlab._C is not built: {gnnlab.ops.extension_error()}")
    print(f"threads {torch.get_num_threads()}, batch {args.batch}, channels {args.dim}, N {args.state}, float32")
    rows = []
    for length in args.lengths:
        x = inputs(args.batch, args.dim, args.state, length)
        states = torch.randn(args.batch, args.dim, length, args.state)
        floor = median_ms(lambda: torch.exp(states), args.repeat)
        for backward in (False, True):
            ours = time_gnnlab("extension", x, args.repeat, backward)
            ref = (time_gnnlab("torch", x, max(1, args.repeat // 2), backward)
                   if not backward or length <= args.reference_max_length else None)
            peer = time_mambapy(x, args.repeat, backward)
            row = dict(L=length, pass_="fwd+bwd" if backward else "fwd", gnnlab_ms=round(ours, 2),
                       reference_ms=None if ref is None else round(ref, 2), mambapy_ms=None if peer is None else round(peer, 2),
                       exp_floor_ms=round(floor, 2))
            rows.append(row)
            ratio = lambda v: "—" if v is None else f"{v / ours:.1f}x"  # noqa: E731
            print(f"L={length:5d} {row['pass_']:8s} gnnlab {ours:9.2f} ms | reference {ratio(ref):>7s} | "
                  f"mambapy {ratio(peer):>7s} | gnnlab / exp floor {ours / floor:.1f}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
