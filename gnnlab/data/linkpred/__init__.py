"""Link-prediction data: the splits (:mod:`.splits`) and their batches (:mod:`.datamodule`)."""
from gnnlab.data.linkpred.splits import (OGBL_DDI_DIR, LinkSplit, ncn_random_split, ogbl_ddi_split, ogbl_split,
                                         planetoid_link_split)
from gnnlab.data.linkpred.datamodule import LinkBatch, LinkDataModule, sample_negative_pairs

__all__ = ["LinkSplit", "ncn_random_split", "planetoid_link_split", "ogbl_ddi_split", "ogbl_split", "OGBL_DDI_DIR",
           "LinkBatch", "LinkDataModule", "sample_negative_pairs"]
