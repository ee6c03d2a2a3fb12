"""``results/`` holds only generated files, each naming the command that writes it, and no folders."""
from __future__ import annotations

import re
from pathlib import Path

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
