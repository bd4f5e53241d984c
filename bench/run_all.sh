#!/usr/bin/env bash
# Every benchmark of issue 6, one after the other, from the checkout:  bash bench/run_all.sh [PROJECTS]
# PROJECTS (default 100000) sizes the evaluation and import benchmarks; the scale benchmark runs at
# 10,000, 100,000 and 1,000,000 projects (the last takes several minutes and ~5 GB of disk in /tmp).
# Each script prints its figures next to a reference measured in the same run; see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
N="${1:-100000}"
echo "== import ==";      $PY bench/bench_import.py --projects "$N"
echo "== evaluation =="; $PY bench/bench_evaluate.py --projects "$N" --python
echo "== delivery ==";   $PY bench/bench_delivery.py --connections 1 && $PY bench/bench_delivery.py --connections 4
echo "== CLI start and preview =="; $PY bench/bench_cli.py
for n in 10000 100000 1000000; do
  echo "== scale: $n projects =="; $PY bench/bench_scale.py --projects "$n"
done
