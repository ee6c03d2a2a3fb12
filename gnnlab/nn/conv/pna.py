"""Principal neighbourhood aggregation convolution of Corso et al."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

from gnnlab.nn.conv.base import check_inputs
from gnnlab.ops import Graph, aggregate, reduce_messages

PNA_AGGREGATORS = ("mean", "min", "max", "std", "var", "sum")
PNA_SCALERS = ("identity", "amplification", "attenuation", "linear", "inverse_linear")

# Variances at or below this give a standard deviation of exactly 0 (and no gradient), as in
# torch_geometric.nn.aggr.StdAggregation.
_STD_EPS = 1e-5


def _names(layer: str, kind: str, values: str | Sequence[str], allowed: tuple[str, ...]) -> list[str]:
    names = [values] if isinstance(values, str) else list(values)
    if not names:
        raise ValueError(f"{layer}: {kind} must name at least one of {allowed}")
    for name in names:
        if name not in allowed:
            raise ValueError(f"{layer}: unknown {kind[:-1]} {name!r}; choose from {allowed}")
    return names


def _activation(act: str | Callable[..., torch.nn.Module] | None, act_kwargs: dict | None) -> torch.nn.Module:
    if act is None:
        return torch.nn.Identity()
    if isinstance(act, str):
        from torch_geometric.nn.resolver import activation_resolver

        return activation_resolver(act, **(act_kwargs or {}))
    return act(**(act_kwargs or {}))


class PNAConv(torch.nn.Module):
    r"""Principal neighbourhood aggregation from `"Principal Neighbourhood Aggregation for Graph Nets"
    <https://arxiv.org/abs/2004.05718>`_ (Corso et al., NeurIPS 2020).

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W} \, \gamma_{\mathbf{\Theta}} \Big(
        \mathbf{x}_i, \underset{j \in \mathcal{N}(i)}{\bigoplus}
        h_{\mathbf{\Theta}}\big( \mathbf{x}_i, \mathbf{x}_j, \mathbf{e}_{j,i} \big) \Big) + \mathbf{b},
        \qquad
        \bigoplus = \underbrace{\begin{bmatrix} 1 \\ S(d_i, \alpha=1) \\ S(d_i, \alpha=-1)
        \end{bmatrix}}_{\text{scalers}} \otimes
        \underbrace{\begin{bmatrix} \mu \\ \sigma \\ \max \\ \min \end{bmatrix}}_{\text{aggregators}},
        \qquad
        S(d, \alpha) = \left( \frac{\log(d + 1)}{\delta} \right)^{\alpha},

    where :math:`h_{\mathbf{\Theta}}` (``pre_nns``) is applied to the concatenation
    :math:`[\mathbf{x}_i \,\Vert\, \mathbf{x}_j \,\Vert\, \mathbf{e}_{j,i}]`,
    :math:`\gamma_{\mathbf{\Theta}}` (``post_nns``) to :math:`[\mathbf{x}_i \,\Vert\, \bigoplus \ldots]`,
    :math:`d_i` is the in-degree of :math:`i` (duplicate edges and self loops count) and
    :math:`\delta` the average of :math:`\log(d + 1)` over the nodes of the training graphs.

    The semantics are those of :class:`torch_geometric.nn.PNAConv` (same parameter names, so a
    state dict copies over; PyG keeps the two degree averages in ``aggr_module``):

    * ``std`` is :math:`\sqrt{\max(\mathrm{var}, 10^{-5})}`, set to exactly 0 where
      :math:`\mathrm{var} \le 10^{-5}`, with :math:`\mathrm{var} = \mathrm{mean}(m^2) - \mathrm{mean}(m)^2`
      (as :class:`torch_geometric.nn.aggr.StdAggregation` in PyG 2.8; the paper and older PyG
      releases use :math:`\sqrt{\mathrm{ReLU}(\mathrm{var}) + 10^{-5}}`).
    * A node without incoming edges aggregates to 0 under every aggregator.
    * ``amplification`` is :math:`\log(d+1)/\delta`, ``attenuation`` :math:`\delta/\log(\max(d,1)+1)`,
      ``linear`` :math:`d/\bar d`, ``inverse_linear`` :math:`\bar d/\max(d,1)` (:math:`\bar d` the
      average degree): the inverse scalers clamp the degree to at least 1.
    * The output is concatenated over scalers, then aggregators, then features; each tower ``t``
      sees its own slice of ``x`` (``divide_input``) or all of it, and ``lin`` mixes the towers.
    * Edge features first pass through ``edge_encoder`` (``Linear(edge_dim, F_in)``), shared by
      the towers.

    **Aggregation.** The first pre-layer is split into the blocks acting on
    :math:`\mathbf{x}_i`, :math:`\mathbf{x}_j` and :math:`\mathbf{e}_{j,i}`:
    :math:`m_{ij} = a_i + p_j\,(+ c_{ij})` with :math:`a_i = \mathbf{W}_a \mathbf{x}_i + \mathbf{b}`
    and :math:`p_j = \mathbf{W}_b \mathbf{x}_j`. With ``pre_layers == 1`` and no edge features
    no per-edge tensor is formed: :func:`gnnlab.ops.aggregate` reduces :math:`p_j` (and
    :math:`p_j^2`) and :math:`a_i` is added afterwards. This is exact in real arithmetic (for
    max/min even bitwise, rounding being monotone): a constant shift commutes with mean, max and
    min, the sum gains :math:`d_i a_i`, and the variance is shift invariant,
    :math:`\mathrm{var}_j(a_i + p_j) = \mathrm{mean}_j(p_j^2) - \mathrm{mean}_j(p_j)^2`, so it is
    computed from :math:`p` alone (this also avoids the cancellation :math:`a_i` would add);
    nodes without edges are masked to 0. Otherwise the messages :math:`[E, \text{towers}, F_{in}]`
    are materialised as :math:`a_i + p_j + c_{ij}`, passed through the remaining pre-layers and
    reduced with :func:`gnnlab.ops.reduce_messages`. Results agree with PyG up to float rounding.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node feature (divisible by ``towers``).
        aggregators (list of str, optional): Any of ``"mean"``, ``"min"``, ``"max"``, ``"std"``,
            ``"var"``, ``"sum"``. (default: ``["mean", "min", "max", "std"]``)
        scalers (list of str, optional): Any of ``"identity"``, ``"amplification"``,
            ``"attenuation"``, ``"linear"``, ``"inverse_linear"``.
            (default: ``["identity", "amplification", "attenuation"]``)
        avg_log_degree (float): :math:`\delta`, the average of :math:`\log(d+1)` over the in-degrees
            of the training nodes (the dataset fact ``data.avg_log_degree``, computed by
            :func:`gnnlab.transforms.degree_statistics`).
        avg_degree (float, optional): :math:`\bar d`, with ``avg_log_degree``; needed only by the
            ``linear`` and ``inverse_linear`` scalers.
        edge_dim (int, optional): Width of ``edge_attr``; if given, edge features enter the
            messages and are required in :meth:`forward`. (default: :obj:`None`)
        towers (int, optional): Number of towers. (default: :obj:`1`)
        pre_layers (int, optional): Linear layers of :math:`h_{\mathbf{\Theta}}`. (default: :obj:`1`)
        post_layers (int, optional): Linear layers of :math:`\gamma_{\mathbf{\Theta}}`. (default: :obj:`1`)
        divide_input (bool, optional): Split the input features between the towers instead of
            giving each tower all of them. (default: :obj:`False`)
        act (str or callable, optional): Activation between the pre-/post-layers: a name known to
            PyG's ``activation_resolver`` or a module factory. (default: :obj:`"relu"`)
        act_kwargs (dict, optional): Arguments of the activation. (default: :obj:`None`)
        train_norm (bool, optional): Learn :math:`\delta` and :math:`\bar d`. (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, the batch's :class:`~gnnlab.ops.Graph`,
          edge features :math:`(|\mathcal{E}|, D)` in the order of ``graph.edge_index`` when
          ``edge_dim`` is set (``None`` otherwise)
        - **output:** ``(node features, edge features)``: :math:`(|\mathcal{V}|, F_{out})` and the given
          ``edge_attr`` unchanged (``None`` without ``edge_dim``) (the layer contract,
          :mod:`gnnlab.nn.conv.base`)
    """

    supports_edge_attr: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggregators: str | Sequence[str] = ("mean", "min", "max", "std"),
        scalers: str | Sequence[str] = ("identity", "amplification", "attenuation"),
        avg_log_degree: float | None = None,
        avg_degree: float | None = None,
        edge_dim: int | None = None,
        towers: int = 1,
        pre_layers: int = 1,
        post_layers: int = 1,
        divide_input: bool = False,
        act: str | Callable[..., torch.nn.Module] | None = "relu",
        act_kwargs: dict | None = None,
        train_norm: bool = False,
    ):
        super().__init__()
        name = type(self).__name__
        self.aggregators = _names(name, "aggregators", aggregators, PNA_AGGREGATORS)
        self.scalers = _names(name, "scalers", scalers, PNA_SCALERS)
        for key, value in (("towers", towers), ("pre_layers", pre_layers), ("post_layers", post_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")
        if out_channels % towers != 0:
            raise ValueError(f"{name}: out_channels={out_channels} is not divisible by towers={towers}")
        if divide_input and in_channels % towers != 0:
            raise ValueError(
                f"{name}: with divide_input, in_channels={in_channels} must be divisible by towers={towers}"
            )
        if edge_dim is not None and (not isinstance(edge_dim, int) or edge_dim < 1):
            raise ValueError(f"{name}: edge_dim must be a positive integer or None, got {edge_dim!r}")
        self.init_avg_deg_lin, self.init_avg_deg_log = self._degree_averages(avg_log_degree, avg_degree)

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.supports_edge_attr = edge_dim is not None
        self.towers = towers
        self.pre_layers = pre_layers
        self.post_layers = post_layers
        self.divide_input = divide_input
        self.F_in = in_channels // towers if divide_input else in_channels
        self.F_out = out_channels // towers

        if train_norm:
            self.avg_deg_lin = torch.nn.Parameter(torch.empty(1))
            self.avg_deg_log = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("avg_deg_lin", torch.empty(1))
            self.register_buffer("avg_deg_log", torch.empty(1))
        self.edge_encoder = torch.nn.Linear(edge_dim, self.F_in) if edge_dim is not None else None
        self.pre_nns = torch.nn.ModuleList()
        self.post_nns = torch.nn.ModuleList()
        post_in = (len(self.aggregators) * len(self.scalers) + 1) * self.F_in
        for _ in range(towers):
            pre_in = (3 if edge_dim is not None else 2) * self.F_in
            modules: list[torch.nn.Module] = [torch.nn.Linear(pre_in, self.F_in)]
            for _ in range(pre_layers - 1):
                modules += [_activation(act, act_kwargs), torch.nn.Linear(self.F_in, self.F_in)]
            self.pre_nns.append(torch.nn.Sequential(*modules))
            modules = [torch.nn.Linear(post_in, self.F_out)]
            for _ in range(post_layers - 1):
                modules += [_activation(act, act_kwargs), torch.nn.Linear(self.F_out, self.F_out)]
            self.post_nns.append(torch.nn.Sequential(*modules))
        self.lin = torch.nn.Linear(out_channels, out_channels)
        self.reset_parameters()

    def _degree_averages(self, avg_log_degree: float | None, avg_degree: float | None) -> tuple[float, float]:
        name = type(self).__name__
        if avg_log_degree is None:
            raise ValueError(
                f"{name}: avg_log_degree is required: the mean log(d + 1) over the in-degrees of the training "
                "nodes (gnnlab.transforms.degree_statistics; gnnlab-train fills it from the dataset)"
            )
        avg_log = float(avg_log_degree)
        avg_lin = math.nan if avg_degree is None else float(avg_degree)
        if math.isnan(avg_lin) and {"linear", "inverse_linear"} & set(self.scalers):
            raise ValueError(f"{name}: the linear and inverse_linear scalers need avg_degree besides avg_log_degree")
        if not math.isnan(avg_lin) and not avg_lin > 0:
            raise ValueError(f"{name}: avg_degree must be positive, got {avg_degree}")
        if not avg_log > 0 or math.isinf(avg_log):
            raise ValueError(f"{name}: the average log-degree must be positive and finite, got {avg_log}")
        return avg_lin, avg_log

    def reset_parameters(self) -> None:
        """Re-initialise every linear layer and reset the degree averages to their initial values."""
        with torch.no_grad():
            self.avg_deg_lin.fill_(self.init_avg_deg_lin)
            self.avg_deg_log.fill_(self.init_avg_deg_log)
        for module in self.modules():  # edge_encoder, pre_nns, post_nns, lin: in order of registration
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Apply the convolution; ``edge_attr`` ``[E, edge_dim]`` is required exactly when ``edge_dim`` is set."""
        edge_out = edge_attr
        edge_attr = check_inputs(self, x, graph, edge_attr, self.edge_dim, without=" (built without edge_dim)")

        n, towers, f = x.size(0), self.towers, self.F_in
        xt = x.reshape(n, towers, f) if self.divide_input else x.unsqueeze(1).expand(n, towers, f)  # (N, T, F)
        # First pre-layer of every tower, split into its x_i / x_j / e_ji blocks: (T, F, F) each.
        weight = torch.stack([nn[0].weight for nn in self.pre_nns])
        bias = torch.stack([nn[0].bias for nn in self.pre_nns])
        inp, spec = (xt, "ntf,tgf->ntg") if self.divide_input else (x, "nf,tgf->ntg")
        a = torch.einsum(spec, inp, weight[:, :, :f]) + bias  # target block + bias
        p = torch.einsum(spec, inp, weight[:, :, f : 2 * f])  # source block
        deg = graph.in_degree().to(x.dtype).view(n, 1, 1)

        if self.pre_layers == 1 and edge_attr is None:
            aggs = self._aggregate(p, lambda flat, how: aggregate(flat, graph, reduce=how), deg, a)
        else:
            edge_index = graph.edge_index  # original order, the order of edge_attr rows
            messages = a.index_select(0, edge_index[1].long()) + p.index_select(0, edge_index[0].long())  # (E, T, F)
            if edge_attr is not None:
                c = self.edge_encoder(edge_attr)  # (E, F), shared by the towers
                messages = messages + torch.einsum("ef,tgf->etg", c, weight[:, :, 2 * f :])
            if self.pre_layers > 1:
                messages = torch.stack([nn[1:](messages[:, t]) for t, nn in enumerate(self.pre_nns)], dim=1)
            aggs = self._aggregate(messages, lambda flat, how: reduce_messages(flat, graph, how), deg)

        out = torch.cat([aggs[name] for name in self.aggregators], dim=-1)  # (N, T, A * F)
        out = torch.cat([out * self._scale(scaler, deg) for scaler in self.scalers], dim=-1)  # (N, T, S * A * F)
        out = torch.cat([xt, out], dim=-1)
        out = torch.cat([nn(out[:, t]) for t, nn in enumerate(self.post_nns)], dim=1)  # (N, out)
        return self.lin(out), edge_out

    def _aggregate(self, values: Tensor, reduce: Callable[[Tensor, str], Tensor], deg: Tensor,
                   a: Tensor | None = None) -> dict[str, Tensor]:
        """Aggregators of the messages ``values`` ``[E, T, F]``, reduced by ``reduce(flat, how)``; with ``a``,
        of the messages ``a_i + p_j`` from reductions of ``values = p`` ``[N, T, F]`` alone."""
        n, (towers, f) = deg.size(0), values.shape[1:]
        wanted = set(self.aggregators)
        moments = wanted & {"mean", "sum", "std", "var"}
        has_edge = None if a is None else (deg > 0).to(a.dtype)
        aggs: dict[str, Tensor] = {}
        if moments:
            flat = values.reshape(values.size(0), towers * f)
            second = bool(moments & {"std", "var"})
            if second:
                flat = torch.cat([flat, flat * flat], dim=-1)
            sums = reduce(flat, "sum").view(n, -1, towers, f)
            total = sums[:, 0]
            mean = total / deg.clamp(min=1)
            aggs["sum"], aggs["mean"] = total, mean
            if a is not None and "sum" in wanted:  # the shift by a_i: d_i a_i for the sum, a_i for the others
                aggs["sum"] = total + deg * a
            if a is not None and "mean" in wanted:
                aggs["mean"] = mean + has_edge * a
            if second:  # var and std are shift invariant
                aggs.update(self._spread(sums[:, 1] / deg.clamp(min=1) - mean * mean))
        for how in wanted & {"max", "min"}:
            aggs[how] = reduce(values.reshape(values.size(0), towers * f), how).view(n, towers, f)
            if a is not None:
                aggs[how] = aggs[how] + has_edge * a
        return aggs

    @staticmethod
    def _spread(var: Tensor) -> dict[str, Tensor]:
        """``var`` and ``std`` from a variance, ``std`` as in :class:`torch_geometric.nn.aggr.StdAggregation`."""
        std = var.clamp(min=_STD_EPS).sqrt()
        return {"var": var, "std": std.masked_fill(std <= math.sqrt(_STD_EPS), 0.0)}

    def _scale(self, scaler: str, deg: Tensor) -> Tensor | float:
        """The factor of ``scaler`` for each node, ``[N, 1, 1]``."""
        if scaler == "identity":
            return 1.0
        if scaler == "amplification":
            return torch.log(deg + 1) / self.avg_deg_log
        if scaler == "attenuation":
            return self.avg_deg_log / torch.log(deg.clamp(min=1) + 1)
        if scaler == "linear":
            return deg / self.avg_deg_lin
        return self.avg_deg_lin / deg.clamp(min=1)  # inverse_linear

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, towers={self.towers}, "
            f"edge_dim={self.edge_dim})"
        )
