"""Graph-Mamba: a Mamba block reading the nodes of each graph as a sequence, in a (noisy) degree order."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.mixer.base import GlobalMixer, check_mixer_inputs
from gnnlab.nn.ssm import Mamba, node_degree, order_within_graphs, positions_in_sequence, sequence_offsets

__all__ = ["GraphMambaMixer"]

_ORDERINGS = ("degree_noise", "degree", "random", "index")
# Within-graph positions per block of evaluation noise (see GraphMambaMixer._eval_noise).
_NOISE_BLOCK = 1024


class GraphMambaMixer(GlobalMixer):
    r"""The Graph-Mamba global mixer from `"Graph-Mamba: Towards Long-Range Graph Sequence Modeling
    with Selective State Spaces" <https://arxiv.org/abs/2402.00789>`_ (Wang, Tsepa, Ma & Wang, 2024):
    the nodes of each graph are sorted into a sequence, read by one :class:`~gnnlab.nn.ssm.Mamba`
    block (Gu & Dao, arXiv 2312.00752), and the outputs are put back in node order.

    With the default ``ordering="degree_noise"`` (the authors' node prioritisation with a
    permutation within equal degrees), every node :math:`i` of graph :math:`g` gets the key

    .. math::
        k_i = \deg(i) + u_i, \qquad u_i \sim \mathcal{U}[0, 1),

    so the nodes are sorted by ascending degree and, within a degree, in a uniformly random order
    (:math:`\deg(i)` counts the edges leaving :math:`i`, ``edge_index[0]``, as PyG's ``degree``).
    With :math:`\pi_g` the resulting order of the nodes of :math:`g`,

    .. math::
        \mathbf{Y}_g = \pi_g^{-1}\big(\mathrm{Mamba}(\mathbf{X}_{\pi_g})\big),

    a causal scan: the node read last sees every other node of its graph, the first only itself.
    In training mode one ordering is drawn per call. In evaluation mode the output is the mean over
    ``eval_orderings`` independently drawn orderings :math:`\pi_g^{(1)}, \dots, \pi_g^{(K)}`,

    .. math::
        \mathbf{Y}_g = \frac{1}{K} \sum_{r=1}^{K} \big(\pi_g^{(r)}\big)^{-1}
            \big(\mathrm{Mamba}(\mathbf{X}_{\pi_g^{(r)}})\big),

    which brings the output closer to invariance under a renumbering of the nodes.

    Orderings (``ordering``), each with its counterpart in the authors' ``gps_layer.py``:

    * ``"degree_noise"``: degree + :math:`\mathcal{U}[0,1)` noise, as above
      (``Mamba_Hybrid_Degree_Noise``, the configuration of their LRGB results);
    * ``"degree"``: ascending degree, ties by node index (``Mamba_Degree``); deterministic, so
      evaluation runs it once;
    * ``"random"``: a uniformly random permutation within each graph (``Mamba_Hybrid``);
    * ``"index"``: the nodes in their given order (plain ``Mamba``); deterministic.

    What the authors' code does, and where this module differs:

    * Upstream sorts with a ``lexsort`` (graph id primary, ``degree + rand`` secondary), pads the
      sorted nodes with ``to_dense_batch`` and runs ``Mamba(d_state=16, d_conv=4, expand=1)`` on
      the padded ``[B, L_max, d]`` tensor; at evaluation (``batch.split != 'train'``) it averages 5
      orderings. Here the sorted nodes are packed graph after graph and the block runs on
      ``[total, d]`` with offsets ``cu_seqlens``: the scan state and the causal convolution restart
      at each graph. Padding sits after each graph's nodes and Mamba is causal, so the padded rows
      never influence the real ones: both layouts give the same result per graph, without the
      :math:`O(B \, L_{\max})` padded work. At evaluation the :math:`K` orderings run as
      :math:`K \cdot B` packed sequences in one call.
    * Upstream draws the evaluation noise from the global RNG (``torch.rand_like``), so evaluating
      twice gives different results and consumes the training run's random stream. Here the
      evaluation noise comes from a private :class:`torch.Generator` seeded with ``eval_seed`` at
      every call: evaluation is deterministic, repeated calls agree, and the global RNG is left
      untouched. The evaluation noise of a node depends only on its position within its graph
      (position :math:`p` of every graph gets the same :math:`K` draws), so a graph gives the same
      output alone or batched with others. Training noise is drawn from the default generator of
      ``x``'s device, so ``seed_everything`` reproduces a run.
    * The key is computed in float64 (upstream: float32), so the noise breaks ties exactly even
      for large degrees.

    The paper's text (section numbers, the evaluation recipe in its own words) could not be read
    offline; the algorithm above follows the authors' code (``graphgps/layer/gps_layer.py``,
    ``Mamba_Hybrid_Degree_Noise``) and configs (``configs/Mamba/peptides-*-EX.yaml``).

    Args:
        dim (int): Width of the node features.
        d_state (int, optional): Mamba state size :math:`N`. (default: :obj:`16`)
        d_conv (int, optional): Width of Mamba's causal convolution. (default: :obj:`4`)
        expand (int, optional): Mamba's inner width ÷ ``dim``. (default: :obj:`1`, as upstream)
        ordering (str, optional): ``"degree_noise"``, ``"degree"``, ``"random"`` or ``"index"``.
            (default: :obj:`"degree_noise"`)
        eval_orderings (int, optional): Number :math:`K` of random orderings averaged in
            evaluation mode (random orderings only). (default: :obj:`5`)
        eval_seed (int, optional): Seed of the evaluation noise. (default: :obj:`0`)
        chunk_size (int, optional): Scan the packed rows in pieces of this many, recomputing each
            piece in the backward (:class:`~gnnlab.nn.ssm.Mamba`): same values, first-order gradients
            only, memory that grows with the input alone, at most about 2x the time. For graphs of
            thousands of nodes, where it keeps less than full attention does
            (``results/mixer_memory_cpu.txt``). (default: :obj:`None`, the whole sequence at once)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, \mathrm{dim})`, graph ids
          :math:`(|\mathcal{V}|)` sorted ascending (or :obj:`None` for one graph), and
          ``edge_index`` :math:`(2, |\mathcal{E}|)` for the degree orderings
        - **output:** node features :math:`(|\mathcal{V}|, \mathrm{dim})`
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 1,
        ordering: str = "degree_noise",
        eval_orderings: int = 5,
        eval_seed: int = 0,
        chunk_size: int | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        if ordering not in _ORDERINGS:
            raise ValueError(f"{name}: ordering must be one of {', '.join(_ORDERINGS)}, got {ordering!r}")
        if eval_orderings < 1:
            raise ValueError(f"{name}: eval_orderings must be a positive integer, got {eval_orderings}")
        if dim < 1:
            raise ValueError(f"{name}: dim must be a positive integer, got {dim}")
        self.dim = dim
        self.ordering = ordering
        self.eval_orderings = eval_orderings
        self.eval_seed = eval_seed
        self.mamba = Mamba(dim, d_state=d_state, d_conv=d_conv, expand=expand, chunk_size=chunk_size)

    @property
    def reads_edges(self) -> bool:
        """Whether ``forward`` needs ``edge_index``: the degree orderings read node degrees."""
        return self.ordering.startswith("degree")

    def reset_parameters(self) -> None:
        """Re-initialise the Mamba block as ``mamba_ssm`` does."""
        self.mamba.reset_parameters()

    def _eval_noise(self, positions: Tensor, count: int) -> Tensor:
        """``(count, N)`` float64 noise of the evaluation orderings, a function of each node's
        position within its graph only.

        Drawn in fixed blocks of positions from a generator seeded with ``eval_seed``, so the value
        at a position is the same whatever the size of the largest graph.
        """
        size = int(positions.max()) + 1 if positions.numel() else 0
        generator = torch.Generator().manual_seed(self.eval_seed)
        blocks = [torch.rand(_NOISE_BLOCK, count, generator=generator) for _ in range(-(-size // _NOISE_BLOCK))]
        table = torch.cat(blocks) if blocks else torch.empty(0, count)  # (positions, count)
        return table.to(device=positions.device, dtype=torch.float64)[positions].T  # (count, N)

    def node_orders(
        self,
        num_nodes: int,
        batch: Tensor | None = None,
        edge_index: Tensor | None = None,
        device: torch.device | None = None,
    ) -> Tensor:
        """The orderings a forward call in the current mode reads: ``(K, N)`` int64, row ``r`` listing
        the node ids of graph 0 in scan order, then graph 1, ... (``K = 1`` in training mode and for
        the deterministic orderings, ``eval_orderings`` otherwise).

        In training mode this draws from the default generator of ``device``, as :meth:`forward` does
        (with ``x``'s device).
        """
        name = type(self).__name__
        if self.reads_edges:
            if edge_index is None:
                raise ValueError(
                    f"{name}: ordering={self.ordering!r} sorts nodes by degree and needs edge_index; pass "
                    "edge_index=... (GPSLayer does), or choose ordering='random' or 'index'"
                )
            if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
                shape = list(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
                raise ValueError(f"{name}: edge_index must be a [2, num_edges] tensor, got {shape}")
            if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
                raise ValueError(f"{name}: edge_index must hold integer node ids, got dtype {edge_index.dtype}")
            if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
                raise ValueError(f"{name}: edge_index holds node ids outside [0, {num_nodes})")
            degree = node_degree(edge_index, num_nodes, dtype=torch.float64)  # (N,)
        if self.ordering == "index" or (self.ordering == "degree" and num_nodes == 0):
            return torch.arange(num_nodes, device=device).unsqueeze(0)
        if self.ordering == "degree":
            return order_within_graphs(batch, degree).unsqueeze(0)
        if self.training:
            noise = torch.rand(1, num_nodes, device=device, dtype=torch.float64)
        else:
            positions = positions_in_sequence(sequence_offsets(batch, num_nodes).to(device), num_nodes)
            noise = self._eval_noise(positions, self.eval_orderings)
        keys = noise + degree if self.ordering == "degree_noise" else noise  # (K, N)
        return torch.stack([order_within_graphs(batch, key) for key in keys])

    def forward(self, x: Tensor, batch: Tensor | None = None, edge_index: Tensor | None = None) -> Tensor:
        """Scan each graph's nodes in the chosen order(s); returns ``(N, dim)`` in the row order of ``x``."""
        check_mixer_inputs(type(self).__name__, x, batch, self.dim)
        if batch is not None:
            batch = batch.long()
        num_nodes = x.size(0)
        orders = self.node_orders(num_nodes, batch, edge_index, device=x.device)  # (K, N)
        count = orders.size(0)
        offsets = sequence_offsets(batch, num_nodes).to(x.device)  # (S + 1,)
        if count > 1 and not torch.is_grad_enabled():
            # Without autograd, one ordering at a time into a running sum: the same sums as the
            # packed call below, with a K-th of its transient memory.
            out = x.new_zeros(num_nodes, self.dim)
            for order in orders:
                out.index_add_(0, order, self.mamba(x, offsets, order=order))
            return out / count
        # The K orderings laid end to end: copy r of every graph is one more packed sequence.
        starts = (offsets[:-1].unsqueeze(0) + num_nodes * torch.arange(count, device=x.device).unsqueeze(1))
        cu_seqlens = torch.cat([starts.reshape(-1), offsets.new_full((1,), count * num_nodes)])
        flat = orders.reshape(-1)  # (K·N,)
        y = self.mamba(x, cu_seqlens, order=flat)  # (K·N, dim), scan order
        out = x.new_zeros(num_nodes, self.dim).index_add(0, flat, y)  # back to x's rows, summed over K
        return out if count == 1 else out / count

    def __repr__(self) -> str:
        m = self.mamba
        return (
            f"{type(self).__name__}({self.dim}, d_state={m.d_state}, d_conv={m.d_conv}, expand={m.expand}, "
            f"ordering={self.ordering!r}, eval_orderings={self.eval_orderings}"
            + (f", chunk_size={m.chunk_size})" if m.chunk_size is not None else ")")
        )
