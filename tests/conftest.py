"""Shared fixtures: the op backend switch and the offline-data probe."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import gnnlab.ops
from gnnlab.data._offline import ENV_VAR

# The test suite reads the offline dataset copies from ../shared/data beside the checkout when that folder
# exists and GNNLAB_SHARED_DATA names no other (an empty value keeps them off). Child processes (the
# command-line tests) inherit it. Without the folder, the tests that need the copies skip.
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if ENV_VAR not in os.environ and _SHARED.is_dir():
    os.environ[ENV_VAR] = str(_SHARED)


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
