"""One vectorised pass over a dataset at load time: values every layer would otherwise pass on silently.

NaN or infinite features flow through every layer (and the loss) without an error, an out-of-range edge
index reads another graph's node, and a label outside the classes fails deep inside the loss. The
:class:`~gnnlab.data.DataModule` calls :func:`check_dataset` once per dataset when it is built.
:func:`choice` is the check of a dataset or split name that every loader shares.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Dataset, InMemoryDataset

from gnnlab.errors import ConfigError, DataError

__all__ = ["check_dataset", "choice", "INDEX_DTYPES", "SPLITS"]

#: dtypes accepted for ``edge_index``.
INDEX_DTYPES = (torch.int64, torch.int32)

#: The splits every loader returns.
SPLITS = ("train", "val", "test")


def choice(value: object, valid: tuple[str, ...], what: str, kind: str = "names") -> str:
    """``value`` as spelled in ``valid``, matched case-insensitively for ``kind="names"`` and exactly for
    ``"splits"``; otherwise a :class:`~gnnlab.errors.ConfigError` ``unknown <what> <value>; valid <kind>: ...``."""
    found = ({v.lower(): v for v in valid}.get(str(value).lower()) if kind == "names"
             else value if value in valid else None)
    if found is None:
        raise ConfigError(f"unknown {what} {value!r}; valid {kind}: {', '.join(valid)}")
    return found


class _Flat:
    """The graphs of a dataset concatenated: ``attr -> (values, ptr)``, ``ptr[g]:ptr[g+1]`` the rows of graph g.

    ``edge_index`` keeps its per-graph (local) node numbers; ``position[g]`` is graph ``g``'s index in
    the dataset as it is served (``-1`` for graphs of the storage that the dataset does not serve).
    """

    def __init__(self, dataset: Dataset, attrs: tuple[str, ...]):
        self.values: dict[str, tuple[Tensor, Tensor]] = {}
        if isinstance(dataset, InMemoryDataset) and dataset.transform is None and "x" in (dataset.slices or {}):
            # The collated storage already is the concatenation (per-graph node numbers in edge_index).
            data, slices = dataset._data, dataset.slices
            for attr in attrs:
                value = getattr(data, attr, None)
                if isinstance(value, Tensor) and attr in slices:
                    self.values[attr] = (value, slices[attr])
            num_graphs = slices["x"].numel() - 1
            self.num_nodes = slices["x"].diff()
            self.position = torch.full((num_graphs,), -1, dtype=torch.long)
            served = torch.as_tensor(dataset.indices(), dtype=torch.long)
            self.position[served] = torch.arange(served.numel())
            return
        graphs = [dataset[i] for i in range(len(dataset))]
        self.num_nodes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long)
        self.position = torch.arange(len(graphs))
        for attr in attrs:
            parts = [getattr(g, attr, None) for g in graphs]
            if not parts or any(not isinstance(p, Tensor) for p in parts):
                continue
            dim = -1 if attr == "edge_index" else 0
            sizes = torch.tensor([p.size(dim) if p.dim() else 1 for p in parts], dtype=torch.long)
            ptr = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)])
            self.values[attr] = (torch.cat([p.reshape(1) if p.dim() == 0 else p for p in parts], dim), ptr)

    def graph_of(self, attr: str, row: Tensor) -> Tensor:
        """Storage graph of each row of ``attr``."""
        return torch.searchsorted(self.values[attr][1], row, right=True) - 1

    def served(self, attr: str, bad: Tensor) -> Tensor:
        """Keep the bad rows that belong to graphs the dataset serves."""
        rows = bad.nonzero().view(-1)
        return rows[self.position[self.graph_of(attr, rows)] >= 0]


def check_dataset(dataset: Dataset, split: str | None = None, num_classes: int | None = None) -> None:
    """Raise :class:`~gnnlab.errors.DataError` when a graph of ``dataset`` holds an invalid value.

    Checked, over all graphs at once: float ``x`` and ``edge_attr`` are finite; ``edge_index`` is an
    int64 or int32 ``[2, E]`` tensor with every entry in ``[0, num_nodes)`` of its graph; with
    ``num_classes``, integer labels ``y`` lie in ``[0, num_classes)``. The message names the dataset
    (and ``split``), the graph's index in the dataset, the tensor and the offending entry.
    """
    if len(dataset) == 0:
        return
    name = getattr(dataset, "name", None) or type(dataset).__name__
    where = f"dataset {name}" + (f" ({split} split)" if split else "")
    flat = _Flat(dataset, ("x", "edge_attr", "edge_index", "y"))

    def fail(attr: str, row: int, text: str) -> None:
        graph = int(flat.graph_of(attr, torch.tensor([row])))
        local = row - int(flat.values[attr][1][graph])
        text = text.format(local=local)
        raise DataError(f"{where}, graph {int(flat.position[graph])}: {attr} {text}")

    for attr, unit in (("x", "node"), ("edge_attr", "edge")):
        if attr not in flat.values:
            continue
        value = flat.values[attr][0]
        if not value.is_floating_point():
            continue
        finite = torch.isfinite(value)
        if finite.dim() > 1:
            finite = finite.flatten(1).all(1)
        rows = flat.served(attr, ~finite)
        if rows.numel():
            row = int(rows[0])
            bad = value[row].reshape(-1)
            bad = bad[~torch.isfinite(bad)][0].item()
            fail(attr, row, f"has a non-finite value ({bad}) at {unit} {{local}}")

    if "edge_index" in flat.values:
        edge_index, ptr = flat.values["edge_index"]
        if edge_index.dtype not in INDEX_DTYPES:
            raise DataError(f"{where}: edge_index has dtype {edge_index.dtype}; expected torch.int64 or torch.int32")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise DataError(f"{where}: edge_index has shape {list(edge_index.shape)}; expected [2, E]")
        limit = flat.num_nodes.repeat_interleave(ptr.diff())  # (E,) nodes of each edge's graph
        outside = (edge_index < 0) | (edge_index >= limit)  # (2, E)
        rows = flat.served("edge_index", outside.any(0))
        if rows.numel():
            col = int(rows[0])
            node = int(edge_index[0, col] if outside[0, col] else edge_index[1, col])
            fail("edge_index", col, f"refers to node {node} at edge {{local}}, outside [0, {int(limit[col])})")

    if num_classes is not None and "y" in flat.values:
        y = flat.values["y"][0]
        if not y.is_floating_point() and y.dtype != torch.bool:
            outside = (y < 0) | (y >= num_classes)
            if outside.dim() > 1:
                outside = outside.flatten(1).any(1)
            rows = flat.served("y", outside)
            if rows.numel():
                row = int(rows[0])
                labels = y[row].reshape(-1)
                label = int(labels[(labels < 0) | (labels >= num_classes)][0])
                fail("y", row, f"has label {label} at row {{local}}, outside the classes [0, {num_classes})")
