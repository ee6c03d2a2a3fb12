"""Training: the loop (:class:`Trainer`), tasks, metrics, checkpoints and loggers."""
from gnnlab.train.trainer import FitResult, Trainer

__all__ = ["FitResult", "Trainer"]
