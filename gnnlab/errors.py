"""Errors about a user's input, which the command-line tools report as one line.

Anything else (a ``TypeError`` in a layer, an ``IndexError`` in a transform) is a bug in code and keeps
its full traceback. Both classes are ``ValueError`` subclasses, so callers that catch ``ValueError``
keep working.
"""
from __future__ import annotations

__all__ = ["GnnlabError", "ConfigError", "DataError", "DatasetUnavailableError"]


class GnnlabError(Exception):
    """Base of the errors that describe a problem with the user's input, not with the code."""


class ConfigError(GnnlabError, ValueError):
    """A configuration value is missing, of the wrong type or outside its allowed range.

    The message names the key (``trainer.max_epochs``) or argument, the value given and what is expected.
    """


class DataError(GnnlabError, ValueError):
    """A dataset is unusable: invalid values (NaN features, out-of-range edges or labels) or bad files.

    The message names the dataset and, where it applies, the graph and the tensor.
    """


class DatasetUnavailableError(DataError):
    """A dataset is neither in the data root nor in the offline copies, and could not be downloaded."""
