"""coo_to_csr against its plain-torch specification, on both backends."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gnnlab.ops
from gnnlab.ops import _reference


def _naive_csr(edge_index: torch.Tensor, num_nodes: int):
    """Independent oracle: python loops over rows."""
    rows = edge_index[0].tolist()
    cols = edge_index[1].tolist()
    rowptr = [0]
    col, perm = [], []
    for r in range(num_nodes):
        for e, (er, ec) in enumerate(zip(rows, cols)):
            if er == r:
                col.append(ec)
                perm.append(e)
        rowptr.append(len(col))
    return rowptr, col, perm


@settings(max_examples=60, deadline=None)
@given(
    num_nodes=st.integers(0, 40),
    num_edges=st.integers(0, 120),
    dtype=st.sampled_from([torch.int32, torch.int64]),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_naive_oracle(num_nodes, num_edges, dtype, seed):
    if num_nodes == 0:
        num_edges = 0
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=g, dtype=torch.long).to(dtype)
    expected = _naive_csr(edge_index, num_nodes)
    for name in ["torch"] + (["extension"] if gnnlab.ops.extension_available() else []):
        with gnnlab.ops.backend_scope(name):
            rowptr, col, perm = gnnlab.ops.coo_to_csr(edge_index, num_nodes)
        assert rowptr.dtype == torch.long and perm.dtype == torch.long and col.dtype == dtype, name
        assert rowptr.tolist() == expected[0], name
        assert col.tolist() == expected[1], name
        assert perm.tolist() == expected[2], name


def test_noncontiguous_input(op_backend):
    base = torch.randint(0, 10, (60, 2))
    edge_index = base.t()  # a transposed view, not contiguous
    assert not edge_index.is_contiguous()
    rowptr, col, perm = gnnlab.ops.coo_to_csr(edge_index, 10)
    ref = _reference.coo_to_csr(edge_index.contiguous(), 10)
    for a, b in zip((rowptr, col, perm), ref):
        assert torch.equal(a, b)


def test_isolated_nodes_and_self_loops(op_backend):
    edge_index = torch.tensor([[3, 3, 0, 3], [3, 1, 0, 3]])
    rowptr, col, perm = gnnlab.ops.coo_to_csr(edge_index, 6)
    assert rowptr.tolist() == [0, 1, 1, 1, 4, 4, 4]
    assert col.tolist() == [0, 3, 1, 3]
    assert perm.tolist() == [2, 0, 1, 3]


@pytest.mark.parametrize(
    "edge_index, num_nodes, match",
    [
        (torch.tensor([[0, -1], [1, 1]]), 3, "negative|out of range"),
        (torch.tensor([[0, 1], [1, 3]]), 3, "out of range"),
        (torch.tensor([[0, 1, 2]]), 3, r"shape \[2, num_edges\]"),
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 3, "int32 or int64"),
        (torch.tensor([[0, 1], [1, 0]]), -1, "non-negative"),
    ],
)
def test_bad_input_raises_value_error(op_backend, edge_index, num_nodes, match):
    with pytest.raises(ValueError, match=match):
        gnnlab.ops.coo_to_csr(edge_index, num_nodes)


@pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")
def test_opcheck():
    edge_index = torch.randint(0, 20, (2, 50))
    torch.library.opcheck(torch.ops.gnnlab.coo_to_csr.default, (edge_index, 20))
    torch.library.opcheck(torch.ops.gnnlab.coo_to_csr.default, (edge_index.int(), 20))


def test_compiles_without_graph_break(op_backend):
    def f(edge_index):
        rowptr, col, perm = gnnlab.ops.coo_to_csr(edge_index, 30)
        return rowptr.diff().float().mean() + col.sum()

    edge_index = torch.randint(0, 30, (2, 100))
    explanation = torch._dynamo.explain(f)(edge_index)
    if op_backend == "extension":
        assert explanation.graph_break_count == 0, explanation.break_reasons
    torch._dynamo.reset()


def test_backend_probe_without_extension():
    """Importing with the extension missing warns and falls back to the torch path."""
    code = (
        "import sys, warnings\n"
        "sys.modules['gnnlab._C'] = None  # makes `import gnnlab._C` fail as if it were not built\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import gnnlab\n"
        "print(gnnlab.ops.backend())\n"
        "print(any('plain-torch' in str(x.message) for x in w))\n"
    )
    # The child must try the import: GNNLAB_DISABLE_EXTENSION=1 would skip it (and its warning).
    env = {k: v for k, v in os.environ.items() if k != "GNNLAB_DISABLE_EXTENSION"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["torch", "True"]


def test_disable_extension_env_var():
    code = "import gnnlab; print(gnnlab.ops.backend())"
    env = dict(os.environ, GNNLAB_DISABLE_EXTENSION="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch"
