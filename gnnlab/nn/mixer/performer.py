"""Linear attention with Performer random features (FAVOR+), summed per graph without padding."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.mixer.base import (
    GlobalMixer,
    check_heads,
    check_mixer_inputs,
    init_projections,
    num_graphs,
)
from gnnlab.nn.ssm.sequence import sequence_offsets
from gnnlab.ops import scatter, segment_csr

_KERNELS = ("softmax", "relu")


def orthogonal_gaussian_features(num_features: int, dim: int, generator: torch.Generator) -> Tensor:
    r"""``(num_features, dim)`` float64 random rows, orthogonal in blocks of ``dim``, each marginally
    :math:`\mathcal{N}(0, \mathbf{I})`.

    Each block of ``dim`` rows is a Haar-random orthogonal matrix (QR of a Gaussian matrix with the
    signs fixed by the diagonal of :math:`R`); every row is then rescaled to the norm of an
    independent Gaussian vector, so its length is :math:`\chi_{\mathrm{dim}}`-distributed as for
    i.i.d. Gaussian rows. Drawn on the CPU from ``generator``.
    """
    num_blocks = math.ceil(num_features / dim)
    gaussian = torch.randn(num_blocks, dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)  # batched over the blocks
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    directions = q.transpose(-2, -1).reshape(num_blocks * dim, dim)[:num_features]  # rows orthonormal per block
    lengths = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=1)
    return directions * lengths.unsqueeze(-1)


class PerformerMixer(GlobalMixer):
    r"""Linear attention with positive orthogonal random features (FAVOR+) from `"Rethinking
    Attention with Performers" <https://arxiv.org/abs/2009.14794>`_ (Choromanski et al.,
    ICLR 2021), applied to the nodes of each graph.

    Queries, keys and values are projected as in :class:`MultiheadAttentionMixer`; with a
    random matrix :math:`\mathbf{W} \in \mathbb{R}^{m \times d}` (rows :math:`\mathbf{w}_r`,
    orthogonal in blocks of :math:`d`) each head maps queries and keys, scaled by
    :math:`d^{-1/4}`, to :math:`m` features

    .. math::
        \phi_{\mathrm{softmax}}(\mathbf{x}) = \tfrac{1}{\sqrt{m}} \big[
            \exp(\mathbf{w}_r^{\top} \mathbf{x} - \lVert \mathbf{x} \rVert^2 / 2) \big]_{r=1}^{m},
        \qquad
        \phi_{\mathrm{relu}}(\mathbf{x}) = \tfrac{1}{\sqrt{m}} \big[
            \mathrm{ReLU}(\mathbf{w}_r^{\top} \mathbf{x}) + \varepsilon \big]_{r=1}^{m}

    and, for node :math:`i` of graph :math:`g`,

    .. math::
        \mathbf{x}^{\prime}_i = \Big( \mathop{\Big\Vert}_{k=1}^{H}
            \frac{\phi(\mathbf{q}^k_i)^{\top} \sum_{j \in g} \phi(\mathbf{k}^k_j) \, \mathbf{v}^{k\top}_j}
                 {\phi(\mathbf{q}^k_i)^{\top} \sum_{j \in g} \phi(\mathbf{k}^k_j)} \Big)
            \mathbf{W}_O + \mathbf{b}_O

    With the softmax kernel,
    :math:`\mathbb{E}[\phi(\mathbf{q})^{\top} \phi(\mathbf{k})] = \exp(\mathbf{q}^{\top} \mathbf{k} / \sqrt{d})`
    for the unscaled vectors, so the result estimates the softmax attention of
    :class:`MultiheadAttentionMixer`, more closely as :math:`m` grows. The sums over each graph
    are segment sums over the sorted ``batch``: nothing is padded, no :math:`N \times N` matrix
    is formed, and time and memory are :math:`O(N H m d)`. For numerical range the exponent of
    every query is shifted by its maximum and that of every key by the maximum over its graph
    (per head); both shifts cancel in the quotient. :math:`\varepsilon = 10^{-3}` keeps the ReLU
    features away from zero, as in the reference implementation. After the shifts the largest
    feature of each query, and of the keys of each graph, is :math:`1/\sqrt{m}`: the denominator is
    tiny only when the estimate degenerates (inputs so large that the features of a query and of
    its graph's keys do not overlap). It is floored at :math:`10^{-6}`, so such queries get a
    near-zero output with finite gradients rather than :math:`0/0`.

    :math:`\mathbf{W}` is a buffer (saved with the model), never trained. It changes only through
    :meth:`redraw_features` or, with ``redraw=n``, every :math:`n`-th forward pass in training
    mode; it stays fixed in evaluation mode. Draw :math:`t` comes from a CPU generator seeded
    with ``seed + t``, so it is reproducible.

    Args:
        dim (int): Width of the node features.
        num_heads (int): Number of heads :math:`H`; must divide ``dim``.
        num_features (int, optional): Number of random features :math:`m`; :obj:`None` for
            :math:`\max(d, \lfloor d \ln d \rfloor)` with :math:`d` the head width.
            (default: :obj:`None`)
        kernel (str, optional): ``"softmax"`` (positive random features estimating the softmax
            kernel) or ``"relu"``. (default: :obj:`"softmax"`)
        redraw (int, optional): Redraw :math:`\mathbf{W}` every ``redraw`` forward passes in
            training mode; :obj:`None` to redraw only on request. (default: :obj:`None`)
        bias (bool, optional): Learn the biases of the input and output projections.
            (default: :obj:`True`)
        seed (int, optional): Seed of the feature draws; :obj:`None` takes one from the global
            torch generator at construction, so that every layer gets its own. (default: :obj:`None`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, \mathrm{dim})`, graph ids
          :math:`(|\mathcal{V}|)` sorted ascending, or :obj:`None` for a single graph
        - **output:** node features :math:`(|\mathcal{V}|, \mathrm{dim})`
    """

    relu_eps: float = 1e-3

    denominator_floor: float = 1e-6

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_features: int | None = None,
        kernel: str = "softmax",
        redraw: int | None = None,
        bias: bool = True,
        seed: int | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        self.head_dim = check_heads(name, dim, num_heads)
        if kernel not in _KERNELS:
            raise ValueError(f"{name}: kernel must be one of {_KERNELS}, got {kernel!r}")
        if num_features is None:
            num_features = max(self.head_dim, int(self.head_dim * math.log(self.head_dim)))
        if num_features < 1:
            raise ValueError(f"{name}: num_features must be a positive integer, got {num_features}")
        if redraw is not None and redraw < 1:
            raise ValueError(f"{name}: redraw must be a positive number of forward passes or None, got {redraw}")
        if seed is None:
            seed = int(torch.randint(2**62, (1,)))
        self.dim = dim
        self.num_heads = num_heads
        self.num_features = num_features
        self.kernel = kernel
        self.redraw = redraw
        self.seed = seed
        self.in_proj = torch.nn.Linear(dim, 3 * dim, bias=bias)
        self.out_proj = torch.nn.Linear(dim, dim, bias=bias)
        self.register_buffer("projection", torch.empty(num_features, self.head_dim))
        self.register_buffer("num_draws", torch.zeros((), dtype=torch.long))
        self._training_calls = 0
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the projections (as :class:`MultiheadAttentionMixer`) and restore the first feature draw."""
        init_projections(self.in_proj, self.out_proj)
        self.num_draws.zero_()
        self._training_calls = 0
        self._draw()

    @torch.no_grad()
    def redraw_features(self) -> None:
        """Replace the random matrix :math:`\\mathbf{W}` by the next draw of the seeded sequence."""
        self.num_draws += 1
        self._draw()

    def _draw(self) -> None:
        generator = torch.Generator().manual_seed(self.seed + int(self.num_draws))
        fresh = orthogonal_gaussian_features(self.num_features, self.head_dim, generator)
        # A new tensor rather than an in-place copy: the old one may still be saved for a backward pass.
        self.projection = fresh.to(device=self.projection.device, dtype=self.projection.dtype)

    def _features(self, x: Tensor, batch: Tensor | None, size: int, is_query: bool) -> Tensor:
        """``(N, H, m)`` random features of queries or keys ``x`` ``(N, H, d)``, with the stabilising shifts of the
        softmax kernel (class docstring); ``size`` is the number of graphs."""
        x = x * self.head_dim**-0.25
        proj = x @ self.projection.T  # (N, H, m)
        if self.kernel == "relu":
            return (F.relu(proj) + self.relu_eps) / math.sqrt(self.num_features)
        log_phi = proj - x.pow(2).sum(-1, keepdim=True) / 2  # (N, H, m)
        if is_query:
            shift = log_phi.detach().amax(dim=-1, keepdim=True)  # (N, H, 1)
        elif batch is None:
            shift = log_phi.detach().amax(dim=(0, 2), keepdim=True)  # (1, H, 1)
        else:
            per_node = log_phi.detach().amax(dim=-1)  # (N, H)
            shift = scatter(per_node, batch, dim=0, dim_size=size, reduce="max").index_select(0, batch).unsqueeze(-1)
        return torch.exp(log_phi - shift) / math.sqrt(self.num_features)

    def forward(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        """Attend within each graph in linear time; returns ``(N, dim)`` in the row order of ``x``."""
        check_mixer_inputs(type(self).__name__, x, batch, self.dim)
        if self.training:
            if self.redraw is not None and self._training_calls > 0 and self._training_calls % self.redraw == 0:
                self.redraw_features()
            self._training_calls += 1
        num_nodes, heads, head_dim = x.size(0), self.num_heads, self.head_dim
        if num_nodes == 0:
            return self.out_proj(x)
        if batch is not None:
            batch = batch.long()
        size = num_graphs(batch) if batch is not None else 1
        q, k, v = self.in_proj(x).view(num_nodes, 3, heads, head_dim).unbind(1)  # each (N, H, d)
        phi_q = self._features(q, batch, size, is_query=True)  # (N, H, m)
        phi_k = self._features(k, batch, size, is_query=False)
        # A column of ones turns the denominator into one more value channel.
        v_ext = torch.cat([v, v.new_ones(num_nodes, heads, 1)], dim=-1)  # (N, H, d + 1)
        if batch is None:
            kv = torch.einsum("nhm,nhe->hme", phi_k, v_ext)  # (H, m, d + 1)
            out = torch.einsum("nhm,hme->nhe", phi_q, kv)  # (N, H, d + 1)
        else:
            kv = phi_k.unsqueeze(-1) * v_ext.unsqueeze(-2)  # (N, H, m, d + 1)
            kv = segment_csr(kv, sequence_offsets(batch, num_nodes, size))  # (B, H, m, d + 1)
            out = torch.einsum("nhm,nhme->nhe", phi_q, kv.index_select(0, batch))  # (N, H, d + 1)
        num, den = out[..., :head_dim], out[..., head_dim:]
        out = num / den.clamp_min(self.denominator_floor)  # (N, H, d)
        return self.out_proj(out.reshape(num_nodes, self.dim))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.dim}, num_heads={self.num_heads}, "
            f"num_features={self.num_features}, kernel={self.kernel!r})"
        )
