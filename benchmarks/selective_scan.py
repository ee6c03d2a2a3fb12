"""Selective scan (Mamba): gnnlab's compiled CPU kernel vs its sequential torch reference and mambapy.

    python benchmarks/selective_scan.py                    # L = 128, 512, 2048; 96 channels, N = 16, batch 8
    python benchmarks/selective_scan.py --lengths 512 --out PREFIX   # also writes PREFIX.txt and PREFIX.csv

The committed results (results/selective_scan_cpu.txt and .csv) come from, in an environment with
mambapy installed next to gnnlab (a benchmark-only peer, never a gnnlab dependency):

    OMP_NUM_THREADS=2 MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \
        python benchmarks/selective_scan.py --out results/selective_scan_cpu
    OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \
        python benchmarks/selective_scan.py --out results/selective_scan_cpu_1thread

(the one-thread run is the steadier figure on a machine whose two cores are shared with other work:
there a parallel region waits for whichever of its threads was descheduled).

Per-step B, C (Mamba's layout), D, gate z, delta_bias and softplus, float32, every input requiring
grad. The "exp floor" is one ``torch.exp`` over the batch·channels·L·N state elements (the
transitions a scan must compute) into a preallocated output, timed round-robin with the contenders
of each row. The reference's forward+backward is only run up to
--reference-max-length (autograd through its per-step loop is slow). mambapy's parallel scan
(``mambapy.pscan.pscan`` on its [B, L, D, N] layout, with the same softplus, D and gate around it as
``MambaBlock`` applies) is timed when mambapy is installed; its output is first checked against
gnnlab's on the same inputs. "saved" is the memory autograd keeps for the backward (unique tensors
saved by the forward). Figures are medians over --repeat runs in this process; ratios are peer / gnnlab.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from _report import report, write_csv

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


def _leaves(x, backward):
    return {k: v.clone().requires_grad_(backward) for k, v in x.items()}


def run_gnnlab(backend, args):
    with gnnlab.ops.backend_scope(backend):
        return selective_scan(**args, delta_softplus=True)


def run_mambapy(args):
    """The same function through mambapy's parallel scan, in its [B, L, D, N] layout."""
    from mambapy.pscan import pscan

    delta = torch.nn.functional.softplus(args["delta"] + args["delta_bias"][:, None]).transpose(1, 2)  # (B, L, D)
    u = args["u"].transpose(1, 2)  # (B, L, D)
    dA = torch.exp(delta.unsqueeze(-1) * args["A"])  # (B, L, D, N)
    BX = delta.unsqueeze(-1) * args["B"].transpose(1, 2).unsqueeze(2) * u.unsqueeze(-1)  # (B, L, D, N)
    hs = pscan(dA, BX)  # (B, L, D, N)
    y = (hs @ args["C"].transpose(1, 2).unsqueeze(-1)).squeeze(3) + args["D"] * u  # (B, L, D)
    return (y * torch.nn.functional.silu(args["z"].transpose(1, 2))).transpose(1, 2)  # (B, D, L)


def mambapy_available():
    try:
        import mambapy.pscan  # noqa: F401
    except ImportError:
        return False
    return True


def time_all(fns, x, repeat, backward, plain=()):
    """Median ms of each of ``fns`` (name -> fn), run round-robin so that a burst of load elsewhere on
    the machine hits every contender alike; one warm-up call each. Names in ``plain`` are called
    without arguments and without a backward (the exp floor)."""
    def once(name):
        fn = fns[name]
        args = None if name in plain else _leaves(x, backward)  # fresh leaves, made outside the timing
        t0 = time.perf_counter()
        if args is None:
            fn()
        else:
            out = fn(args)
            if backward:
                out.sum().backward()
        return (time.perf_counter() - t0) * 1e3

    times = {name: [] for name in fns}
    for name in fns:
        once(name)
    for _ in range(repeat):
        for name in fns:
            times[name].append(once(name))
    return {name: statistics.median(v) for name, v in times.items()}


def saved_mib(fn, x):
    """MiB of the distinct tensors autograd saves for the backward of ``fn``."""
    seen = {}

    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(_leaves(x, True))
    return sum(seen.values()) / 2**20


def check_mambapy(x):
    """mambapy's output and input gradients against gnnlab's on the same inputs (float32)."""
    outs, grads = [], []
    for fn in (lambda a: run_gnnlab("extension", a), run_mambapy):
        args = _leaves(x, True)
        out = fn(args)
        outs.append(out.detach())
        grads.append(torch.autograd.grad(out.sum(), list(args.values())))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-3, atol=1e-3)
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3 * b.abs().max().item())
    return (outs[1] - outs[0]).abs().max().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dim", type=int, default=96)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--reference-max-length", type=int, default=512)
    parser.add_argument("--out", default=None, help="path prefix: writes PREFIX.txt (what is printed) and PREFIX.csv")
    args = parser.parse_args()
    if not gnnlab.ops.extension_available():
        raise SystemExit(f"gnnlab._C is not built: {gnnlab.ops.extension_error()}")
    with report(args.out):
        rows = run(args)
    write_csv(args.out, list(rows[0]), rows)


def run(args) -> list[dict]:
    """Time every length and pass, printing a line each; return the CSV rows."""
    print(f"threads {torch.get_num_threads()}, batch {args.batch}, channels {args.dim}, N {args.state}, float32")
    rows = []
    for length in args.lengths:
        x = inputs(args.batch, args.dim, args.state, length)
        states = torch.randn(args.batch, args.dim, length, args.state)
        exp_out = torch.empty_like(states)
        peer_ok = mambapy_available()
        if peer_ok:
            err = check_mambapy(x)
            print(f"L={length:5d} mambapy matches gnnlab (outputs and input gradients; max |out diff| {err:.1e})")
        ours_fn = lambda a: run_gnnlab("extension", a)  # noqa: E731
        saved = dict(gnnlab=saved_mib(ours_fn, x), mambapy=saved_mib(run_mambapy, x) if peer_ok else None)
        for backward in (False, True):
            fns = {"gnnlab": ours_fn, "exp floor": lambda: torch.exp(states, out=exp_out)}
            if peer_ok:
                fns["mambapy"] = run_mambapy
            ms = time_all(fns, x, args.repeat, backward, plain=("exp floor",))
            ours, peer, floor = ms["gnnlab"], ms.get("mambapy"), ms["exp floor"]
            ref = (time_all({"ref": lambda a: run_gnnlab("torch", a)}, x, max(1, args.repeat // 3), backward)["ref"]
                   if not backward or length <= args.reference_max_length else None)
            row = dict(L=length, pass_="fwd+bwd" if backward else "fwd", gnnlab_ms=round(ours, 2),
                       reference_ms=None if ref is None else round(ref, 2),
                       mambapy_ms=None if peer is None else round(peer, 2), exp_floor_ms=round(floor, 2),
                       gnnlab_saved_mib=round(saved["gnnlab"], 1),
                       mambapy_saved_mib=None if saved["mambapy"] is None else round(saved["mambapy"], 1))
            rows.append(row)
            ratio = lambda v: "—" if v is None else f"{v / ours:.1f}x"  # noqa: E731
            peer_saved = "—" if saved["mambapy"] is None else f"{saved['mambapy']:.1f}"
            print(f"L={length:5d} {row['pass_']:8s} gnnlab {ours:8.2f} ms | reference {ratio(ref):>7s} | "
                  f"mambapy {ratio(peer):>7s} | gnnlab / exp floor {ours / floor:4.1f} | saved MiB: gnnlab "
                  f"{saved['gnnlab']:.1f}, mambapy {peer_saved}")
    return rows


if __name__ == "__main__":
    main()
