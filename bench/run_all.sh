#!/usr/bin/env bash
# Every benchmark of issues 6 and 21, one after the other, from the checkout:  bash bench/run_all.sh [PROJECTS]
# PROJECTS (default 100000) sizes the evaluation, import and history benchmarks; the scale benchmark runs at
# 10,000, 100,000 and 1,000,000 projects (the last takes several minutes and ~5 GB of disk in /tmp).
# Each script prints its figures next to a reference measured in the same run; see bench/README.md.
# Then the PostgreSQL part (issue 21): a local server started or reused as .ci/run does (Debian's
# postgresql, pg_ctlcluster, role monitor/monitor with CREATEDB), a database of its own
# (monitor_bench_run; the benchmarks create and drop their scratch databases next to it), and the
# evaluation, import, scale and history benchmarks with --database-url. BENCH_POSTGRES=0 skips it;
# BENCH_SCALE_SIZES (default "10000 100000 1000000") sets the scale runs of both parts.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
N="${1:-100000}"
SIZES="${BENCH_SCALE_SIZES:-10000 100000 1000000}"
echo "== import ==";      $PY bench/bench_import.py --projects "$N"
echo "== evaluation =="; $PY bench/bench_evaluate.py --projects "$N" --python
echo "goal (issue 6): the default evaluation / reference <= 3x at 100,000 projects on SQLite"
echo "== delivery ==";   $PY bench/bench_delivery.py --connections 1 && $PY bench/bench_delivery.py --connections 4
echo "== CLI start and preview =="; $PY bench/bench_cli.py
for n in $SIZES; do
  echo "== scale: $n projects =="; $PY bench/bench_scale.py --projects "$n"
done
echo "== history: $N projects, four earlier checkpoints stored or none =="; $PY bench/bench_history.py --projects "$N"

[ "${BENCH_POSTGRES:-1}" = 0 ] && exit 0
echo "== PostgreSQL: the server =="
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGVER=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q "^$PGVER main"; then
    pg_createcluster "$PGVER" main >/dev/null
fi
pg_ctlcluster "$PGVER" main start 2>/dev/null || true
PGPORT=$(pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 30); do
    su postgres -c "pg_isready -q -h 127.0.0.1 -p $PGPORT" && break
    sleep 1
done
su postgres -c "psql -q -p $PGPORT -c \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='monitor') THEN CREATE ROLE monitor LOGIN CREATEDB PASSWORD 'monitor'; END IF; END\\\$\\\$;\""
su postgres -c "psql -q -p $PGPORT -tc \"SELECT 1 FROM pg_database WHERE datname='monitor_bench_run'\" | grep -q 1 || createdb -p $PGPORT -O monitor monitor_bench_run"
PG="postgresql+psycopg://monitor:monitor@127.0.0.1:$PGPORT/monitor_bench_run"
echo "PostgreSQL $PGVER on 127.0.0.1:$PGPORT, database monitor_bench_run; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== PostgreSQL: import ==";     $PY bench/bench_import.py --projects "$N" --database-url "$PG"
echo "== PostgreSQL: evaluation =="; $PY bench/bench_evaluate.py --projects "$N" --database-url "$PG"
echo "goal (issue 21): the default evaluation / reference <= 3x at 100,000 projects on PostgreSQL (aim 2x)"
for n in $SIZES; do
  echo "== PostgreSQL: scale: $n projects =="; $PY bench/bench_scale.py --projects "$n" --database-url "$PG"
done
echo "== PostgreSQL: history: $N projects =="; $PY bench/bench_history.py --projects "$N" --database-url "$PG"
