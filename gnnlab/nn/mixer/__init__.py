"""Global mixers: token mixing across all nodes of each graph, with one signature.

Every mixer is built as ``Mixer(dim, ...)`` and called as ``mixer(x, batch=None)``, mapping node
features ``(N, dim)`` to ``(N, dim)`` with ``batch`` the sorted ``(N,)`` graph id of each node
(:obj:`None` for a single graph); nodes of different graphs never interact. See
:class:`GlobalMixer` for the full contract. A mixer that reads the graph structure (Graph-Mamba's
degree ordering) also takes ``edge_index=``.
"""
from gnnlab.nn.mixer.attention import MultiheadAttentionMixer
from gnnlab.nn.mixer.base import GlobalMixer, check_mixer_inputs
from gnnlab.nn.mixer.mamba import GraphMambaMixer
from gnnlab.nn.mixer.performer import PerformerMixer

__all__ = ["GlobalMixer", "GraphMambaMixer", "MultiheadAttentionMixer", "PerformerMixer", "check_mixer_inputs"]
