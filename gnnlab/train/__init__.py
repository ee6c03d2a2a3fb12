"""Training: the loop (:class:`Trainer`), tasks, metrics, checkpoints and loggers."""
from gnnlab.train.trainer import DivergenceError, FitResult, Trainer

__all__ = ["DivergenceError", "FitResult", "Trainer"]
