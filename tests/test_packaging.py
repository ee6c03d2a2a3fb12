"""The configs ship inside a non-editable wheel and are found from there."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_configs_and_composes(tmp_path):
    env = dict(os.environ, GNNLAB_NO_EXTENSION="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, env=env, capture_output=True, timeout=600,
    )
    wheel = next((tmp_path / "dist").glob("gnnlab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gnnlab/conf/train.yaml" in names
    assert "gnnlab/conf/experiment/planetoid/gcn_cora.yaml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Run from an unrelated folder with only the unpacked wheel on the path: the source tree is not visible.
    code = (
        "import gnnlab, gnnlab.cli as c\n"
        "assert str(c.config_dir()).startswith(%r), c.config_dir()\n"
        "from hydra import compose, initialize_config_dir\n"
        "with initialize_config_dir(str(c.config_dir()), version_base='1.3'):\n"
        "    cfg = compose('train', overrides=['experiment=planetoid/gcn_cora'])\n"
        "print(cfg.model._target_)\n" % str(site)
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=dict(env, PYTHONPATH=str(site)), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("gnnlab.models.ConvStack")
