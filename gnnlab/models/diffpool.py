"""DiffPool (Ying et al.): hierarchical pooling by learned soft cluster assignments."""
from __future__ import annotations

from math import ceil
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import DenseSAGEConv, dense_diff_pool
from torch_geometric.utils import to_dense_batch

from gnnlab.models._inputs import FloatFeatureClassifier
from gnnlab.models.outputs import WithAuxLoss
from gnnlab.ops import Graph, aggregate


class DenseSAGEStack(torch.nn.Module):
    r"""Three dense GraphSAGE convolutions (``DenseSAGEConv``, mean over the neighbours, no self loop added),
    ReLU and batch norm after the first two, their outputs concatenated:

    .. code-block:: text

        h_1 = BN(ReLU(SAGE(x))), h_2 = BN(ReLU(SAGE(h_1))), h_3 = SAGE(h_2)
        out = [h_1, h_2, h_3]            or, with ``lin``, Linear([h_1, h_2, h_3])

    The block DiffPool uses for both its embedding and its assignment networks. Batch norm reads the real
    nodes only (not the padding of the dense batch).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, lin: bool = False):
        super().__init__()
        self.convs = torch.nn.ModuleList([DenseSAGEConv(in_channels, hidden_channels),
                                          DenseSAGEConv(hidden_channels, hidden_channels),
                                          DenseSAGEConv(hidden_channels, out_channels)])
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(hidden_channels) for _ in range(2))
        width = 2 * hidden_channels + out_channels
        self.lin = torch.nn.Linear(width, out_channels) if lin else None
        self.out_channels = out_channels if lin else width

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``(B, N, F)``, ``adj`` ``(B, N, N)``, ``mask`` ``(B, N)`` of the real nodes (``None``: all)."""
        hs = []
        for k, conv in enumerate(self.convs):
            x = conv(x, adj, mask)
            if k < 2:
                x = F.relu(x)
                if mask is None:
                    x = self.norms[k](x.flatten(0, 1)).view_as(x)
                else:
                    x = x.masked_scatter(mask.unsqueeze(-1), self.norms[k](x[mask]))
            hs.append(x)
        out = torch.cat(hs, dim=-1)
        return out if self.lin is None else self.lin(out)

    def forward_sparse(self, x: Tensor, rows: Graph) -> Tensor:
        """The same stack on the node rows ``x`` ``(N, F)`` of a sparse batch: ``rows`` is the graph whose
        aggregation targets are the rows of the dense adjacency (the edges reversed), so each node averages
        over the edges leaving it. Equal, row for row, to :meth:`forward` on the dense batch's real nodes,
        without the ``(B, N, N)`` products."""
        hs = []
        for k, conv in enumerate(self.convs):
            x = conv.lin_rel(aggregate(x, rows, reduce="mean")) + conv.lin_root(x)
            if k < 2:
                x = self.norms[k](F.relu(x))
            hs.append(x)
        out = torch.cat(hs, dim=-1)
        return out if self.lin is None else self.lin(out)


class DiffPool(FloatFeatureClassifier):
    r"""DiffPool from `"Hierarchical Graph Representation Learning with Differentiable Pooling"
    <https://arxiv.org/abs/1806.08804>`_ (Ying et al., NeurIPS 2018), in the configuration of Errica et al.'s
    fair comparison (ICLR 2020). At each of ``num_levels`` levels:

    .. math::
        \mathbf{Z} = \mathrm{GNN}_{\mathrm{embed}}(\mathbf{A}, \mathbf{X}), \quad
        \mathbf{S} = \mathrm{softmax}\big(\mathrm{GNN}_{\mathrm{pool}}(\mathbf{A}, \mathbf{X})\big), \quad
        \mathbf{X}' = \mathbf{S}^{\top}\mathbf{Z}, \quad \mathbf{A}' = \mathbf{S}^{\top}\mathbf{A}\mathbf{S}

    with both GNNs a :class:`DenseSAGEStack` (the pooling one ends in a linear map to the clusters). The
    first level has ``ceil(c * max_num_nodes)`` clusters, each next level ``c`` times fewer (``c`` = 0.1 for
    one level, 0.25 for more, as in the paper). A last :class:`DenseSAGEStack` runs on the coarsest graph;
    the node-wise maximum after every level and after it is concatenated and classified by
    ``Linear -> ReLU -> Linear``. The forward returns :class:`WithAuxLoss`: the class scores and the sum over
    the levels of the link-prediction loss :math:`\lVert \mathbf{A} - \mathbf{S}\mathbf{S}^{\top} \rVert_F`
    (over the number of entries) and the mean entropy of the assignments (``torch_geometric.nn.dense_diff_pool``).
    The first level runs on the sparse input graphs (no ``(B, N, N)`` adjacency, so large graphs fit) and
    gives what the authors' dense batch, padded to its largest graph, gives, losses included; the pooled
    graphs are dense.

    Args:
        in_channels (int): Width of the float node features.
        out_channels (int): Number of classes.
        max_num_nodes (int): The largest graph of the training data (sets the number of clusters).
        num_levels (int, optional): Pooling levels. (default: :obj:`2`)
        hidden_channels (int, optional): Width of the first two convolutions of every stack. (default: :obj:`64`)
        embedding_channels (int, optional): Width of the third convolution of every stack. (default: :obj:`128`)
        mlp_channels (int, optional): Hidden width of the classifier. (default: :obj:`50`)
        coarsening (float, optional): ``c`` above. (default: 0.1 for one level, 0.25 for more)

    Shapes:
        - **input:** a batch of graphs with float node features ``x`` :math:`(|\mathcal{V}|, F_{in})`
        - **output:** ``WithAuxLoss(out (|G|, F_out), aux_loss ())``
    """

    def __init__(self, in_channels: int, out_channels: int, max_num_nodes: int, num_levels: int = 2,
                 hidden_channels: int = 64, embedding_channels: int = 128, mlp_channels: int = 50,
                 coarsening: float | None = None):
        super().__init__(in_channels, out_channels)
        if num_levels < 1 or max_num_nodes < 1:
            raise ValueError(f"DiffPool: num_levels and max_num_nodes must be >= 1, got {num_levels}, {max_num_nodes}")
        c = coarsening if coarsening is not None else (0.1 if num_levels == 1 else 0.25)
        if not 0.0 < c < 1.0:
            raise ValueError(f"DiffPool: coarsening must be in (0, 1), got {c}")
        width = 2 * hidden_channels + embedding_channels  # of every embedding stack's output
        self.clusters: list[int] = []
        self.pools, self.embeds = torch.nn.ModuleList(), torch.nn.ModuleList()
        clusters, fan_in = ceil(c * max_num_nodes), in_channels
        for _ in range(num_levels):
            self.clusters.append(clusters)
            self.pools.append(DenseSAGEStack(fan_in, hidden_channels, clusters, lin=True))
            self.embeds.append(DenseSAGEStack(fan_in, hidden_channels, embedding_channels))
            fan_in, clusters = width, ceil(clusters * c)
        self.final = DenseSAGEStack(width, hidden_channels, embedding_channels)
        self.lin1 = torch.nn.Linear(width * (num_levels + 1), mlp_channels)
        self.lin2 = torch.nn.Linear(mlp_channels, out_channels)

    def forward(self, data) -> WithAuxLoss:
        """Class scores of every graph of the batch and the auxiliary loss."""
        x, batch, num_graphs = self.graph_batch(data)
        # The first level runs on the sparse input graphs, the next ones on the dense pooled graphs.
        rows = Graph.from_edge_index(data.edge_index.flip(0), x.size(0))
        s = torch.softmax(self.pools[0].forward_sparse(x, rows), dim=-1)
        x, adj, aux = _sparse_diff_pool(self.embeds[0].forward_sparse(x, rows), s, rows, data.edge_index, batch,
                                        num_graphs)
        reads = [x.amax(dim=1)]
        for pool, embed in zip(self.pools[1:], self.embeds[1:]):
            x, adj, link, entropy = dense_diff_pool(embed(x, adj), adj, pool(x, adj))  # (B, clusters, width), (B, c, c)
            reads.append(x.amax(dim=1))
            aux = aux + link + entropy
        reads.append(self.final(x, adj).amax(dim=1))
        out = self.lin2(F.relu(self.lin1(torch.cat(reads, dim=-1))))
        return WithAuxLoss(out, aux)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, clusters={self.clusters})"


def _sparse_diff_pool(z: Tensor, s: Tensor, rows: Graph, edge_index: Tensor, batch: Tensor,
                      num_graphs: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""``dense_diff_pool`` of node rows: ``z`` ``(N, F)`` embeddings, ``s`` ``(N, C)`` assignments (softmax
    taken), ``rows`` as in :meth:`DenseSAGEStack.forward_sparse`. Returns the pooled ``(B, C, F)`` features,
    the ``(B, C, C)`` adjacency and the link-prediction plus entropy loss, each equal to what
    ``dense_diff_pool`` gives on the dense batch padded to its largest graph ``N_max`` (the losses keep its
    normalisation by the padded size). The link loss uses
    :math:`\lVert A - SS^\top \rVert_F^2 = \sum A_{ij}^2 - 2 \sum_i s_i \cdot (AS)_i + \lVert S^\top S \rVert_F^2`,
    so no ``(B, N, N)`` matrix is formed."""
    s_dense, _ = to_dense_batch(s, batch, batch_size=num_graphs)  # (B, N_max, C), zero rows for padding
    z_dense, _ = to_dense_batch(z, batch, batch_size=num_graphs)
    a_s = aggregate(s, rows, reduce="sum")  # (A S)_i: the sum of s_j over the edges i -> j
    as_dense, _ = to_dense_batch(a_s, batch, batch_size=num_graphs)
    s_t = s_dense.transpose(1, 2)
    num_padded = s_dense.size(1)
    src, dst = edge_index
    # sum of A_ij^2: a repeated edge is one entry of A that counts its copies
    _, copies = torch.unique(src * s.size(0) + dst, return_counts=True)
    squared = (copies.to(s.dtype).square().sum() - 2 * (s * a_s).sum()
               + torch.matmul(s_t, s_dense).square().sum())
    link = squared.clamp_min(0).sqrt() / (num_graphs * num_padded * num_padded)
    entropy = (-s * torch.log(s + 1e-15)).sum() / (num_graphs * num_padded)
    return torch.matmul(s_t, z_dense), torch.matmul(s_t, as_dense), link + entropy
