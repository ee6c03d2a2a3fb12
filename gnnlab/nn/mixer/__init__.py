"""Global mixers: token mixing across all nodes of each graph, built as ``Mixer(dim, ...)`` and called as
``mixer(x, batch=None)`` (the contract: :class:`GlobalMixer`)."""
from gnnlab.nn.mixer.attention import MultiheadAttentionMixer
from gnnlab.nn.mixer.base import GlobalMixer, check_mixer_inputs
from gnnlab.nn.mixer.mamba import GraphMambaMixer
from gnnlab.nn.mixer.performer import PerformerMixer

__all__ = ["GlobalMixer", "GraphMambaMixer", "MultiheadAttentionMixer", "PerformerMixer", "check_mixer_inputs"]
