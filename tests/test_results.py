"""``results/`` holds only generated files, each naming the command that writes it, and no folders; every table's
summary (mean, std, count per cell) is that of its per-run CSV."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The first line each writer puts in its markdown (gnnlab-table, gnnlab-curves) or text (benchmarks/_report.py).
HEADERS = {".md": re.compile(r"Command: `(?P<command>[^`]+)`"), ".txt": re.compile(r"# command: (?P<command>.+)")}
WRITERS = re.compile(r"(gnnlab-table|gnnlab-curves) |(\w+=\S+ )*python (?P<script>benchmarks/\w+\.py) ")


def problems(folder: Path, root: Path = ROOT) -> list[str]:
    """What is wrong in ``folder``: subfolders, files without the command that writes them, unknown writers."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            found.append(f"{path.name}/: a folder (run folders belong under outputs/)")
            continue
        # A table's per-run CSV (<table>_seeds.csv) belongs to the table's markdown.
        stems = {path.stem, path.stem.removesuffix("_seeds")}
        header = next((path.with_name(stem + s) for stem in stems for s in HEADERS
                       if path.with_name(stem + s).is_file()), None)
        if path.suffix not in HEADERS:
            if header is None:
                found.append(f"{path.name}: no .md or .txt of the same name naming the command that writes it")
            continue
        lines = path.read_text().splitlines()
        match = HEADERS[path.suffix].fullmatch(lines[0]) if lines else None
        if match is None:
            found.append(f"{path.name}: the first line does not name the command that writes it")
            continue
        command = match["command"]
        writer = WRITERS.match(command)
        if writer is None or (writer["script"] and not (root / writer["script"]).is_file()):
            found.append(f"{path.name}: {command!r} is not gnnlab-table, gnnlab-curves or a benchmark script")
        if not re.search(rf"results/{re.escape(path.stem)}(\.\w+)?(\s|$)", command):
            found.append(f"{path.name}: {command!r} does not write results/{path.stem}")
    return found


def test_results_are_generated_and_flat():
    assert problems(ROOT / "results") == []


def test_problems_are_found(tmp_path):
    (tmp_path / "runs" / "0").mkdir(parents=True)
    (tmp_path / "typed.md").write_text("# Results typed by hand\n")
    (tmp_path / "orphan.csv").write_text("a,b\n1,2\n")
    (tmp_path / "other.md").write_text("Command: `gnnlab-table --from-dir x --out results/elsewhere.md`\n")
    (tmp_path / "made_up.txt").write_text("# command: python benchmarks/no_such_benchmark.py --out results/made_up\n")
    (tmp_path / "ok.md").write_text("Command: `gnnlab-curves run --metrics val/ap --out results/ok.png`\n")
    (tmp_path / "ok.png").write_bytes(b"\x89PNG")
    (tmp_path / "bench.txt").write_text("# command: OMP_NUM_THREADS=1 python benchmarks/aggregate.py --out "
                                        "results/bench\nmeasured\n")
    (tmp_path / "bench.csv").write_text("a\n1\n")
    found = problems(tmp_path)
    assert [line.split(":")[0] for line in found] == ["made_up.txt", "orphan.csv", "other.md", "runs/", "typed.md"]


def summary_mismatches(table_csv: Path) -> list[str]:
    """Cells of a table's CSV whose mean, std or count differ from its per-run CSV (``<table>_seeds.csv``)."""
    import csv
    import statistics

    with open(table_csv.with_name(table_csv.stem + "_seeds.csv"), newline="") as f:
        values: dict[str, list[float]] = {}
        for run in csv.DictReader(f):
            values.setdefault(run["cell"], []).append(float(run["value"]))
    found = []
    with open(table_csv, newline="") as f:
        for cell in csv.DictReader(f):
            runs = values.get(cell["cell"], [])
            if int(cell["seeds"]) != len(runs):
                found.append(f"{cell['cell']}: {cell['seeds']} seeds, {len(runs)} runs")
            if not runs:
                continue
            mean = statistics.fmean(runs)
            std = statistics.stdev(runs) if len(runs) > 1 else None
            if abs(float(cell["mean"]) - mean) > 1e-5 * max(1.0, abs(mean)):
                found.append(f"{cell['cell']}: mean {cell['mean']}, runs give {mean:.6g}")
            if (cell["std"] == "") != (std is None) or (
                    std is not None and abs(float(cell["std"]) - std) > 1e-5 * max(1.0, std)):
                found.append(f"{cell['cell']}: std {cell['std']!r}, runs give {std}")
    return found


@pytest.mark.parametrize("table", sorted(p.name for p in (ROOT / "results").glob("*.csv")
                                         if p.with_name(p.stem + "_seeds.csv").is_file()))
def test_every_table_summarises_its_runs(table):
    """A committed table's mean ± std and count are those of its per-run CSV: no cell edited by hand."""
    assert summary_mismatches(ROOT / "results" / table) == []


def test_a_summary_edited_by_hand_is_found(tmp_path):
    (tmp_path / "t_seeds.csv").write_text("cell,experiment,seed,value\nA,x,0,1.0\nA,x,1,3.0\nB,y,0,5.0\n")
    (tmp_path / "t.csv").write_text("cell,experiment,metric,mean,std,published,published_std,seeds,status\n"
                                    "A,x,m,2.5,1.41421,,,2,\nB,y,m,5,,,,2,\n")
    assert summary_mismatches(tmp_path / "t.csv") == ["A: mean 2.5, runs give 2", "B: 2 seeds, 1 runs"]
    (tmp_path / "t.csv").write_text("cell,experiment,metric,mean,std,published,published_std,seeds,status\n"
                                    "A,x,m,2,,,,2,\nB,y,m,5,0.1,,,1,\n")  # std missing, std of one run
    assert summary_mismatches(tmp_path / "t.csv") == ["A: std '', runs give 1.4142135623730951",
                                                      "B: std '0.1', runs give None"]
