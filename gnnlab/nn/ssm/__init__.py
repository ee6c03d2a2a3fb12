"""State-space sequence blocks (Mamba) used by the sequence mixers."""
from gnnlab.nn.ssm.mamba import BiMamba, Mamba, positions_in_sequence

__all__ = ["BiMamba", "Mamba", "positions_in_sequence"]
