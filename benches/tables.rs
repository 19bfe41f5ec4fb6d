//! Table benchmarks over the wire against a real release server (and, when
//! `STRATA_BENCH_PG` holds a libpq connection string, PostgreSQL side by side):
//! - `table_read`: a key lookup and a full current-state scan at 1M keys,
//!   with 1M and with 10M changes in the table's history, and a scan right
//!   after a single-row UPDATE (what a scan costs when the state changed);
//! - `point_in_time`: the table as of 10%, 50% and 90% of a 10M-change
//!   history, against the current-state scan and against PostgreSQL
//!   rebuilding the same state from an indexed history table
//!   (`DISTINCT ON (id) … WHERE ts <= T ORDER BY id, ts DESC`);
//! - `update_8_clients`: single-row UPDATEs by key from 8 concurrent clients.
//!
//! `benches/compare.sh` sets up PostgreSQL 15 and runs this side by side.

#[allow(dead_code)] // BatchClient serves wire.rs
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Server, connect, copy_in, run_clients};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio_postgres::Client;

const KEYS: i64 = 1_000_000;
const UPDATE_CLIENTS: usize = 8;
const UPDATES_PER_CLIENT: usize = 250;
const SCAN: &str = "SELECT count(*), sum(v) FROM kv";

/// `id, v, note` for every key in `ids`.
fn keys_csv(ids: std::ops::Range<i64>) -> bytes::Bytes {
    let mut out = String::with_capacity(ids.clone().count() * 24);
    for id in ids {
        out.push_str(&format!("{id},{},k{}\n", id % 1000, id % 97));
    }
    bytes::Bytes::from(out)
}

/// Commits per pass over the keys: a point in time then falls at most a
/// tenth of the keys away from a commit boundary, never inside one huge commit.
const CHUNKS: i64 = 10;

/// A Strata server holding `kv` with 1M keys and about `changes` events of
/// history: the keys COPYed in 10 commits, then UPDATEs of a tenth of the
/// keys each (2 events per row) until the history is that long.
async fn load(server: &Server, changes: i64) -> Client {
    let client = connect(&server.conninfo()).await;
    client.batch_execute("CREATE TABLE kv (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, note TEXT)").await.unwrap();
    let chunk = KEYS / CHUNKS;
    for start in (0..KEYS).step_by(chunk as usize) {
        copy_in(&client, "kv", keys_csv(start..start + chunk)).await;
    }
    let mut events = KEYS;
    let mut pass = 0;
    while events + 2 * chunk <= changes {
        client
            .batch_execute(&format!("UPDATE kv SET v = v + 1 WHERE id % {CHUNKS} = {}", pass % CHUNKS))
            .await
            .unwrap();
        events += 2 * chunk;
        pass += 1;
    }
    client.batch_execute("CHECKPOINT").await.unwrap();
    client
}

fn table_read(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    for (label, changes) in [("1m_history", KEYS), ("10m_history", 10 * KEYS)] {
        let server = Server::start(&format!("tables-{label}"));
        let started = Instant::now();
        let client = runtime.block_on(load(&server, changes));
        let history: i64 = runtime.block_on(client.query_one("SELECT current_offset()", &[])).unwrap().get(0);
        eprintln!(
            "{label}: {history} events loaded in {:.1}s; strata peak RSS {:.0} MiB",
            started.elapsed().as_secs_f64(),
            server.peak_rss_mib()
        );
        let lookup = runtime.block_on(client.prepare("SELECT v FROM kv WHERE id = $1")).unwrap();
        let mut key = 0i64;
        let mut group = c.benchmark_group("table_read");
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("key_lookup", label), |b| {
            b.iter(|| {
                key = (key + 7919) % KEYS;
                runtime.block_on(client.query_one(&lookup, &[&key])).unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("full_scan", label), |b| {
            b.iter(|| runtime.block_on(client.query_one(SCAN, &[])).unwrap())
        });
        // A write between scans: the scan replays that change onto the
        // previous scan's rows (the UPDATE alone is `update_8_clients`' unit).
        let update = runtime.block_on(client.prepare("UPDATE kv SET v = v + 1 WHERE id = $1")).unwrap();
        group.bench_function(BenchmarkId::new("update_then_full_scan", label), |b| {
            b.iter(|| {
                key = (key + 7919) % KEYS;
                runtime.block_on(async {
                    client.execute(&update, &[&key]).await.unwrap();
                    client.query_one(SCAN, &[]).await.unwrap()
                })
            })
        });
        group.finish();
        if changes == 10 * KEYS {
            point_in_time(c, &runtime, &client, history);
        }
    }
}

/// The 10M-change table as of 10%, 50% and 90% of its history.
fn point_in_time(c: &mut Criterion, runtime: &Runtime, client: &Client, history: i64) {
    let mut group = c.benchmark_group("point_in_time");
    group.sample_size(10);
    let pg = std::env::var("STRATA_BENCH_PG").ok().map(|conninfo| runtime.block_on(pg_history(&conninfo, history)));
    for percent in [10i64, 50, 90] {
        let offset = history * percent / 100;
        let sql = format!("SELECT count(*), sum(v) FROM kv VERSION AS OF {offset}");
        group.bench_function(BenchmarkId::new("strata", percent), |b| {
            b.iter(|| runtime.block_on(client.query_one(&sql, &[])).unwrap())
        });
        if let Some(pg) = &pg {
            let sql = format!(
                "SELECT count(*), sum(v) FROM (SELECT DISTINCT ON (id) id, v, deleted FROM kv_history \
                 WHERE ts <= {offset} ORDER BY id, ts DESC) s WHERE NOT deleted"
            );
            group.bench_function(BenchmarkId::new("postgres_distinct_on", percent), |b| {
                b.iter(|| runtime.block_on(pg.query_one(&sql, &[])).unwrap())
            });
        }
    }
    group.finish();
}

/// PostgreSQL holding a history of the same shape as rows `(id, v, ts,
/// deleted)` with an index on `(id, ts)`: one row per version (an update is
/// two events in Strata, so versions are numbered 2 apart to share offsets).
async fn pg_history(conninfo: &str, history: i64) -> Client {
    let pg = connect(conninfo).await;
    pg.batch_execute(&format!(
        "DROP TABLE IF EXISTS kv_history;
         CREATE TABLE kv_history (id BIGINT NOT NULL, v BIGINT NOT NULL, ts BIGINT NOT NULL, deleted BOOLEAN NOT NULL);
         INSERT INTO kv_history SELECT g % {KEYS}, g / {KEYS}, 2 * g, false FROM generate_series(0, {history} / 2) g;
         CREATE INDEX ON kv_history (id, ts);"
    ))
    .await
    .unwrap();
    // VACUUM may not run inside the implicit transaction of a multi-statement query.
    pg.batch_execute("VACUUM ANALYZE kv_history").await.unwrap();
    pg
}

fn update_8_clients(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let server = Server::start("tables-update");
    let mut targets = vec![("strata", server.conninfo(), "")];
    if let Ok(pg) = std::env::var("STRATA_BENCH_PG") {
        targets.push(("postgres", pg, ""));
    }
    let commits = UPDATE_CLIENTS * UPDATES_PER_CLIENT;
    let mut group = c.benchmark_group("update_8_clients");
    group.sample_size(10).throughput(Throughput::Elements(commits as u64));
    for (label, conninfo, _) in targets {
        let clients: Arc<Vec<Client>> = Arc::new(runtime.block_on(async {
            let admin = connect(&conninfo).await;
            admin
                .batch_execute(
                    "DROP TABLE IF EXISTS kv_upd; CREATE TABLE kv_upd (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, note TEXT)",
                )
                .await
                .unwrap();
            copy_in(&admin, "kv_upd", keys_csv(0..KEYS)).await;
            let mut clients = Vec::new();
            for _ in 0..UPDATE_CLIENTS {
                clients.push(connect(&conninfo).await);
            }
            clients
        }));
        group.bench_function(label, |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for round in 0..iterations as usize {
                        // Each client its own keys: no two clients touch one row.
                        let params = Arc::new(move |index: usize, n: usize| {
                            vec![((round * UPDATES_PER_CLIENT + n) * UPDATE_CLIENTS + index) as i64 % KEYS]
                        });
                        run_clients(&clients, "UPDATE kv_upd SET v = v + 1 WHERE id = $1", UPDATES_PER_CLIENT, params)
                            .await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, table_read, update_8_clients);
criterion_main!(benches);
