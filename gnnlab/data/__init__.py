"""Datasets and data loading.

Loaders return ``{'train': ..., 'val': ..., 'test': ...}`` mappings of PyG datasets, which
:class:`DataModule` turns into seeded data loaders. Every loader writes below a data root (created on
demand, see :func:`prepare_root`) and first copies raw files from the folder of offline copies it is
given (``offline_dir``, else ``$GNNLAB_SHARED_DATA``: :func:`shared_data_dir`), so no download is
needed on machines without internet.
"""
from gnnlab.data._offline import copy_offline, prepare_root, shared_data_dir
from gnnlab.data.aqsol import load_aqsol
from gnnlab.data.datamodule import DataModule, UnknownSplitError, dataset_facts
from gnnlab.data.linkpred import (
    LinkDataModule,
    LinkSplit,
    ncn_random_split,
    ogbl_ddi_split,
    ogbl_split,
    planetoid_link_split,
)
from gnnlab.data.lrgb import PeptidesDataset, load_peptides
from gnnlab.data.planetoid import load_planetoid
from gnnlab.data.sampled import LayerwiseBatch, SampledLinkDataModule, SampledNodeDataModule
from gnnlab.data.sampling import GnnlabNeighborSampler, link_neighbor_loader, make_neighbor_sampler, node_neighbor_loader
from gnnlab.data.sbm import SBMDataset, generate_sbm, load_sbm
from gnnlab.data.tu import load_tu
from gnnlab.data.zinc import load_zinc

__all__ = [
    "DataModule",
    "SampledNodeDataModule",
    "SampledLinkDataModule",
    "GnnlabNeighborSampler",
    "LayerwiseBatch",
    "make_neighbor_sampler",
    "node_neighbor_loader",
    "link_neighbor_loader",
    "dataset_facts",
    "UnknownSplitError",
    "SBMDataset",
    "generate_sbm",
    "load_sbm",
    "load_planetoid",
    "load_tu",
    "load_aqsol",
    "load_zinc",
    "load_peptides",
    "PeptidesDataset",
    "shared_data_dir",
    "prepare_root",
    "copy_offline",
    "LinkDataModule",
    "LinkSplit",
    "ncn_random_split",
    "planetoid_link_split",
    "ogbl_ddi_split",
    "ogbl_split",
]
