"""Encoders of positional and structural encodings (what every one does: :mod:`gnnlab.nn.pe.base`).

=====================  ===========================  ======================================
``pe=`` config         transform (precompute)       encoder
=====================  ===========================  ======================================
``lappe``              ``LaplacianEigenpairs``      :class:`LapPEDeepSet`
``lappe_linear``       ``LaplacianEigenpairs``      :class:`LapPELinear`
``lappe_transformer``  ``LaplacianEigenpairs``      :class:`LapPETransformer`
``rwse``               ``RandomWalkSE``             :class:`MLPPEEncoder`
``signnet``            ``LaplacianEigenpairs``      :class:`SignNetEncoder`
``spe``                ``LaplacianEigenpairs``      :class:`SPEEncoder`
``fastrp``             ``FastRP``                   :class:`MLPPEEncoder`
``hac``                ``HACTree``                  :class:`HierarchicalPEEncoder`
=====================  ===========================  ======================================
"""
from gnnlab.nn.pe.base import random_sign_flip
from gnnlab.nn.pe.hac import HierarchicalPEEncoder
from gnnlab.nn.pe.lappe import LapPEBase, LapPEDeepSet, LapPELinear, LapPETransformer
from gnnlab.nn.pe.mlp import MLPPEEncoder
from gnnlab.nn.pe.signnet import SignNetEncoder
from gnnlab.nn.pe.spe import SPEEncoder

__all__ = ["HierarchicalPEEncoder", "LapPEBase", "LapPEDeepSet", "LapPELinear", "LapPETransformer", "MLPPEEncoder",
           "SignNetEncoder", "SPEEncoder", "random_sign_flip"]
