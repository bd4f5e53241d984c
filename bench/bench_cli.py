"""Two interactive figures of issue 6, each measured from command start to output, as a user waits:

1. `monitor --help` (goal: under 0.5 s), next to a bare `python -c pass` in the same run;
2. `monitor preview` of a threshold change on a prefecture (2,500 projects by default; goal: under 2 s),
   next to `monitor results --format csv` of the same checkpoint (reading the stored results).

Medians of --repeat runs, each a fresh process.

    .venv/bin/python bench/bench_cli.py [--projects 2500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONITOR = [sys.executable, "-m", "monitor"]
CANDIDATE = "budget: {yellow_below: 0.85}\nindicators: {cumulative: {red_below: 0.65}}\n"


def timed(cmd: list[str], repeat: int, cwd: Path) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=2500)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config.yaml").write_text(
            f"database: {{path: bench.db}}\nrules_dir: {ROOT / 'rules'}\n"
            f"templates_dir: {ROOT / 'templates'}\n"
        )
        (work / "candidate.yaml").write_text(CANDIDATE, encoding="utf-8")
        cfg = ["--config", str(work / "config.yaml")]
        subprocess.run(
            [*MONITOR, "sample", "--out", "data", "--projects", str(args.projects)], cwd=work, check=True
        )
        subprocess.run([*MONITOR, "import", "data", *cfg], cwd=work, check=True, capture_output=True)
        subprocess.run(
            [*MONITOR, "run", "--checkpoint", "2025-05", "--no-send", *cfg],
            cwd=work,
            check=True,
            capture_output=True,
        )

        bare = timed([sys.executable, "-c", "pass"], args.repeat, work)
        helped = timed([*MONITOR, "--help"], args.repeat, work)
        print(f"`monitor --help` (median of {args.repeat}): {helped:.3f} s (goal < 0.5 s)")
        print(f"  reference: bare `python -c pass`: {bare:.3f} s; ratio {helped / bare:.1f}x")

        preview = [*MONITOR, "preview", "--rules", "candidate.yaml", "--checkpoint", "2025-05", *cfg]
        results = [*MONITOR, "results", "--checkpoint", "2025-05", "--format", "csv", *cfg]
        t_preview = timed(preview, args.repeat, work)
        t_results = timed(results, args.repeat, work)
        print(
            f"`monitor preview` of a threshold change, {args.projects:,} projects (median of {args.repeat}):"
            f" {t_preview:.2f} s (goal < 2 s)"
        )
        print(
            f"  reference: `monitor results --format csv` of the same checkpoint: {t_results:.2f} s;"
            f" ratio {t_preview / t_results:.1f}x"
        )


if __name__ == "__main__":
    main()
