"""Build ZINC-12k's raw files from the offline copy, for machines without internet.

    python scripts/build_zinc.py --root DATA_ROOT --offline-dir FOLDER

The offline copy of ZINC is a builder script, FOLDER/ZINC/build_zinc_subset.py: from the ZINC250k SMILES
and the subset index files it writes OUT/raw/{train,val,test}.pickle + .index in the layout PyG's ZINC
reads (it needs rdkit and networkx; about 20 s). This command runs it into a temporary folder under
DATA_ROOT/ZINC/ and moves the files into DATA_ROOT/ZINC/raw/, where `load_zinc` / `data=zinc` then find
them. Files already in raw/ are kept. The pickles hold the subset molecules only, so raw/ also gets the
marker file BUILT_OFFLINE_SUBSET_ONLY and full ZINC refuses that folder.

The builder runs in its own interpreter: it is a standalone script that changes the interpreter it runs
in (sys.path, __main__, RDKit's logger) and exits through sys.exit on errors.

Defaults: --root is $GNNLAB_DATA_DIR, else $GNNLAB_ROOT/datasets, else ./datasets (as paths.data_dir);
--offline-dir is $GNNLAB_SHARED_DATA. Exit status 0 when the raw files are there afterwards.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from gnnlab.data._offline import prepare_root
from gnnlab.data.zinc import OFFLINE_BUILDER, OFFLINE_MARKER, RAW_FILES


def run_builder(script: Path, out: Path) -> None:
    """Run the offline builder with this interpreter; raise a readable error when it fails."""
    # cwd is the (writable) temporary folder, so nothing the script might write lands in the offline copy.
    proc = subprocess.run(
        [sys.executable, str(script), str(out)], cwd=out, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        return
    missing = re.search(r"No module named '([^']+)'", proc.stderr)
    if missing:
        module = missing.group(1).split(".")[0]
        raise ModuleNotFoundError(
            f"building ZINC-12k from the offline copy ({script}) needs the '{module}' package: "
            f"`pip install {module}` (or install gnnlab[chem]); with network access, PyG downloads ZINC instead"
        )
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
    raise RuntimeError(
        f"building ZINC-12k from the offline copy failed ({script} exited with {proc.returncode}):\n{tail}"
    )


def build(root: str | os.PathLike, offline_dir: str | os.PathLike) -> bool:
    """Fill ``root/ZINC/raw`` with the builder's output when files are missing; return whether it ran.

    Raises ``FileNotFoundError`` when ``offline_dir`` holds no ZINC builder.
    """
    script = Path(offline_dir).expanduser().resolve() / OFFLINE_BUILDER
    if not script.is_file():
        raise FileNotFoundError(f"no ZINC builder at {script}: --offline-dir must name the offline copies folder")
    base = prepare_root(root) / "ZINC"
    raw = base / "raw"
    if all((raw / name).is_file() for name in RAW_FILES):
        return False
    print(f"building ZINC-12k raw files in {raw} from {script.parent} (about 20 s)", file=sys.stderr)
    base.mkdir(exist_ok=True)
    # Build into a private temporary folder, then move the files in: an interrupted build must not
    # leave a partial raw folder, and two processes building at once must not collide.
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".zinc-build-"))
    try:
        run_builder(script, tmp)
        raw.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            src, dest = tmp / "raw" / name, raw / name
            if not src.is_file():
                raise RuntimeError(f"the offline ZINC builder {script} did not write raw/{name}")
            # The index files keep the read-only mode of the offline copy; make ours writable.
            src.chmod(src.stat().st_mode | stat.S_IWUSR)
            if not dest.exists():
                os.replace(src, dest)
        (raw / OFFLINE_MARKER).write_text(
            "These raw files were built from the offline ZINC copy and hold the ZINC-12k subset only.\n"
            "They serve ZINC(subset=True); for the full ZINC, use another data root (or delete this\n"
            "folder) so that PyG downloads the complete files.\n"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    default_root = env("GNNLAB_DATA_DIR") or str(Path(env("GNNLAB_ROOT") or ".") / "datasets")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=default_root, help=f"data root (default: {default_root})")
    parser.add_argument("--offline-dir", default=env("GNNLAB_SHARED_DATA") or None,
                        help="offline copies folder (default: $GNNLAB_SHARED_DATA)")
    args = parser.parse_args(argv)
    if not args.offline_dir:
        parser.error("--offline-dir is required when GNNLAB_SHARED_DATA is not set")
    try:
        built = build(args.root, args.offline_dir)
    except (OSError, RuntimeError, ImportError) as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 1
    raw = Path(args.root) / "ZINC" / "raw"
    print(f"ZINC-12k raw files {'built in' if built else 'already in'} {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
