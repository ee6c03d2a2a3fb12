"""Global mixers on one large graph: Graph-Mamba vs full attention, Performer and mambapy's Mamba block,
time and peak memory.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \\
        python benchmarks/mixer_memory.py --out results/mixer_memory_cpu     # writes .txt and .csv

mambapy (a benchmark-only peer, never a gnnlab dependency) is measured when it can be imported, e.g.
with its package directory on PYTHONPATH.

One random graph of N nodes (average degree 4, both directions stored), width 96 (the Graph-Mamba
LRGB width), float32, CPU. Mixers: :class:`GraphMambaMixer` (degree + noise ordering, Mamba
d_state 16, d_conv 4, expand 1, the compiled selective-scan kernel), :class:`MultiheadAttentionMixer`
(4 heads, PyTorch's CPU ``scaled_dot_product_attention``), :class:`PerformerMixer` (4 heads,
default number of random features) and mambapy's ``MambaBlock`` with the Graph-Mamba mixer's
configuration over the same degree-with-noise ordering (its selective scan is mambapy's parallel
scan on ``[1, L, d_inner, N]`` tensors). ``mamba_chunked`` is :class:`GraphMambaMixer` with
``chunk_size=1024`` (``$GNNLAB_BENCH_CHUNK``): sequences longer than that run in pieces recomputed in
the backward, so autograd keeps the input and one scan state per piece; graphs of up to 1024 nodes
run whole, as in the ``mamba`` row. Modes:

* ``fwd``: forward under ``torch.no_grad()`` in training mode (one ordering for Graph-Mamba);
* ``fwd_eval_K5``: Graph-Mamba only, evaluation-mode forward averaging 5 orderings, as the authors
  evaluate (under ``no_grad`` the mixer scans them one at a time into a running sum);
* ``fwd+bwd``: forward with autograd, ``out.square().mean().backward()``.

Time: median over --repeat calls after the memory-measuring call. Memory, two ways. "live": the
largest increase of the bytes malloc has handed out (``mallinfo2``), read after every aten op of one
call (forward and backward) through a dispatch mode: the tensors alive at op granularity, the same on
every run (buffers an op allocates and frees inside itself are not seen). "RSS": every configuration runs
in a fresh child process; after building the inputs and a warm-up call on a 64-node graph (lazy
initialisation of kernels and thread pools), the child reads its resident set size (RSS), makes one
call at size N and reads the RSS high-water mark (``getrusage`` ``ru_maxrss``): the peak increase is
the difference. With glibc's mmap and trim thresholds raised (the command above) freed blocks stay
in the heap, so the RSS does not fall between the warm-up and the measured call and the high-water
mark before the call equals the RSS (the child checks this and flags rows where it does not hold);
the figure counts every page the call touched: activations, saved tensors, gradients, workspace,
and allocator slack, and varies by tens of MiB between identical runs. Ratios are mixer / attention
from the same run, memory ratios on the live figure.

On one graph without a mask, PyTorch's CPU ``scaled_dot_product_attention`` runs its fused
(flash-style) kernel, which never stores the N x N weights: its memory grows linearly with N (the
quadratic memory of GraphGPS's ``nn.MultiheadAttention``, which returns the weights, does not show
here); its time grows quadratically.

Threads: one per child by default. On a machine whose cores are shared with other jobs, several
OpenMP threads spend most of their time waiting at barriers for a descheduled sibling (a
1000 x 96 ``index_add`` measured 180 ms with 2 threads vs 0.3 ms with 1 on the loaded 2-core
machine of the recorded run), which would swamp every difference between the mixers; pass
--threads on an idle machine. The header records the load average at the start.

The Graph-Mamba timings reflect the selective-scan kernel at the commit measured (the committed
results use the vectorised CPU kernel).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from _report import report, write_csv

SIZES = (1000, 2000, 5000, 10000)
MIXERS = ("mamba", "mamba_chunked", "attention", "performer", "mambapy")
#: Rows per piece of the ``mamba_chunked`` row (``GraphMambaMixer(chunk_size=...)``).
CHUNK_SIZE = int(os.environ.get("GNNLAB_BENCH_CHUNK", 1024))
MODES = ("fwd", "fwd_eval_K5", "fwd+bwd")
DIM, HEADS, AVG_DEGREE = 96, 4, 4


def _heap_bytes() -> int:
    """Bytes glibc's malloc has handed out and not had back (``mallinfo2``: heap in use + mmapped)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def _heap_peak_mib(call) -> float:
    """Largest increase of the bytes in use, read after every aten (and gnnlab) op of ``call()``,
    forward and backward: live tensors at op granularity, without the allocator's slack."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Peak(TorchDispatchMode):
        peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.peak = max(self.peak, _heap_bytes())
            return out

    base = _heap_bytes()
    mode = Peak()
    with mode:
        call()
    return (mode.peak - base) / 2**20


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _child(mixer_name: str, num_nodes: int, mode: str, repeat: int, threads: int) -> dict:
    """Build one mixer and graph, measure the peak RSS increase of one call and the median time."""
    import torch

    torch.set_num_threads(threads)
    from gnnlab.nn.mixer import GraphMambaMixer, MultiheadAttentionMixer, PerformerMixer

    torch.manual_seed(0)
    if mixer_name in ("mamba", "mamba_chunked"):
        chunk = CHUNK_SIZE if mixer_name == "mamba_chunked" else None
        mixer = GraphMambaMixer(DIM, d_state=16, d_conv=4, expand=1, eval_orderings=5, chunk_size=chunk)
    elif mixer_name == "attention":
        mixer = MultiheadAttentionMixer(DIM, HEADS, dropout=0.0)
    elif mixer_name == "performer":
        mixer = PerformerMixer(DIM, HEADS, seed=0)
    else:
        mixer = _MambapyMixer()
    mixer.train(mode != "fwd_eval_K5")
    takes_edges = mixer_name in ("mamba", "mamba_chunked", "mambapy")

    def graph(n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        half = torch.randint(0, n, (2, n * AVG_DEGREE // 2), generator=g)
        edge_index = torch.cat([half, half.flip(0)], dim=1)
        return torch.randn(n, DIM, generator=g), edge_index

    def call(x, edge_index):
        kwargs = {"edge_index": edge_index} if takes_edges else {}
        if mode == "fwd+bwd":
            x = x.detach().requires_grad_(True)
            mixer(x, None, **kwargs).square().mean().backward()
            mixer.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                mixer(x, None, **kwargs)

    call(*graph(64, 1))  # warm-up: lazy initialisation outside the measurement
    x, edge_index = graph(num_nodes, 0)
    rss_before = _rss_kib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    call(x, edge_index)
    first_ms = (time.perf_counter() - t0) * 1e3
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call(x, edge_index)
        times.append((time.perf_counter() - t0) * 1e3)
    heap_mib = _heap_peak_mib(lambda: call(x, edge_index))
    return dict(
        mixer=mixer_name, nodes=num_nodes, mode=mode,
        ms=statistics.median(times) if times else first_ms,
        heap_mib=heap_mib,
        peak_mib=(peak_after - rss_before) / 1024,
        # The high-water mark before the call exceeded the RSS: a peak below it would go unseen.
        flag="" if peak_before <= rss_before + 1024 else "hwm>rss",
        threads=torch.get_num_threads(), torch=torch.__version__,
    )


def _mambapy_mixer_class():
    import torch
    from mambapy.mamba import MambaBlock, MambaConfig

    from gnnlab.nn.ssm.sequence import node_degree

    class MambapyMixer(torch.nn.Module):
        """mambapy's MambaBlock (in_proj, conv, selective scan by its parallel scan, gate, out_proj) with
        the configuration of the gnnlab mixer, over the one graph's nodes sorted by degree (plus
        U[0, 1) noise) and put back in row order: the same work as GraphMambaMixer in training mode."""

        def __init__(self):
            super().__init__()
            self.block = MambaBlock(MambaConfig(d_model=DIM, n_layers=1, d_state=16, expand_factor=1, d_conv=4))

        def forward(self, x, batch=None, edge_index=None):
            degree = node_degree(edge_index, x.size(0)).to(x.dtype)
            order = torch.argsort(degree + torch.rand_like(degree))
            y = self.block(x.index_select(0, order).unsqueeze(0))[0]
            return torch.empty_like(y).index_copy(0, order, y)

    return MambapyMixer


def _MambapyMixer():
    return _mambapy_mixer_class()()


def _mambapy_available() -> bool:
    try:
        import mambapy.mamba  # noqa: F401
    except ImportError:
        return False
    return True


def _run_child(mixer: str, nodes: int, mode: str, repeat: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mixer, str(nodes), mode, "--repeat", str(repeat),
           "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per configuration (3 above 2k nodes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each child (see the docstring)")
    parser.add_argument("--out", default=None, help="path prefix: writes PREFIX.txt and PREFIX.csv")
    parser.add_argument("--child", nargs=3, metavar=("MIXER", "NODES", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mixer, nodes, mode = args.child
        print(json.dumps(_child(mixer, int(nodes), mode, args.repeat, args.threads)))
        return

    load = os.getloadavg()
    mixers = [m for m in MIXERS if m != "mambapy" or _mambapy_available()]
    rows = []
    for nodes in args.sizes:
        repeat = args.repeat if nodes <= 2000 else min(args.repeat, 3)
        for mode in MODES:
            for mixer in mixers:
                if mode == "fwd_eval_K5" and not mixer.startswith("mamba_") and mixer != "mamba":
                    continue
                rows.append(_run_child(mixer, nodes, mode, repeat, args.threads))
                print(f"  {mixer:13s} N={nodes:6d} {mode:11s} {rows[-1]['ms']:10.1f} ms {rows[-1]['heap_mib']:9.1f} "
                      f"MiB live {rows[-1]['peak_mib']:9.1f} MiB RSS", file=sys.stderr, flush=True)

    attention = {(r["nodes"], r["mode"]): r for r in rows if r["mixer"] == "attention"}
    lines = [
        f"torch {rows[0]['torch']}, {rows[0]['threads']} threads, {platform.machine()}; one graph, avg degree "
        f"{AVG_DEGREE}, dim {DIM}, float32; fresh process per row; peak = RSS high-water increase of one call; "
        f"load average at start {load[0]:.1f} on {os.cpu_count()} cores",
        "live = largest increase of the bytes malloc has out, read after every op (tensors alive at op granularity);",
        "RSS = resident high-water increase (also allocator slack and pages touched by kernels; noisier)",
        "ratios are mixer / attention in the same mode (fwd_eval_K5 vs attention fwd)",
        "",
        f"{'mixer':13s} {'nodes':>6s} {'mode':11s} {'ms':>10s} {'live MiB':>9s} {'RSS MiB':>9s} {'time/attn':>9s} "
        f"{'live/attn':>9s}",
    ]
    for r in rows:
        ref = attention.get((r["nodes"], "fwd" if r["mode"] == "fwd_eval_K5" else r["mode"]))
        r["time_vs_attention"] = r["ms"] / ref["ms"] if ref else None
        r["mem_vs_attention"] = r["heap_mib"] / ref["heap_mib"] if ref and ref["heap_mib"] > 0 else None
        fmt = lambda v: f"{v:8.2f}x" if v is not None else f"{'-':>9s}"  # noqa: E731
        lines.append(f"{r['mixer']:13s} {r['nodes']:6d} {r['mode']:11s} {r['ms']:10.1f} {r['heap_mib']:9.1f} "
                     f"{r['peak_mib']:9.1f} {fmt(r['time_vs_attention'])} {fmt(r['mem_vs_attention'])} "
                     f"{r['flag']}".rstrip())
    with report(args.out):
        print("\n".join(lines))
    write_csv(args.out, ["mixer", "nodes", "mode", "ms", "heap_mib", "peak_mib", "time_vs_attention",
                         "mem_vs_attention", "flag"], rows)


if __name__ == "__main__":
    main()
