"""neighbor_sample: the sample's structure, its distribution, reproducibility and input checks, on both backends."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gnnlab.ops
from gnnlab.ops import _reference, neighbor_sample


def random_csr(num_nodes: int, num_edges: int, seed: int, dtype=torch.long):
    """A random multigraph as ``(rowptr, col)``: rows sorted, duplicates and self loops allowed."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    rowptr, col, _ = _reference.coo_to_csr(edge_index.flip(0), num_nodes)
    return rowptr, col.to(dtype)


def check_structure(rowptr, col, seeds, fanouts, replace, out):
    """Assert every property of a sample that does not depend on the random draws."""
    node, src, dst, edge = out.node, out.src, out.dst, out.edge
    col = col.long()
    deg = rowptr.diff()
    assert node.dtype == src.dtype == dst.dtype == edge.dtype == torch.long
    assert len(out.num_sampled_nodes) == len(fanouts) + 1 and len(out.num_sampled_edges) == len(fanouts)
    assert sum(out.num_sampled_nodes) == node.numel() and sum(out.num_sampled_edges) == edge.numel()
    assert torch.equal(node[: seeds.numel()], seeds.long())  # seeds first, as given
    assert src.numel() == dst.numel() == edge.numel()
    # Every sampled edge is an adjacency entry of the node it was drawn for, pointing at node[src].
    if edge.numel():
        assert torch.equal(col[edge], node[src])
        target = node[dst]
        assert bool(((rowptr[target] <= edge) & (edge < rowptr[target + 1])).all())
    # Hop by hop: the edges of hop h are drawn for the frontier of hop h, in frontier order, by
    # ascending CSR position; the frontier of hop h + 1 is the nodes first reached in hop h.
    node_start, edge_start = 0, 0
    seen = {}
    for i, v in enumerate(seeds.tolist()):
        seen.setdefault(v, i)
    for hop, k in enumerate(fanouts):
        width = out.num_sampled_nodes[hop]
        count = out.num_sampled_edges[hop]
        hop_src, hop_dst, hop_edge = (t[edge_start:edge_start + count] for t in (src, dst, edge))
        assert bool((hop_dst >= node_start).all()) and bool((hop_dst < node_start + width).all())
        assert bool((hop_dst.diff() >= 0).all())
        frontier = node[node_start:node_start + width]
        per_entry = torch.bincount(hop_dst - node_start, minlength=width)
        d = deg[frontier]
        if k < 0:
            expected = d
        elif replace:
            expected = torch.where(d > 0, torch.full_like(d, k), torch.zeros_like(d))
        else:
            expected = torch.minimum(d, torch.full_like(d, k))
        assert torch.equal(per_entry, expected), (hop, per_entry, expected)
        keys = hop_dst * (col.numel() + 1) + hop_edge
        assert bool((keys.diff() >= 0).all())  # grouped by frontier entry, ascending position
        if not replace or k < 0:
            assert bool((keys.diff() > 0).all()), "an adjacency entry drawn twice without replacement"
        new = []
        for v in node[hop_src].tolist():
            if v not in seen:
                seen[v] = len(seen) + (seeds.numel() - len(set(seeds.tolist())))
                new.append(v)
        assert node[node_start + width:node_start + width + len(new)].tolist() == new
        assert out.num_sampled_nodes[hop + 1] == len(new)
        node_start += width
        edge_start += count
    # Local ids refer to the first entry of a node.
    first = {}
    for i, v in enumerate(node.tolist()):
        first.setdefault(v, i)
    assert all(first[v] == s for v, s in zip(node[src].tolist(), src.tolist()))


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_structure_on_random_graphs(op_backend, replace, dtype):
    for trial in range(6):
        rowptr, col = random_csr(60, 400, seed=trial, dtype=dtype)
        g = torch.Generator().manual_seed(100 + trial)
        seeds = torch.randperm(60, generator=g)[:7].to(dtype)
        fanouts = [[4, 3], [2, -1, 1], [0, 5], [10]][trial % 4]
        out = neighbor_sample(rowptr, col, seeds, fanouts, replace=replace, seed=trial)
        check_structure(rowptr, col, seeds, fanouts, replace, out)


def test_repeated_seeds_keep_their_entries(op_backend):
    rowptr, col = random_csr(20, 80, seed=3)
    seeds = torch.tensor([5, 5, 2, 5])
    out = neighbor_sample(rowptr, col, seeds, [3, 2], seed=0)
    check_structure(rowptr, col, seeds, [3, 2], False, out)


def test_all_neighbours_matches_breadth_first_oracle(op_backend):
    """``-1`` takes every entry: a deterministic sample, equal on both backends and to a python BFS."""
    rowptr, col = random_csr(40, 150, seed=7)
    seeds = torch.tensor([3, 17, 0])
    out = neighbor_sample(rowptr, col, seeds, [-1, -1], seed=123)
    node, local, src, dst, edge = seeds.tolist(), {}, [], [], []
    for i, v in enumerate(node):
        local.setdefault(v, i)
    begin, end = 0, len(node)
    for _ in range(2):
        for f in range(begin, end):
            for p in range(int(rowptr[node[f]]), int(rowptr[node[f] + 1])):
                u = int(col[p])
                if u not in local:
                    local[u] = len(node)
                    node.append(u)
                src.append(local[u]), dst.append(f), edge.append(p)
        begin, end = end, len(node)
    assert out.node.tolist() == node and out.src.tolist() == src
    assert out.dst.tolist() == dst and out.edge.tolist() == edge


def test_all_neighbours_with_replacement_takes_each_once(op_backend):
    rowptr, col = random_csr(30, 100, seed=1)
    seeds = torch.arange(5)
    a = neighbor_sample(rowptr, col, seeds, [-1], replace=True, seed=0)
    b = neighbor_sample(rowptr, col, seeds, [-1], replace=False, seed=9)
    assert torch.equal(a.edge, b.edge) and torch.equal(a.node, b.node)


def test_empty_seeds_and_isolated_nodes(op_backend):
    rowptr, col = random_csr(10, 30, seed=0)
    out = neighbor_sample(rowptr, col, torch.empty(0, dtype=torch.long), [5, 5], seed=0)
    assert out.node.numel() == 0 and out.edge.numel() == 0
    assert out.num_sampled_nodes == [0, 0, 0] and out.num_sampled_edges == [0, 0]
    # Nodes 3 and 4 have no neighbours; node 0 has one (3): the second hop reaches nothing new.
    rowptr = torch.tensor([0, 1, 1, 1, 1, 1])
    col = torch.tensor([3])
    for replace in (False, True):
        out = neighbor_sample(rowptr, col, torch.tensor([4, 0]), [2, 2], replace=replace, seed=0)
        assert out.node.tolist() == [4, 0, 3]
        assert out.num_sampled_nodes == [2, 1, 0]
        assert out.num_sampled_edges == [2 if replace else 1, 0]
        assert set(out.dst.tolist()) == {1}
    # An empty graph.
    out = neighbor_sample(torch.zeros(1, dtype=torch.long), torch.empty(0, dtype=torch.long),
                          torch.empty(0, dtype=torch.long), [3], seed=0)
    assert out.node.numel() == 0


def test_index_dtypes_agree(op_backend):
    rowptr, col = random_csr(50, 300, seed=4)
    seeds = torch.tensor([1, 7, 9])
    a = neighbor_sample(rowptr, col, seeds, [3, 2], seed=11)
    b = neighbor_sample(rowptr, col.int(), seeds.int(), [3, 2], seed=11)
    for x, y in zip(a, b):
        assert x == y if isinstance(x, list) else torch.equal(x, y)


def test_same_seed_same_sample(op_backend):
    rowptr, col = random_csr(200, 3000, seed=5)
    seeds = torch.arange(0, 200, 9)
    for replace in (False, True):
        a = neighbor_sample(rowptr, col, seeds, [5, 3], replace, generator=torch.Generator().manual_seed(1))
        b = neighbor_sample(rowptr, col, seeds, [5, 3], replace, generator=torch.Generator().manual_seed(1))
        c = neighbor_sample(rowptr, col, seeds, [5, 3], replace, generator=torch.Generator().manual_seed(2))
        assert torch.equal(a.edge, b.edge) and torch.equal(a.node, b.node)
        assert not torch.equal(a.edge, c.edge)


def test_kernel_sample_does_not_depend_on_threads():
    if not gnnlab.ops.extension_available():
        pytest.skip("gnnlab._C not built")
    rowptr, col = random_csr(5000, 60000, seed=6)
    seeds = torch.arange(0, 5000, 3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with gnnlab.ops.backend_scope("extension"):
            a = neighbor_sample(rowptr, col, seeds, [7, 4], seed=5)
        torch.set_num_threads(max(threads, 2))
        with gnnlab.ops.backend_scope("extension"):
            b = neighbor_sample(rowptr, col, seeds, [7, 4], seed=5)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a.edge, b.edge) and torch.equal(a.node, b.node)


def star_frequencies(k: int, replace: bool, leaves: int = 20, draws: int = 4000, seed: int = 0) -> torch.Tensor:
    """How often each leaf of a star is drawn by its centre over ``draws`` independent sample entries."""
    rowptr = torch.tensor([0, leaves] + [leaves] * leaves)
    col = torch.arange(1, leaves + 1)
    out = neighbor_sample(rowptr, col, torch.zeros(draws, dtype=torch.long), [k], replace, seed=seed)
    return torch.bincount(out.edge, minlength=leaves).double()


def chi_square(counts: torch.Tensor) -> float:
    expected = counts.sum() / counts.numel()
    return float(((counts - expected) ** 2 / expected).sum())


# chi-square with 19 degrees of freedom: mean 19, sd 6.2; P(X > 70) < 1e-7.
CHI2_BOUND = 70.0


@pytest.mark.parametrize("k,replace", [(1, False), (5, False), (15, False), (5, True)])
def test_draws_are_uniform_over_neighbours(op_backend, k, replace):
    counts = star_frequencies(k, replace)
    assert counts.sum() == 4000 * k
    assert chi_square(counts) < CHI2_BOUND, counts


def test_subsets_are_uniform_not_only_marginals(op_backend):
    """k = 2 of 4 neighbours: each of the 6 pairs equally likely (Floyd / partial shuffle, not marginals only)."""
    draws = 6000
    rowptr = torch.tensor([0, 4] + [4] * 4)
    col = torch.arange(1, 5)
    out = neighbor_sample(rowptr, col, torch.zeros(draws, dtype=torch.long), [2], seed=3)
    pairs = out.edge.view(draws, 2)
    code = torch.bincount(pairs[:, 0] * 4 + pairs[:, 1], minlength=16)
    counts = code[[1, 2, 3, 6, 7, 11]].double()  # the 6 ordered pairs a < b
    assert counts.sum() == draws
    assert chi_square(counts) < 40.0, counts  # 5 dof: P(X > 40) < 1e-6


def test_sparse_choice_is_uniform(op_backend):
    """k much smaller than the degree (the kernel's Floyd branch): still uniform."""
    counts = star_frequencies(3, False, leaves=200, draws=20000, seed=4)
    expected = counts.sum() / 200
    stat = float(((counts - expected) ** 2 / expected).sum())
    assert stat < 300.0  # 199 dof: mean 199, sd 20
    assert counts.sum() == 60000


def test_backends_agree_in_distribution():
    if not gnnlab.ops.extension_available():
        pytest.skip("gnnlab._C not built")
    rowptr, col = random_csr(30, 400, seed=8)
    seeds = torch.arange(30).repeat(200)
    counts = {}
    for name in ("torch", "extension"):
        with gnnlab.ops.backend_scope(name):
            out = neighbor_sample(rowptr, col, seeds, [3], seed=1)
        counts[name] = torch.bincount(out.edge, minlength=col.numel()).double()
    a, b = counts["torch"], counts["extension"]
    assert a.sum() == b.sum()
    # Two-sample chi-square over the adjacency entries: each node draws 3 of its entries 200 times.
    live = (a + b) > 0
    stat = float(((a - b)[live] ** 2 / (a + b)[live]).sum())
    dof = int(live.sum()) - 1
    assert stat < dof + 8 * (2 * dof) ** 0.5, (stat, dof)


BAD_INPUTS = {
    "seed out of range": ("torch.tensor([0, 1, 2])", "torch.tensor([1, 0])", "torch.tensor([2])", "[1]", r"seeds has entry 2 out of range"),
    "negative seed": ("torch.tensor([0, 1, 2])", "torch.tensor([1, 0])", "torch.tensor([-1])", "[1]", r"seeds has a negative entry"),
    "col out of range": ("torch.tensor([0, 1, 2])", "torch.tensor([1, 5])", "torch.tensor([0])", "[1]", r"col has entry 5 out of range"),
    "rowptr not monotone": ("torch.tensor([0, 2, 1, 2])", "torch.tensor([1, 0])", "torch.tensor([0])", "[1]", r"rowptr must be non-decreasing"),
    "rowptr end": ("torch.tensor([0, 1, 3])", "torch.tensor([1, 0])", "torch.tensor([0])", "[1]", r"rowptr must start at 0 and end at"),
    "rowptr dtype": ("torch.tensor([0, 1, 2], dtype=torch.int32)", "torch.tensor([1, 0])", "torch.tensor([0])", "[1]", r"rowptr must be int64"),
    "float seeds": ("torch.tensor([0, 1, 2])", "torch.tensor([1, 0])", "torch.tensor([0.0])", "[1]", r"seeds must be int32 or int64"),
    "fan-out below -1": ("torch.tensor([0, 1, 2])", "torch.tensor([1, 0])", "torch.tensor([0])", "[2, -2]", r"num_neighbors\[1\] must be -1"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_raises_on_reference(name):
    rowptr, col, seeds, fanouts, match = (eval(v) if i < 4 else v for i, v in enumerate(BAD_INPUTS[name]))
    with gnnlab.ops.backend_scope("torch"), pytest.raises(ValueError, match=match):
        neighbor_sample(rowptr, col, seeds, fanouts, seed=0)


def test_non_integer_fanout_is_a_type_error(op_backend):
    with pytest.raises(TypeError, match="num_neighbors"):
        neighbor_sample(torch.tensor([0, 1, 2]), torch.tensor([1, 0]), torch.tensor([0]), [1.5], seed=0)


_CHILD = """
import json, sys, torch, gnnlab.ops
results = {}
for name, (rowptr, col, seeds, fanouts, _) in json.loads(sys.stdin.read()).items():
    try:
        # Straight into the kernel: its own checks, not the Python ones.
        torch.ops.gnnlab.neighbor_sample(eval(rowptr), eval(col), eval(seeds), eval(fanouts), False, 0)
        results[name] = None
    except Exception as err:
        results[name] = [type(err).__name__, str(err).splitlines()[0]]
    print("DONE", name, flush=True)
print("RESULTS", json.dumps(results))
"""


def test_bad_input_raises_in_kernel():
    """The kernel's checks (in a child process, so that a crash fails this test instead of killing pytest)."""
    if not gnnlab.ops.extension_available():
        pytest.skip("gnnlab._C not built")
    import re

    env = dict(os.environ)
    root = str(Path(gnnlab.ops.__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(BAD_INPUTS), capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"child died ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    results = json.loads(proc.stdout.split("RESULTS", 1)[1])
    for name, (*_, match) in BAD_INPUTS.items():
        if name == "float seeds":
            match = r"seeds must be int32 or int64"
        got = results[name]
        assert got is not None, f"{name}: accepted"
        assert got[0] == "ValueError", f"{name}: {got}"
        assert re.search(match, got[1]), f"{name}: {got[1]!r} does not match {match!r}"


def test_unchecked_graph_gives_the_same_sample_and_still_checks_seeds(op_backend):
    rowptr, col = random_csr(80, 500, seed=12)
    seeds = torch.tensor([4, 9, 33])
    a = neighbor_sample(rowptr, col, seeds, [4, 2], seed=3)
    b = neighbor_sample(rowptr, col, seeds, [4, 2], seed=3, check_graph=False)
    assert torch.equal(a.node, b.node) and torch.equal(a.edge, b.edge)
    with pytest.raises(ValueError, match="seeds has entry 80 out of range"):
        neighbor_sample(rowptr, col, torch.tensor([80]), [1], seed=0, check_graph=False)
    with pytest.raises(ValueError, match="rowptr must start at 0 and end at"):
        neighbor_sample(rowptr[:-1], col, seeds, [1], seed=0, check_graph=False)
    # The full check reads the values: a bad entry of col is found only with it.
    bad = col.clone()
    bad[7] = 80
    with pytest.raises(ValueError, match="col has entry 80 out of range"):
        neighbor_sample(rowptr, bad, seeds, [1], seed=0)


def test_opcheck():
    if not gnnlab.ops.extension_available():
        pytest.skip("gnnlab._C not built")
    rowptr, col = random_csr(30, 120, seed=2)
    for args in [(rowptr, col, torch.tensor([1, 5, 7]), [3, 2], False, 4),
                 (rowptr, col.int(), torch.tensor([0, 2]), [-1], True, 1, False)]:
        torch.library.opcheck(torch.ops.gnnlab.neighbor_sample.default, args,
                              test_utils=("test_schema", "test_faketensor"))
