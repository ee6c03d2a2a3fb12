"""The op path is chosen per block (a torch function mode), never by module state."""
import threading

import pytest
import torch

import gnnlab
from gnnlab.ops import Graph, aggregate

needs_extension = pytest.mark.skipif(not gnnlab.ops.extension_available(), reason="gnnlab._C not built")


def test_unknown_name_rejected():
    with pytest.raises(ValueError, match="unknown gnnlab.ops backend"):
        with gnnlab.ops.backend_scope("cuda-magic"):
            pass


@needs_extension
def test_scopes_nest_and_restore():
    assert gnnlab.ops.backend() == "extension"
    with gnnlab.ops.backend_scope("torch"):
        assert gnnlab.ops.backend() == "torch"
        with gnnlab.ops.backend_scope("extension"):
            assert gnnlab.ops.backend() == "extension"
        assert gnnlab.ops.backend() == "torch"
    assert gnnlab.ops.backend() == "extension"
    with pytest.raises(KeyError), gnnlab.ops.backend_scope("torch"):
        raise KeyError("leaves the scope")
    assert gnnlab.ops.backend() == "extension"


@needs_extension
def test_scope_is_per_thread():
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def other():
        inside.wait()
        seen["other"] = gnnlab.ops.backend()
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with gnnlab.ops.backend_scope("torch"):
        inside.set()
        done.wait(timeout=30)
        seen["this"] = gnnlab.ops.backend()
    thread.join()
    assert seen == {"this": "torch", "other": "extension"}


@needs_extension
def test_compiled_function_follows_the_scope():
    """Compiled code recompiles inside another scope (fullgraph holds) and traces that path's ops."""
    torch.manual_seed(0)
    x = torch.randn(6, 3)
    graph = Graph.from_edge_index(torch.tensor([[0, 1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 0, 3]]), num_nodes=6)
    traced = []

    def record(gm, example_inputs):
        traced.append(any("gnnlab" in str(node.target) for node in gm.graph.nodes))
        return gm.forward

    def f(x):
        return aggregate(x, graph, reduce="sum")

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend=record)
    expected = f(x)
    out_ext = compiled(x)
    with gnnlab.ops.backend_scope("torch"):
        reference = f(x)
        out_torch = compiled(x)
    again = compiled(x)
    assert traced == [True, False]  # one trace per path; the first is reused after the scope
    torch.testing.assert_close(out_ext, expected)
    torch.testing.assert_close(out_torch, reference)
    torch.testing.assert_close(again, expected)
