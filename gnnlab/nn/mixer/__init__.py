"""Global mixers: token mixing across all nodes of each graph, with one signature.

Every mixer is built as ``Mixer(dim, ...)`` and called as ``mixer(x, batch=None)``, mapping node
features ``(N, dim)`` to ``(N, dim)`` with ``batch`` the sorted ``(N,)`` graph id of each node
(:obj:`None` for a single graph); nodes of different graphs never interact. See
:class:`GlobalMixer` for the full contract.
"""
from gnnlab.nn.mixer.attention import MultiheadAttentionMixer
from gnnlab.nn.mixer.base import GlobalMixer, check_mixer_inputs
from gnnlab.nn.mixer.performer import PerformerMixer

__all__ = ["GlobalMixer", "MultiheadAttentionMixer", "PerformerMixer", "check_mixer_inputs"]
