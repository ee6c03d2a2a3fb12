"""Shared fixtures: the op backend switch and the offline-data probe."""
from __future__ import annotations

import os

import pytest

import gnnlab.ops


def _backends():
    return ["torch", "extension"]


@pytest.fixture(params=_backends())
def op_backend(request):
    """Run a test once with the plain-torch ops and once with the compiled extension.

    The extension case skips when ``gnnlab._C`` is not built, unless ``GNNLAB_REQUIRE_EXTENSION=1``
    (set by CI), where a missing extension is a failure.
    """
    name = request.param
    if name == "extension" and not gnnlab.ops.extension_available():
        reason = f"gnnlab._C not built: {gnnlab.ops.extension_error()}"
        if os.environ.get("GNNLAB_REQUIRE_EXTENSION", "0") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with gnnlab.ops.backend_scope(name):
        yield name
