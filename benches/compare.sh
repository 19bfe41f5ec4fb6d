#!/usr/bin/env bash
# Runs Strata's over-the-wire benchmarks side by side with PostgreSQL 15 on
# this machine, in one run, and prints the figures the README quotes:
#   - fsync latency (pg_test_fsync) and the physical bound for 8 clients;
#   - COPY of 1M rows, 8-client single-row INSERTs, a batch of 1,000 INSERT
#     Executes before one Sync: Strata vs PostgreSQL;
#   - GROUP BY over 10M events: Strata vs DataFusion on the same Parquet;
#   - Strata's peak RSS after 1M and 10M ingested events;
#   - tables: key lookup and scan vs history length, point-in-time reads vs
#     PostgreSQL DISTINCT ON over a history table, 8-client UPDATEs;
#   - views: a single INSERT's cost with a GROUP BY view at 1M and 10M events
#     of history, COPY with 0/1/5/10 views, commit-to-visible p50/p99 at
#     10,000 events/s; PostgreSQL's REFRESH MATERIALIZED VIEW and a
#     transition-table trigger keeping the same aggregate;
#   - nexmark: Nexmark q0-q5 as continuous views, 1M generated events COPYed
#     per query into a fresh server: events/s and events per server CPU-second,
#     against the same ingest with no view (Strata only).
# Usage: benches/compare.sh [wire|tables|views|nexmark] [criterion filter]
# PostgreSQL runs with default settings (fsync on, synchronous_commit on) in a
# throwaway cluster on a loopback port. Needs root or a user that may install
# packages if PostgreSQL 15 is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=/usr/lib/postgresql/15/bin
if [ ! -x "$pg_bin/postgres" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

work=$(mktemp -d /tmp/strata-compare.XXXXXX)
port=55432
run_as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd -r postgres
  chown -R postgres "$work"
  run_as=(runuser -u postgres --)
fi
cleanup() { "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== fsync latency (pg_test_fsync, fdatasync, on $(df --output=source "$work" | tail -1))"
fsync_ops=$(cd "$work" && "$pg_bin/pg_test_fsync" -s 3 -f "$work/fsync.test" | awk '$1 == "fdatasync" && $2 + 0 > 0 {print $2; exit}')
echo "fdatasync: ${fsync_ops} ops/s -> latency $(awk "BEGIN {printf \"%.3f\", 1000/$fsync_ops}") ms"
echo "physical bound for 8 clients (clients / fsync latency): $(awk "BEGIN {printf \"%.0f\", 8*$fsync_ops}") commits/s"

"${run_as[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -o "-p $port -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" -w start >/dev/null
echo "== PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (default settings)"

# Which benches: `wire`, `tables`, `views`, `nexmark` or all of them (the
# default); the rest of the arguments go to criterion (a filter such as
# `insert_8_clients`; nexmark reads it too: `nexmark q5` runs q5 and the
# no-view baseline).
benches=(--bench wire --bench tables --bench views --bench nexmark)
case "${1:-}" in
  wire|tables|views|nexmark) benches=(--bench "$1"); shift ;;
esac
STRATA_BENCH_PG="host=127.0.0.1 port=$port user=postgres dbname=postgres" \
  cargo bench "${benches[@]}" -- "$@" 2>&1 | grep --line-buffered -vE '^\s*$|Warming up|Collecting|Analyzing|Benchmarking .*: (Warming|Collecting|Analyzing)|^\s+Compiling'
