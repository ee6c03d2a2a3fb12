"""Every public op and every registered ``torch.ops.gnnlab`` op rejects malformed input with a Python exception.

A bad index handed to a kernel can crash the interpreter instead of raising, so each call runs in a
child process: a short runner executes a batch of cases, reports each one as it finishes, and is
restarted after the case that killed it. A test fails when its case crashed the child, returned
without raising, or raised an exception of another type or with a message that does not name the
argument at fault.

Cases marked ``both`` run through the public function with the plain-torch backend and with the
extension; ``ext`` cases call the raw ``torch.ops.gnnlab`` op (extension only); ``ref`` cases call
the plain-torch reference of a raw op; ``py`` cases exercise Python-only classes and checks.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gnnlab.ops

# Valid inputs shared by the cases; each case perturbs one argument.
PRELUDE = r"""
import torch
import gnnlab.ops as ops
from gnnlab.ops import _reference, PairSets, Graph

L = lambda *v: torch.tensor(v, dtype=torch.long)
I = lambda *v: torch.tensor(v, dtype=torch.int32)

# Aggregation graph: 4 sources, 3 targets (rows), 5 edges; row 2 has no edge.
G = Graph.from_edge_index(torch.tensor([[1, 2, 0, 3, 2], [0, 0, 1, 1, 1]]), 4, 3)
X = torch.randn(4, 2)
ARG = I([0, 1], [2, 0], [-1, -1])  # winning slot per row and feature; -1 for the empty row


def agg(**kw):
    a = dict(rowptr=G.rowptr, col=G.col, rowptr_t=G.rowptr_t, col_t=G.col_t, perm_t=G.perm_t, x=X,
             weight=torch.rand(5), reduce="max")
    a.update(kw)
    return tuple(a[k] for k in ("rowptr", "col", "rowptr_t", "col_t", "perm_t", "x", "weight", "reduce"))


def wb(**kw):
    a = dict(rowptr=G.rowptr, col=G.col, x=X, grad_out=torch.ones(3, 2), arg=ARG, reduce="max")
    a.update(kw)
    return tuple(a[k] for k in ("rowptr", "col", "x", "grad_out", "arg", "reduce"))


def xb(**kw):
    a = dict(rowptr=G.rowptr, col=G.col, rowptr_t=G.rowptr_t, col_t=G.col_t, perm_t=G.perm_t, arg=ARG,
             grad_out=torch.ones(3, 2), weight=torch.rand(5), num_src=4)
    a.update(kw)
    return tuple(a[k] for k in ("rowptr", "col", "rowptr_t", "col_t", "perm_t", "arg", "grad_out", "weight", "num_src"))


def gated(**kw):
    ids_t = G.perm.index_select(0, G.perm_t)
    a = dict(rowptr=G.rowptr, col=G.col, edge_id=G.perm, rowptr_t=G.rowptr_t, edge_id_t=ids_t,
             edge_in=torch.randn(5, 2), x_dst=torch.randn(3, 2), x_src=X, values=torch.randn(4, 2))
    a.update(kw)
    return tuple(a[k] for k in ("rowptr", "col", "edge_id", "rowptr_t", "edge_id_t", "edge_in", "x_dst", "x_src",
                                "values"))


def gated_bwd(**kw):
    fwd = dict(zip(("rowptr", "col", "edge_id", "rowptr_t", "edge_id_t"), gated()[:5]))
    a = dict(fwd, e_hat=torch.randn(5, 2), values=torch.randn(4, 2), g_e=torch.ones(5, 2), g_num=torch.ones(3, 2),
             g_den=torch.ones(3, 2), need_edge=True, need_values=True)
    a.update(kw)
    return tuple(a[k] for k in ("rowptr", "col", "edge_id", "rowptr_t", "edge_id_t", "e_hat", "values", "g_e", "g_num",
                                "g_den", "need_edge", "need_values"))


# Common-neighbour graph: the path 0-1-2-3-4 (undirected) plus isolated node 5; 8 edges.
ADJ = Graph.undirected(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]), 6)


def cn(**kw):
    a = dict(rowptr=ADJ.rowptr, col=ADJ.col, src=L(0, 1), dst=L(2, 3), node_weight=torch.rand(6),
             edge_mask=None, mode=0)
    a.update(kw)
    return tuple(a[k] for k in ("rowptr", "col", "src", "dst", "node_weight", "edge_mask", "mode"))


def cn_sets(**kw):
    args = cn(**kw)
    return args[:4] + args[5:]


# Selective scan: batch 2, 4 channels, N = 3, L = 5, per-step B and C as [batch, 1, N, L].
SS = dict(u=torch.randn(2, 4, 5), delta=torch.rand(2, 4, 5), A=-torch.rand(4, 3), B=torch.randn(2, 1, 3, 5),
          C=torch.randn(2, 1, 3, 5), D=torch.randn(4), z=torch.randn(2, 4, 5), delta_bias=torch.randn(4),
          delta_softplus=True, reset=None, chunk=2)
SS_KEYS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus", "reset", "chunk")


def ssf(**kw):
    a = dict(SS)
    a.update(kw)
    return tuple(a[k] for k in SS_KEYS)


def ssb(**kw):
    a = dict(SS, checkpoints=torch.zeros(2, 4, 3, 3), grad_out=torch.ones(2, 4, 5))
    a.update(kw)
    return tuple(a[k] for k in SS_KEYS + ("checkpoints", "grad_out"))


def col_with(value, pos=-1):
    c = ADJ.col.clone()
    c[pos] = value
    return c
"""

# The child: runs the cases given on stdin, printing START before and RESULT after each one.
RUNNER = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
batch = json.loads(sys.stdin.read())
namespace = {}
exec(batch["prelude"], namespace)
ops = namespace["ops"]
for case in batch["cases"]:
    print("START " + case["id"], flush=True)
    scope = dict(namespace)
    try:
        if case["backend"] is None:
            exec(case["code"], scope)
        else:
            with ops.backend_scope(case["backend"]):
                exec(case["code"], scope)
        result = {"raised": None}
    except Exception as err:
        result = {"raised": type(err).__name__, "mro": [c.__name__ for c in type(err).__mro__],
                  "message": str(err)[:3000]}
    print("RESULT " + json.dumps(result), flush=True)
"""

V, IDX = "ValueError", "IndexError"

# (name, kind, code, expected exception, regex the message must match)
AGGREGATE = [
    # forward CSR
    ("col_out_of_x", "both", "ops.aggregate_csr(*agg(col=L(1, 2, 0, 3, 4)))", V, r"\bcol\b.*out of range"),
    ("col_huge", "both", "ops.aggregate_csr(*agg(col=L(1, 2, 0, 3, 2**40)))", V, r"\bcol\b.*out of range"),
    ("col_negative", "both", "ops.aggregate_csr(*agg(col=I(1, 2, 0, 3, -2)))", V, r"\bcol\b.*negative"),
    ("col_float", "both", "ops.aggregate_csr(*agg(col=torch.zeros(5)))", V, r"\bcol\b"),
    ("rowptr_not_ending_at_E", "both", "ops.aggregate_csr(*agg(rowptr=L(0, 2, 5, 6)))", V, r"\browptr\b"),
    ("rowptr_decreasing", "both", "ops.aggregate_csr(*agg(rowptr=L(0, 3, 2, 5)))", V, r"\browptr\b.*non-decreasing"),
    ("rowptr_int32", "both", "ops.aggregate_csr(*agg(rowptr=I(0, 2, 5, 5)))", V, r"\browptr\b.*int64"),
    ("rowptr_2d", "both", "ops.aggregate_csr(*agg(rowptr=L(0, 2, 5, 5).view(2, 2)))", V, r"\browptr\b"),
    ("x_1d", "both", "ops.aggregate_csr(*agg(x=torch.randn(4)))", V, r"\bx\b"),
    ("x_integer", "both", "ops.aggregate_csr(*agg(x=torch.ones(4, 2, dtype=torch.long), weight=None))", V, r"\bx\b"),
    ("x_complex", "both", "ops.aggregate_csr(*agg(x=torch.ones(4, 2, dtype=torch.cfloat), weight=None))", V, r"\bx\b"),
    ("weight_short", "both", "ops.aggregate_csr(*agg(weight=torch.rand(4)))", V, r"\bweight\b"),
    ("weight_2d", "both", "ops.aggregate_csr(*agg(weight=torch.rand(5, 1)))", V, r"\bweight\b"),
    ("weight_dtype", "both", "ops.aggregate_csr(*agg(weight=torch.rand(5, dtype=torch.float64)))", V, r"\bweight\b"),
    ("reduce_unknown", "both", "ops.aggregate_csr(*agg(reduce='median'))", V, r"\breduce\b"),
    # transposed CSR
    ("rowptr_t_short", "both", "ops.aggregate_csr(*agg(rowptr_t=L(0, 1, 2, 5)))", V, r"\browptr_t\b"),
    ("rowptr_t_not_ending_at_E", "both", "ops.aggregate_csr(*agg(rowptr_t=L(0, 1, 2, 4, 9)))", V, r"\browptr_t\b"),
    ("rowptr_t_decreasing", "both", "ops.aggregate_csr(*agg(rowptr_t=L(0, 3, 2, 4, 5)))", V, r"\browptr_t\b"),
    ("rowptr_t_int32", "both", "ops.aggregate_csr(*agg(rowptr_t=I(0, 1, 2, 4, 5)))", V, r"\browptr_t\b"),
    ("col_t_out_of_rows", "both", "ops.aggregate_csr(*agg(col_t=L(1, 0, 0, 1, 3)))", V, r"\bcol_t\b"),
    ("col_t_huge", "both", "ops.aggregate_csr(*agg(col_t=L(1, 0, 0, 1, 2**40)))", V, r"\bcol_t\b"),
    ("col_t_negative", "both", "ops.aggregate_csr(*agg(col_t=L(1, 0, -1, 1, 1)))", V, r"\bcol_t\b"),
    ("col_t_short", "both", "ops.aggregate_csr(*agg(col_t=L(1, 0, 0, 1)))", V, r"\bcol_t\b"),
    ("col_t_float", "both", "ops.aggregate_csr(*agg(col_t=torch.zeros(5)))", V, r"\bcol_t\b"),
    ("perm_t_out_of_E", "both", "ops.aggregate_csr(*agg(perm_t=L(2, 0, 1, 3, 5)))", V, r"\bperm_t\b"),
    ("perm_t_huge", "both", "ops.aggregate_csr(*agg(perm_t=L(2, 0, 1, 3, 2**40)))", V, r"\bperm_t\b"),
    ("perm_t_negative", "both", "ops.aggregate_csr(*agg(perm_t=L(2, 0, 1, -3, 4)))", V, r"\bperm_t\b"),
    ("perm_t_short", "both", "ops.aggregate_csr(*agg(perm_t=L(2, 0, 1, 3)))", V, r"\bperm_t\b"),
    ("perm_t_int32", "both", "ops.aggregate_csr(*agg(perm_t=I(2, 0, 1, 3, 4)))", V, r"\bperm_t\b"),
    # the transposed CSR only feeds the backward: a bad one must be refused before it gets there
    ("max_backward_perm_t_out_of_E", "both",
     "x = X.clone().requires_grad_()\n"
     "out, _ = ops.aggregate_csr(*agg(x=x, perm_t=L(2, 0, 1, 3, 1 << 30)))\n"
     "out.sum().backward()", V, r"\bperm_t\b"),
    ("sum_backward_col_t_out_of_rows", "both",
     "x = X.clone().requires_grad_()\n"
     "out, _ = ops.aggregate_csr(*agg(x=x, reduce='sum', col_t=L(1, 0, 0, 1, 1 << 30)))\n"
     "out.sum().backward()", V, r"\bcol_t\b"),
]

WEIGHT_BACKWARD = [
    ("col_out_of_x", "torch.ops.gnnlab.aggregate_weight_backward(*wb(col=L(1, 2, 0, 3, 1 << 30)))", r"\bcol\b"),
    ("col_negative", "torch.ops.gnnlab.aggregate_weight_backward(*wb(col=L(1, 2, 0, 3, -1)))", r"\bcol\b"),
    ("rowptr_not_ending_at_E", "torch.ops.gnnlab.aggregate_weight_backward(*wb(rowptr=L(0, 2, 5, 9)))", r"\browptr\b"),
    ("rowptr_decreasing", "torch.ops.gnnlab.aggregate_weight_backward(*wb(rowptr=L(0, 6, 2, 5)))", r"\browptr\b"),
    ("rowptr_int32", "torch.ops.gnnlab.aggregate_weight_backward(*wb(rowptr=I(0, 2, 5, 5)))", r"\browptr\b"),
    ("x_1d", "torch.ops.gnnlab.aggregate_weight_backward(*wb(x=torch.randn(4)))", r"\bx\b"),
    ("grad_out_rows", "torch.ops.gnnlab.aggregate_weight_backward(*wb(grad_out=torch.ones(2, 2), arg=ARG[:2]))", r"\bgrad_out\b"),
    ("grad_out_features", "torch.ops.gnnlab.aggregate_weight_backward(*wb(grad_out=torch.ones(3, 5), arg=ARG.new_zeros(3, 5)))", r"\bgrad_out\b"),
    ("grad_out_1d", "torch.ops.gnnlab.aggregate_weight_backward(*wb(grad_out=torch.ones(6), reduce='sum', arg=I()))", r"\bgrad_out\b"),
    ("grad_out_dtype", "torch.ops.gnnlab.aggregate_weight_backward(*wb(grad_out=torch.ones(3, 2, dtype=torch.float64)))", r"\bgrad_out\b"),
    ("arg_missing_for_max", "torch.ops.gnnlab.aggregate_weight_backward(*wb(arg=I()))", r"\barg\b"),
    ("arg_shape", "torch.ops.gnnlab.aggregate_weight_backward(*wb(arg=ARG[:, :1]))", r"\barg\b"),
    ("arg_int64", "torch.ops.gnnlab.aggregate_weight_backward(*wb(arg=ARG.long()))", r"\barg\b"),
    ("arg_slot_past_degree", "torch.ops.gnnlab.aggregate_weight_backward(*wb(arg=I([0, 2], [2, 0], [-1, -1])))", r"\barg\b"),
    ("arg_below_minus_one", "torch.ops.gnnlab.aggregate_weight_backward(*wb(arg=I([0, -5], [2, 0], [-1, -1])))", r"\barg\b"),
    ("arg_minus_one_in_nonempty_row", "torch.ops.gnnlab.aggregate_weight_backward(*wb(arg=I([0, 1], [-1, 0], [-1, -1])))", r"\barg\b"),
    ("arg_slot_in_empty_row", "torch.ops.gnnlab.aggregate_weight_backward(*wb(arg=I([0, 1], [2, 0], [0, -1])))", r"\barg\b"),
    ("arg_given_for_sum", "torch.ops.gnnlab.aggregate_weight_backward(*wb(reduce='sum'))", r"\barg\b"),
    ("reduce_unknown", "torch.ops.gnnlab.aggregate_weight_backward(*wb(reduce='median'))", r"\breduce\b"),
]

EXTREMUM_X_BACKWARD = [
    ("col_out_of_sources", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(col=L(1, 2, 0, 3, 1 << 30)))", r"\bcol\b"),
    ("col_negative", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(col=L(1, 2, 0, 3, -1)))", r"\bcol\b"),
    ("col_short", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(col=L(1, 2, 0, 3)))", r"\bcol\b"),
    ("col_dtype_differs_from_col_t", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(col=G.col.int()))", r"\bcol\b"),
    ("perm_t_out_of_E", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(perm_t=L(2, 0, 1, 3, 1 << 30)))", r"\bperm_t\b"),
    ("perm_t_negative", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(perm_t=L(2, 0, 1, -1, 4)))", r"\bperm_t\b"),
    ("perm_t_short", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(perm_t=L(2, 0, 1, 3)))", r"\bperm_t\b"),
    ("perm_t_int32", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(perm_t=I(2, 0, 1, 3, 4)))", r"\bperm_t\b"),
    ("col_t_out_of_rows", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(col_t=L(1, 0, 0, 1, 1 << 30)))", r"\bcol_t\b"),
    ("col_t_negative", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(col_t=L(1, 0, 0, -1, 1)))", r"\bcol_t\b"),
    ("col_t_float", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(col_t=torch.zeros(5)))", r"\bcol_t\b"),
    ("rowptr_t_not_ending_at_E", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(rowptr_t=L(0, 1, 2, 4, 1 << 30)))", r"\browptr_t\b"),
    ("rowptr_t_decreasing", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(rowptr_t=L(0, 4, 2, 4, 5)))", r"\browptr_t\b"),
    ("num_src_inconsistent", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(num_src=7))", r"\bnum_src\b"),
    ("num_src_negative", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(num_src=-2))", r"\bnum_src\b"),
    ("rowptr_not_ending_at_E", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(rowptr=L(0, 2, 5, 1 << 30)))", r"\browptr\b"),
    ("rowptr_decreasing", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(rowptr=L(0, 6, 2, 5)))", r"\browptr\b"),
    ("rowptr_rows_differ_from_grad_out", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(rowptr=L(0, 2, 5)))", r"\browptr\b|\bgrad_out\b"),
    ("grad_out_1d", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(grad_out=torch.ones(6)))", r"\bgrad_out\b"),
    ("grad_out_integer", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(grad_out=torch.ones(3, 2, dtype=torch.long), weight=None))", r"\bgrad_out\b"),
    ("arg_shape", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(arg=ARG[:2]))", r"\barg\b"),
    ("arg_int64", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(arg=ARG.long()))", r"\barg\b"),
    ("arg_slot_past_degree", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(arg=I([0, 1], [3, 0], [-1, -1])))", r"\barg\b"),
    ("arg_minus_one_in_nonempty_row", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(arg=I([-1, 1], [2, 0], [-1, -1])))", r"\barg\b"),
    ("weight_short", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(weight=torch.rand(3)))", r"\bweight\b"),
    ("weight_dtype", "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb(weight=torch.rand(5, dtype=torch.float64)))", r"\bweight\b"),
]

GATED = [
    ("edge_id_out_of_range", "torch.ops.gnnlab.gated_aggregate(*gated(edge_id=L(0, 1, 2, 3, 5)))", r"\bedge_id\b.*out of range"),
    ("edge_id_negative", "torch.ops.gnnlab.gated_aggregate(*gated(edge_id=L(0, 1, 2, 3, -1)))", r"\bedge_id\b"),
    ("edge_id_repeated", "torch.ops.gnnlab.gated_aggregate(*gated(edge_id=L(0, 1, 2, 3, 3)))", r"\bedge_id\b.*permutation"),
    ("edge_id_int32", "torch.ops.gnnlab.gated_aggregate(*gated(edge_id=I(0, 1, 2, 3, 4)))", r"\bedge_id\b"),
    ("col_out_of_range", "torch.ops.gnnlab.gated_aggregate(*gated(col=L(0, 1, 2, 3, 4)))", r"\bcol\b.*out of range"),
    ("edge_in_rows", "torch.ops.gnnlab.gated_aggregate(*gated(edge_in=torch.randn(4, 2)))", r"\bedge_in\b"),
    ("x_dst_rows", "torch.ops.gnnlab.gated_aggregate(*gated(x_dst=torch.randn(4, 2)))", r"\bx_dst\b"),
    ("values_width", "torch.ops.gnnlab.gated_aggregate(*gated(values=torch.randn(4, 3)))", r"\bvalues\b"),
    ("values_dtype", "torch.ops.gnnlab.gated_aggregate(*gated(values=torch.randn(4, 2, dtype=torch.float64)))", r"\bvalues\b.*dtype"),
    ("x_src_int", "torch.ops.gnnlab.gated_aggregate(*gated(x_src=torch.ones(4, 2, dtype=torch.long)))", r"\bx_src\b"),
    ("bwd_edge_id_t_out_of_range", "torch.ops.gnnlab.gated_aggregate_backward(*gated_bwd(edge_id_t=L(0, 1, 2, 3, 9)))", r"\bedge_id_t\b"),
    ("bwd_edge_id_t_repeated", "torch.ops.gnnlab.gated_aggregate_backward(*gated_bwd(edge_id_t=L(0, 0, 2, 3, 4)))", r"\bedge_id_t\b.*permutation"),
    ("bwd_rowptr_t_length", "torch.ops.gnnlab.gated_aggregate_backward(*gated_bwd(rowptr_t=L(0, 2, 5)))", r"\browptr_t\b"),
    ("bwd_e_hat_rows", "torch.ops.gnnlab.gated_aggregate_backward(*gated_bwd(e_hat=torch.randn(6, 2)))", r"\be_hat\b"),
    ("bwd_g_num_shape", "torch.ops.gnnlab.gated_aggregate_backward(*gated_bwd(g_num=torch.ones(2, 2)))", r"\bg_num\b"),
    ("bwd_g_den_dtype", "torch.ops.gnnlab.gated_aggregate_backward(*gated_bwd(g_den=torch.ones(3, 2, dtype=torch.float64)))", r"\bg_den\b"),
    ("bwd_g_e_shape", "torch.ops.gnnlab.gated_aggregate_backward(*gated_bwd(g_e=torch.ones(5, 3)))", r"\bg_e\b"),
]

COO_TO_CSR = [
    ("entry_past_num_nodes", "ops.coo_to_csr(L([0, 1], [1, 1 << 40]), 3)", r"\bedge_index\b.*out of range"),
    ("negative_entry_int32", "ops.coo_to_csr(I([0, -7], [1, 1]), 3)", r"\bedge_index\b"),
    ("edges_without_nodes", "ops.coo_to_csr(L([0], [0]), 0)", r"\bedge_index\b.*out of range"),
    ("edge_index_1d", "ops.coo_to_csr(L(0, 1), 3)", r"\bedge_index\b"),
    ("edge_index_3d", "ops.coo_to_csr(torch.zeros(2, 2, 1, dtype=torch.long), 3)", r"\bedge_index\b"),
    ("edge_index_bool", "ops.coo_to_csr(torch.zeros(2, 2, dtype=torch.bool), 3)", r"\bedge_index\b"),
    ("num_nodes_negative", "ops.coo_to_csr(L([0], [0]), -5)", r"\bnum_nodes\b"),
]

# Raw common-neighbour ops: {count} / {sets} are the extension op or its plain-torch reference.
COMMON_NEIGHBORS = [
    ("rowptr_not_ending_at_E", "{count}(*cn(rowptr=L(0, 1, 3, 5, 7, 8, 1 << 30)))", r"\browptr\b"),
    ("rowptr_not_starting_at_0", "{sets}(*cn_sets(rowptr=L(-4, 1, 3, 5, 7, 8, 8)))", r"\browptr\b"),
    ("rowptr_decreasing", "{count}(*cn(rowptr=L(0, 1, 30, 5, 7, 8, 8)))", r"\browptr\b"),
    ("rowptr_int32", "{count}(*cn(rowptr=I(0, 1, 3, 5, 7, 8, 8)))", r"\browptr\b"),
    ("rowptr_2d", "{count}(*cn(rowptr=L(0, 1, 3, 5, 7, 8, 8, 8).view(2, 4)))", r"\browptr\b"),
    ("col_past_num_nodes_with_weights", "{count}(*cn(col=col_with(1 << 30), src=L(4), dst=L(2)))", r"\bcol\b"),
    ("col_past_num_nodes", "{sets}(*cn_sets(col=col_with(6)))", r"\bcol\b"),
    ("col_negative", "{count}(*cn(col=col_with(-3, 0)))", r"\bcol\b"),
    ("col_float", "{count}(*cn(col=ADJ.col.double()))", r"\bcol\b"),
    ("src_past_num_nodes", "{count}(*cn(src=L(0, 1 << 40)))", r"\bsrc\b.*out of range"),
    ("dst_negative", "{sets}(*cn_sets(dst=L(-1, 2)))", r"\bdst\b.*out of range"),
    ("src_int32", "{count}(*cn(src=I(0, 1)))", r"\bsrc\b"),
    ("src_dst_lengths", "{count}(*cn(src=L(0, 1, 2)))", r"\bsrc\b"),
    ("edge_mask_short", "{count}(*cn(edge_mask=torch.ones(7, dtype=torch.bool)))", r"\bedge_mask\b"),
    ("edge_mask_float", "{sets}(*cn_sets(edge_mask=torch.ones(8)))", r"\bedge_mask\b"),
    ("node_weight_short", "{count}(*cn(node_weight=torch.rand(2)))", r"\bnode_weight\b"),
    ("node_weight_long", "{count}(*cn(node_weight=torch.rand(60)))", r"\bnode_weight\b"),
    ("node_weight_integer", "{count}(*cn(node_weight=torch.ones(6, dtype=torch.long)))", r"\bnode_weight\b"),
    ("mode_unknown", "{sets}(*cn_sets(mode=3))", r"\bmode\b"),
]

PYTHON = [
    # common-neighbour graphs: a Graph whose rows are sorted and duplicate-free
    ("undirected_index_past_num_nodes", "Graph.undirected(L([0], [6]), 6)", V, r"out of range"),
    ("undirected_num_nodes_negative", "Graph.undirected(L([0], [1]), -1)", V, r"\bnum_nodes\b"),
    ("cn_not_a_graph", "ops.common_neighbor_count(ADJ.edge_index, L(0), L(2))", "TypeError", r"\bgraph\b"),
    ("cn_row_unsorted", "ops.common_neighbor_count(Graph.from_edge_index(L([2, 0, 1], [0, 0, 0]), 3), L(0), L(1))",
     V, r"\bcol\b.*ascending"),
    ("cn_row_duplicate", "ops.common_neighbor_sets(Graph.from_edge_index(L([1, 1], [0, 0]), 2), L(0), L(1))",
     V, r"\bcol\b.*ascending"),
    # target_link_mask: a pair outside [0, N) would hide another pair's edge (key i * N + j)
    ("target_link_mask_aliasing_pair", "ops.target_link_mask(ADJ, L([0], [8]))", V, r"\bpairs\b.*out of range"),
    ("target_link_mask_negative", "ops.target_link_mask(ADJ, L([-1], [2]))", V, r"\bpairs\b.*out of range"),
    ("target_link_mask_float", "ops.target_link_mask(ADJ, torch.zeros(2, 1))", V, r"\bpairs\b"),
    ("target_link_mask_shape", "ops.target_link_mask(ADJ, L(0, 1))", V, r"\bpairs\b"),
    ("has_edge_aliasing_pair", "ops.has_edge(ADJ, L([0], [8]))", V, r"\bpairs\b.*out of range"),
    # masks of the wrong length
    ("adamic_adar_mask_length", "ops.adamic_adar(ADJ, L(0), L(2), edge_mask=torch.ones(3, dtype=torch.bool))", V,
     r"\bedge_mask\b.*8"),
    ("resource_allocation_mask_length", "ops.resource_allocation(ADJ, L(0), L(2), edge_mask=torch.ones(9, dtype=torch.bool))", V,
     r"\bedge_mask\b.*8"),
    ("degree_mask_length", "ops.masked_degree(ADJ, torch.ones(3, dtype=torch.bool))", V, r"\bedge_mask\b.*8"),
    # PairSets built by hand
    ("pairsets_nodes_past_num_nodes", "PairSets(L(0, 1, 2), L(0, 9), 6).aggregate(torch.randn(6, 2))", V, r"\bnodes\b"),
    ("pairsets_nodes_negative", "PairSets(L(0, 1, 2), L(0, -1), 6)", V, r"\bnodes\b"),
    ("pairsets_ptr_not_ending_at_M", "PairSets(L(0, 1, 3), L(0, 1), 6)", V, r"\bptr\b"),
    ("pairsets_ptr_decreasing", "PairSets(L(0, 2, 1, 2), L(0, 1), 6)", V, r"\bptr\b"),
    ("pairsets_ptr_int32", "PairSets(I(0, 1, 2), L(0, 1), 6)", V, r"\bptr\b"),
    ("pairsets_nodes_float", "PairSets(L(0, 1, 2), torch.zeros(2), 6)", V, r"\bnodes\b"),
    # Graph built by hand
    ("csrgraph_col_past_num_src",
     "Graph(G.rowptr, L(1, 2, 0, 3, 9), G.perm, G.rowptr_t, G.col_t, G.perm_t, 4, 3, G.position)", V, r"\bcol\b"),
    ("csrgraph_perm_t_past_E",
     "Graph(G.rowptr, G.col, G.perm, G.rowptr_t, G.col_t, L(2, 0, 1, 3, 7), 4, 3, G.position)", V, r"\bperm_t\b"),
    ("csrgraph_col_t_past_num_dst",
     "Graph(G.rowptr, G.col, G.perm, G.rowptr_t, L(1, 0, 0, 1, 3), G.perm_t, 4, 3, G.position)", V, r"\bcol_t\b"),
    ("csrgraph_rowptr_t_length",
     "Graph(G.rowptr, G.col, G.perm, G.rowptr_t[:-1], G.col_t, G.perm_t, 4, 3, G.position)", V, r"\browptr_t\b"),
    ("csrgraph_position_negative",
     "Graph(G.rowptr, G.col, G.perm, G.rowptr_t, G.col_t, G.perm_t, 4, 3, L(0, 1, 2, 3, -1))", V, r"\bposition\b"),
    ("csrgraph_perm_past_E",
     "Graph(G.rowptr, G.col, L(0, 1, 2, 3, 5), G.rowptr_t, G.col_t, G.perm_t, 4, 3, G.position)", V, r"\bperm\b"),
]

# Public functions that validate in Python before any kernel runs, on both backends.
SELECTIVE_SCAN = [
    ("u_2d", "torch.ops.gnnlab.selective_scan_fwd(*ssf(u=torch.randn(4, 5)))", r"\bu\b"),
    ("u_integer", "torch.ops.gnnlab.selective_scan_fwd(*ssf(u=torch.ones(2, 4, 5, dtype=torch.long)))", r"\bu\b"),
    ("delta_shape", "torch.ops.gnnlab.selective_scan_fwd(*ssf(delta=torch.rand(2, 4, 4)))", r"\bdelta\b"),
    ("A_channels", "torch.ops.gnnlab.selective_scan_fwd(*ssf(A=-torch.rand(3, 3)))", r"\bA\b"),
    ("B_length", "torch.ops.gnnlab.selective_scan_fwd(*ssf(B=torch.randn(2, 1, 3, 9)))", r"\bB\b"),
    ("B_3d", "torch.ops.gnnlab.selective_scan_fwd(*ssf(B=torch.randn(2, 3, 5)))", r"\bB\b"),
    ("C_groups_not_dividing", "torch.ops.gnnlab.selective_scan_fwd(*ssf(C=torch.randn(2, 3, 3, 5)))", r"\bC\b"),
    ("D_length", "torch.ops.gnnlab.selective_scan_fwd(*ssf(D=torch.randn(7)))", r"\bD\b"),
    ("z_shape", "torch.ops.gnnlab.selective_scan_fwd(*ssf(z=torch.randn(2, 4, 6)))", r"\bz\b"),
    ("delta_bias_length", "torch.ops.gnnlab.selective_scan_fwd(*ssf(delta_bias=torch.randn(2)))", r"\bdelta_bias\b"),
    ("reset_length", "torch.ops.gnnlab.selective_scan_fwd(*ssf(reset=torch.zeros(9, dtype=torch.uint8)))", r"\breset\b"),
    ("reset_dtype", "torch.ops.gnnlab.selective_scan_fwd(*ssf(reset=torch.zeros(5, dtype=torch.long)))", r"\breset\b"),
    ("chunk_zero", "torch.ops.gnnlab.selective_scan_fwd(*ssf(chunk=0))", r"\bchunk\b"),
    ("bwd_checkpoints_shape", "torch.ops.gnnlab.selective_scan_bwd(*ssb(checkpoints=torch.zeros(2, 4, 1, 3)))", r"\bcheckpoints\b"),
    ("bwd_grad_out_shape", "torch.ops.gnnlab.selective_scan_bwd(*ssb(grad_out=torch.ones(2, 4, 3)))", r"\bgrad_out\b"),
    ("bwd_B_length", "torch.ops.gnnlab.selective_scan_bwd(*ssb(B=torch.randn(2, 1, 3, 2)))", r"\bB\b"),
    ("h0_shape", "torch.ops.gnnlab.selective_scan_fwd(*ssf(), torch.zeros(2, 4, 2))", r"\bh0\b"),
    ("h0_dtype", "torch.ops.gnnlab.selective_scan_fwd(*ssf(), torch.zeros(2, 4, 3, dtype=torch.float64))", r"\bh0\b"),
    ("bwd_grad_last_shape", "torch.ops.gnnlab.selective_scan_bwd(*ssb(), torch.zeros(4, 3))", r"\bgrad_last\b"),
]

PUBLIC = [
    ("selective_scan_offsets_past_L", "ops.selective_scan(SS['u'][:1], SS['delta'][:1], SS['A'], SS['B'][:1, 0], "
     "SS['C'][:1, 0], cu_seqlens=L(0, 3, 9))", V, r"\bcu_seqlens\b"),
    ("scatter_index_past_dim_size", "ops.scatter(torch.randn(3, 2), L(0, 1, 5), dim=0, dim_size=3)", V, r"\bindex\b.*out of range"),
    ("segment_csr_indptr_decreasing", "ops.segment_csr(torch.randn(4, 2), L(0, 3, 1, 4))", V, r"non-decreasing"),
    ("common_neighbor_count_src_out_of_range", "ops.common_neighbor_count(ADJ, L(0, 6), L(1, 2))", V, r"\bsrc\b.*out of range"),
    ("common_neighbor_sets_mask_float", "ops.common_neighbor_sets(ADJ, L(0), L(2), edge_mask=torch.ones(8))", V, r"\bedge_mask\b"),
    ("gated_aggregate_x_dst_rows", "ops.gated_aggregate(torch.randn(5, 2), torch.randn(4, 2), X, X, G)", V, r"\bx_dst\b"),
    ("gated_aggregate_edge_in_dtype", "ops.gated_aggregate(torch.randn(5, 2).double(), torch.randn(3, 2), X, X, G)", V,
     r"\bedge_in\b.*dtype"),
    ("adamic_adar_dst_out_of_range", "ops.adamic_adar(ADJ, L(0), L(1 << 40))", V, r"\bdst\b.*out of range"),
]


def _cases():
    cases = []
    for name, kind, code, exc, match in AGGREGATE:
        for backend in ("torch", "extension"):
            cases.append((f"aggregate_csr-{backend}-{name}", backend, code, exc, match))
    for name, code, match in WEIGHT_BACKWARD:
        cases.append((f"aggregate_weight_backward-{name}", "extension", code, V, match))
    for name, code, match in EXTREMUM_X_BACKWARD:
        cases.append((f"aggregate_extremum_x_backward-{name}", "extension", code, V, match))
    for name, code, match in GATED:
        cases.append((f"gated_aggregate-{name}", "extension", code, V, match))
    for name, code, match in COO_TO_CSR:
        for backend in ("torch", "extension"):
            cases.append((f"coo_to_csr-{backend}-{name}", backend, code, V, match))
    raw = {
        "torch": ("_reference.common_neighbor_count", "_reference.common_neighbor_sets"),
        "extension": ("torch.ops.gnnlab.common_neighbor_count", "torch.ops.gnnlab.common_neighbor_sets"),
    }
    for name, code, match in COMMON_NEIGHBORS:
        for backend, (count, sets) in raw.items():
            cases.append((f"common_neighbors-{backend}-{name}", backend, code.format(count=count, sets=sets), V, match))
    for name, code, match in SELECTIVE_SCAN:
        cases.append((f"selective_scan-{name}", "extension", code, V, match))
    for name, code, exc, match in PUBLIC:
        for backend in ("torch", "extension"):
            cases.append((f"public-{backend}-{name}", backend, code, exc, match))
    for name, code, exc, match in PYTHON:
        cases.append((f"python-{name}", None, code, exc, match))
    return cases


CASES = _cases()


def _skip_reason(backend):
    if backend == "extension" and not gnnlab.ops.extension_available():
        return f"gnnlab._C not built: {gnnlab.ops.extension_error()}"
    return None


def _run_in_children(cases, timeout=120):
    """Run the cases in child processes; a case that kills its child is reported as crashed."""
    env = dict(os.environ)
    root = str(Path(gnnlab.ops.__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    results = {}
    pending = [{"id": c[0], "backend": c[1], "code": c[2]} for c in cases]
    while pending:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", RUNNER],
                input=json.dumps({"prelude": PRELUDE, "cases": pending}), capture_output=True, text=True, timeout=timeout, env=env,
            )
            stdout, stderr, status = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as err:
            stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
            status = "timeout"
        current = None
        for line in stdout.splitlines():
            if line.startswith("START "):
                current = line[len("START "):]
            elif line.startswith("RESULT ") and current is not None:
                results[current] = json.loads(line[len("RESULT "):])
                current = None
        if current is not None:
            results[current] = {"crashed": status, "stderr": stderr[-2000:]}
        elif status != 0:  # the runner itself failed before reaching a case
            for case in pending:
                results.setdefault(case["id"], {"crashed": status, "stderr": stderr[-2000:]})
        pending = [case for case in pending if case["id"] not in results]
    return results


@pytest.fixture(scope="module")
def results():
    runnable = [c for c in CASES if _skip_reason(c[1]) is None]
    return _run_in_children(runnable)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises(results, case):
    name, backend, code, exc, match = case
    reason = _skip_reason(backend)
    if reason is not None:
        if os.environ.get("GNNLAB_REQUIRE_EXTENSION", "0") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    result = results[name]
    assert "crashed" not in result, f"the process died (status {result.get('crashed')}):\n{result.get('stderr')}"
    assert result["raised"] is not None, "accepted without an error"
    assert exc in result["mro"], f"raised {result['raised']}, expected {exc}: {result['message']}"
    assert re.search(match, result["message"]), f"message does not match {match!r}: {result['message']}"


def test_valid_inputs_pass():
    """The unperturbed inputs of the cases are accepted (so each case fails for its own perturbation)."""
    code = "\n".join([
        "ops.aggregate_csr(*agg())",
        "torch.ops.gnnlab.aggregate_weight_backward(*wb()) if ops.extension_available() else None",
        "torch.ops.gnnlab.aggregate_extremum_x_backward(*xb()) if ops.extension_available() else None",
        "torch.ops.gnnlab.aggregate_weight_backward(*wb(reduce='sum', arg=I())) if ops.extension_available() else None",
        "_reference.common_neighbor_count(*cn())",
        "_reference.common_neighbor_sets(*cn_sets())",
        "torch.ops.gnnlab.common_neighbor_count(*cn()) if ops.extension_available() else None",
        "PairSets(L(0, 1, 2), L(0, 5), 6).aggregate(torch.randn(6, 2))",
        "Graph(G.rowptr, G.col, G.perm, G.rowptr_t, G.col_t, G.perm_t, 4, 3, G.position)",
        "ops.target_link_mask(ADJ, L([0], [1]))",
        "ops.common_neighbor_count(ADJ, L(0), L(2))",
        "torch.ops.gnnlab.selective_scan_fwd(*ssf()) if ops.extension_available() else None",
        "torch.ops.gnnlab.selective_scan_bwd(*ssb()) if ops.extension_available() else None",
    ])
    result = _run_in_children([("valid", None, code, None, None)])["valid"]
    assert "crashed" not in result, result
    assert result["raised"] is None, result
