"""Encoder of the hierarchical positional encoding stored by :class:`gnnlab.transforms.HACTree`."""
from __future__ import annotations

from gnnlab.nn.pe.mlp import MLPPEEncoder

__all__ = ["HierarchicalPEEncoder"]


class HierarchicalPEEncoder(MLPPEEncoder):
    r"""Batch norm + MLP over the hierarchical PE ``data.hac_pe`` ``(N, 2L)`` of a HAC tree with ``L`` levels.

    The encoding (per level: the node's normalised rank among its siblings, and the log of their
    number; :func:`gnnlab.transforms.hac.hac_positional_encoding`) is the hierarchical PE of GSM++
    (Behrouz et al., arXiv 2411.15671, Fig. 2), in the form chosen here; this class only fixes its
    width from ``num_levels``, so a config names the levels once.

    Args:
        num_levels (int): ``L``, the ``num_levels`` of the :class:`~gnnlab.transforms.HACTree` transform.
        out_channels (int): Width of the output.
        attr (str, optional): Attribute holding the encoding. (default: :obj:`'hac_pe'`)
        **kwargs: ``num_layers``, ``hidden_channels``, ``batch_norm`` of :class:`MLPPEEncoder`.

    Shapes:
        - **input:** ``data.{attr}``, :math:`(N, 2L)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, num_levels: int, out_channels: int, attr: str = "hac_pe", **kwargs):
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
            raise ValueError(f"HierarchicalPEEncoder: num_levels must be an integer >= 1, got {num_levels!r}")
        kwargs.setdefault("transform", "HACTree")
        super().__init__(2 * num_levels, out_channels, attr=attr, **kwargs)
        self.num_levels = num_levels
