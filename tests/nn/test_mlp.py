"""The shared blocks (norm_layer, mlp, feed_forward, FeedForward, reset) and the checkpoint keys of layers."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from gnnlab.nn import NORMS, FeedForward, feed_forward, norm_layer
from gnnlab.nn.conv import GINConv, GINEConv
from gnnlab.nn.layers import ConvLayer, GPSLayer, GraphTransformerLayer
from gnnlab.nn.mixer import MultiheadAttentionMixer
from gnnlab.nn.mlp import mlp, reset


@pytest.mark.parametrize("kind, cls", [("batch", torch.nn.BatchNorm1d), ("layer", torch.nn.LayerNorm),
                                       ("none", torch.nn.Identity), (None, torch.nn.Identity)])
def test_norm_layer_kinds(kind, cls):
    norm = norm_layer(kind, 6)
    assert type(norm) is cls
    x = torch.randn(5, 6)
    assert norm(x).shape == (5, 6)
    if cls is torch.nn.BatchNorm1d:
        assert norm.num_features == 6
    if cls is torch.nn.LayerNorm:
        assert norm.normalized_shape == (6,)
    assert set(NORMS) == {"batch", "layer", "none"}


@pytest.mark.parametrize("kind", ["group", "Batch", "", 1])
def test_norm_layer_bad_kind_names_the_accepted_ones(kind):
    with pytest.raises(ValueError, match="norm must be one of batch, layer, none"):
        norm_layer(kind, 4)


@pytest.mark.parametrize("norm, kinds", [
    (None, [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]),
    ("none", [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]),
    ("batch", [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.ReLU, torch.nn.Linear, torch.nn.BatchNorm1d,
               torch.nn.ReLU, torch.nn.Linear]),
    ("layer", [torch.nn.Linear, torch.nn.LayerNorm, torch.nn.ReLU, torch.nn.Linear, torch.nn.LayerNorm,
               torch.nn.ReLU, torch.nn.Linear]),
])
def test_mlp_layout_and_shapes(norm, kinds):
    net = mlp([4, 8, 6, 3], norm=norm)
    assert [type(m) for m in net] == kinds
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(4, 8), (8, 6), (6, 3)]
    assert net(torch.randn(7, 4)).shape == (7, 3)


def test_mlp_two_widths_is_one_linear_map_and_act_is_a_factory():
    net = mlp([5, 2], norm="batch")
    assert len(net) == 1 and isinstance(net[0], torch.nn.Linear)
    net = mlp([3, 4, 2], act=torch.nn.Tanh)
    assert [type(m) for m in net] == [torch.nn.Linear, torch.nn.Tanh, torch.nn.Linear]
    x = torch.randn(6, 3)
    assert_close(net(x), net[2](torch.tanh(net[0](x))))


def test_mlp_bad_arguments():
    with pytest.raises(ValueError, match="input and an output width"):
        mlp([4])
    with pytest.raises(ValueError, match="norm must be one of batch, layer, none"):
        mlp([4, 2], norm="group")  # checked even without hidden layers


def test_mlp_dropout_in_training_only():
    torch.manual_seed(0)
    net = mlp([6, 32, 32, 2], dropout=0.5)
    assert [type(m) for m in net] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Dropout] * 2 + [torch.nn.Linear]
    x = torch.randn(10, 6)
    net.eval()
    expected = net[6](torch.relu(net[3](torch.relu(net[0](x)))))
    assert_close(net(x), expected)
    assert_close(net(x), net(x))  # deterministic in evaluation
    net.train()
    assert not torch.allclose(net(x), expected)


def test_feed_forward_block():
    torch.manual_seed(1)
    block = FeedForward(8, ratio=3, dropout=0.4)
    assert (block.lin1.in_features, block.lin1.out_features) == (8, 24)
    assert (block.lin2.in_features, block.lin2.out_features) == (24, 8)
    assert list(block.state_dict()) == ["lin1.weight", "lin1.bias", "lin2.weight", "lin2.bias"]
    x = torch.randn(5, 8)
    block.eval()
    expected = block.lin2(torch.relu(block.lin1(x)))
    assert_close(block(x), expected)
    assert_close(feed_forward(x, block.lin1, block.lin2, 0.4, training=False), expected)
    block.train()
    torch.manual_seed(2)
    out = block(x)
    torch.manual_seed(2)  # the same two dropout masks, drawn in the same order
    inner = torch.nn.functional.dropout(torch.relu(block.lin1(x)), 0.4, training=True)
    assert_close(out, torch.nn.functional.dropout(block.lin2(inner), 0.4, training=True))


def test_feed_forward_without_output_dropout():
    torch.manual_seed(3)
    block = FeedForward(4, dropout=0.5, out_dropout=False).train()
    x = torch.randn(6, 4)
    torch.manual_seed(4)
    out = block(x)
    torch.manual_seed(4)
    assert_close(out, block.lin2(torch.nn.functional.dropout(torch.relu(block.lin1(x)), 0.5, training=True)))


def test_reset_skips_none_and_parameter_free_modules():
    torch.manual_seed(5)
    lin, norm = torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3)
    before = lin.weight.detach().clone()
    with torch.no_grad():
        norm.weight.fill_(2.0)
    reset(None, lin, torch.nn.ReLU(), torch.nn.Identity(), norm)
    assert not torch.equal(lin.weight, before)
    assert torch.equal(norm.weight, torch.ones(3))
    block = FeedForward(3)
    old = block.lin2.weight.detach().clone()
    block.reset_parameters()
    assert not torch.equal(block.lin2.weight, old)


def test_layers_keep_their_checkpoint_keys():
    """Layers built from these blocks store their parameters under the names their checkpoints use."""
    gps = GPSLayer(8, mixer=MultiheadAttentionMixer(8, 2), norm="batch")
    assert {"ffn1.weight", "ffn2.bias", "norm_out.running_mean", "norm_mixer.weight"} <= set(gps.state_dict())
    gt = GraphTransformerLayer(8, 8, num_heads=2, layer_norm=True)
    assert {"ffn_h.lin1.weight", "ffn_e.lin2.bias", "norm1_h.layer_norm.weight",
            "norm2_e.batch_norm.running_var"} <= set(gt.state_dict())
    assert GraphTransformerLayer(8, 8, num_heads=2, batch_norm=False).norm1_h.batch_norm is None
    assert [k for k in GINConv(4, 6).state_dict() if k.endswith("weight")] == [
        "conv.nn.0.weight", "conv.nn.1.weight", "conv.nn.3.weight"]
    assert [k for k in GINEConv(4, 6, mlp_batch_norm=False).state_dict() if k.endswith("weight")] == [
        "conv.nn.0.weight", "conv.nn.2.weight"]
    assert [k for k in ConvLayer(4, 4, GINConv).state_dict() if k.startswith("norm.")][:2] == ["norm.weight", "norm.bias"]
    assert not any(k.startswith("norm.") for k in ConvLayer(4, 4, GINConv, batch_norm=False).state_dict())
