"""The published cells: the benchmark table files ``conf/table/<benchmark>.yaml``, loaded and checked.

These files are the only place published values are written (format: :mod:`gnnlab.benchmark_table`). A
run's experiment finds its cell here (:func:`published_cell`).
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from gnnlab.errors import ConfigError
from gnnlab.files import config_dir

ROW_KEYS = {"experiment", "cell", "table", "paper", "published", "published_std", "tolerance", "note", "overrides",
            "model_selection"}
TABLE_KEYS = {"title", "paper", "seeds", "overrides", "rows"}


def tables_dir() -> Path:
    """The shipped benchmark tables, ``conf/table``."""
    return config_dir() / "table"


def table_path(name: str | Path) -> Path:
    """``name`` as a path to a ``.yaml`` file, or the benchmark ``conf/table/<name>.yaml``."""
    path = Path(name)
    if path.suffix == ".yaml":
        if not path.is_file():
            raise FileNotFoundError(f"no benchmark table file '{path}'")
        return path
    path = tables_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in tables_dir().glob("*.yaml")))
        raise FileNotFoundError(f"no benchmark {str(name)!r}: known benchmarks are {known}")
    return path


def load_table(name: str | Path) -> dict:
    """The benchmark's table file as a dict, checked: known keys, rows with an experiment, a cell and a value."""
    path = table_path(name)
    table = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(table, dict) or not table.get("rows"):
        raise ConfigError(f"{path}: a benchmark table needs a non-empty 'rows' list")
    if unknown := set(table) - TABLE_KEYS:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(TABLE_KEYS)})")
    for i, row in enumerate(table["rows"]):
        if unknown := set(row) - ROW_KEYS:
            raise ConfigError(f"{path}: row {i} has unknown keys {sorted(unknown)} (known: {sorted(ROW_KEYS)})")
        for key in ("experiment", "cell", "table", "published"):
            if key not in row:
                raise ConfigError(f"{path}: row {i} ({row.get('experiment', '?')}) has no {key!r}")
        if row["published"] is None and not row.get("note"):
            raise ConfigError(f"{path}: row {i} ({row['experiment']}) has no published value and no note saying why")
        row.setdefault("paper", table.get("paper", ""))
    experiments = [row["experiment"] for row in table["rows"]]
    if len(set(experiments)) != len(experiments):
        raise ConfigError(f"{path}: an experiment appears in two rows ({experiments})")
    table.setdefault("seeds", 1)
    table.setdefault("overrides", [])
    table["name"] = path.stem
    return table


def cell_of(row: dict) -> dict:
    """What a row says about its published cell (paper, table, cell, value, std, tolerance, note)."""
    return {k: v for k, v in row.items() if k not in ("experiment", "overrides", "model_selection")}


def published_cell(experiment: str) -> dict:
    """The published cell of ``experiment`` from the benchmark tables (``{}`` when no table has it)."""
    for path in sorted(tables_dir().glob("*.yaml")):
        for row in load_table(path)["rows"]:
            if row["experiment"] == experiment:
                return cell_of(row)
    return {}
