"""Positional and structural encodings precomputed per graph, cached with the dataset.

Each transform is a PyG ``BaseTransform`` (``forward(data) -> data``) that writes node-level float32
attributes named after its ``attr`` and has a ``cache_key`` naming every parameter, which
:func:`precompute` uses to cache a whole dataset's output in one file:

- :class:`LaplacianEigenpairs`: ``{attr}_vec`` and ``{attr}_val``, the smallest (non-trivial)
  Laplacian eigenpairs (LapPE, SignNet, SPE);
- :class:`RandomWalkSE`: ``{attr}``, random-walk return probabilities (RWSE);
- :class:`FastRP`: ``{attr}``, FastRP random-projection embeddings;
- :class:`KronReduction`: the graph pyramid of ECC (per level: kept nodes, Kron-reduced Laplacian as
  weighted edges), read by :class:`gnnlab.models.ECC`;
- :class:`HACTree`: ``{attr}_index`` (int64, the hierarchical affinity clustering tree, batched as
  node indices) and ``{attr}_pe`` (its hierarchical positional encoding), read by GSM++.

Nothing random is frozen into the cache except FastRP's seeded projection: eigenvector sign flips
belong to training time (the encoders in ``gnnlab.nn.pe``). :class:`gnnlab.data.DataModule` applies
these through its ``pe_transforms`` argument, and reads the training split's in-degree statistics
(:func:`degree_histogram`, :func:`degree_statistics`) into its dataset facts.
"""
from gnnlab.transforms.degree import degree_histogram, degree_statistics
from gnnlab.transforms.cache import CACHE_FORMAT, PrecomputedDataset, dataset_fingerprint, precompute
from gnnlab.transforms.hac import HACTree, affinity_clustering, hac_positional_encoding
from gnnlab.transforms.kron import KronReduction, kron_reduction
from gnnlab.transforms.fastrp import FastRP, fastrp_embedding, very_sparse_random_projection
from gnnlab.transforms.laplacian import NORMALIZATIONS, LaplacianEigenpairs, laplacian_eigenpairs
from gnnlab.transforms.random_walk import RandomWalkSE, random_walk_diagonals, random_walk_diagonals_dense

__all__ = [
    "LaplacianEigenpairs",
    "laplacian_eigenpairs",
    "NORMALIZATIONS",
    "RandomWalkSE",
    "random_walk_diagonals",
    "random_walk_diagonals_dense",
    "FastRP",
    "fastrp_embedding",
    "very_sparse_random_projection",
    "HACTree",
    "KronReduction",
    "kron_reduction",
    "affinity_clustering",
    "hac_positional_encoding",
    "degree_histogram",
    "degree_statistics",
    "precompute",
    "PrecomputedDataset",
    "dataset_fingerprint",
    "CACHE_FORMAT",
]
