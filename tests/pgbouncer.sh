#!/usr/bin/env bash
# PgBouncer in transaction mode on 127.0.0.1:6432 in front of the local PostgreSQL (port: $1, else
# $PGPORT, else 5432), for running the service, delivery and evaluation tests through it (.ci/run).
# Installs Debian's pgbouncer if missing, writes its own config under /run/monitor-pgbouncer (every
# database of the server reachable: the suite makes one per test; role monitor/monitor), starts it as
# the postgres user (pgbouncer refuses root) and waits until it answers. A PgBouncer already answering
# on the port is reused. Debian 12's PgBouncer (1.18) keeps no prepared statement across transactions:
# the engine is told so by `?pgbouncer=true` in the database URL (README, "Behind PgBouncer").
set -euo pipefail

PGPORT=${1:-${PGPORT:-5432}}
PORT=6432
DIR=/run/monitor-pgbouncer
export DEBIAN_FRONTEND=noninteractive

answers() {
    PGPASSWORD=monitor psql -q -h 127.0.0.1 -p "$PORT" -U monitor -d postgres -tAc "SELECT 1" 2>/dev/null | grep -q 1
}

if answers; then
    exit 0
fi
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    apt-get update -qq
    apt-get install -y -qq pgbouncer >/dev/null
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

mkdir -p "$DIR"
cat >"$DIR/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PGPORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir = $DIR
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
pool_mode = transaction
; the suite's per-test databases come and go: few server connections each, closed soon when idle
max_client_conn = 500
default_pool_size = 10
max_db_connections = 20
server_idle_timeout = 10
autodb_idle_timeout = 60
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
EOF
echo '"monitor" "monitor"' >"$DIR/userlist.txt"
chown -R postgres:postgres "$DIR"
chmod 600 "$DIR/userlist.txt"

# a stale pid file (a PgBouncer that died) would stop a new one from starting
rm -f "$DIR/pgbouncer.pid"
su postgres -s /bin/sh -c "$PGBOUNCER -d -q $DIR/pgbouncer.ini"
for _ in $(seq 1 30); do
    answers && exit 0
    sleep 0.5
done
echo "PgBouncer did not answer on 127.0.0.1:$PORT; its log:" >&2
tail -n 20 "$DIR/pgbouncer.log" >&2 || true
exit 1
