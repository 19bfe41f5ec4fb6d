//! Over-the-wire benchmarks against a real release server (and, when
//! `STRATA_BENCH_PG` holds a libpq connection string, the same work against
//! PostgreSQL side by side):
//! - `copy_1m`: COPY of 1M rows × 5 columns, durable;
//! - `insert_8_clients`: single-row INSERT commits from 8 concurrent clients;
//! - `batch_insert`: one client's batch of 1,000 INSERT Executes before one
//!   Sync (asyncpg's `executemany`), committed as one, durable;
//! - `group_by_10m`: an aggregate over 10M events, against DataFusion reading
//!   the same rows as plain Parquet files;
//!
//! and the server's peak RSS after ingesting 1M and 10M events.
//!
//! `benches/compare.sh` sets up PostgreSQL 15 and runs this side by side.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{BatchClient, Server, connect, copy_in, run_clients};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio_postgres::Client;

const COPY_ROWS: usize = 1_000_000;
const GROUP_BY_ROWS: usize = 10_000_000;
const INSERT_CLIENTS: usize = 8;
const INSERTS_PER_CLIENT: usize = 250;
const BATCH_ROWS: usize = 1_000;

/// Deterministic CSV of `rows` events: id, user_id, kind, amount, at.
fn events_csv(first_id: usize, rows: usize) -> bytes::Bytes {
    const KINDS: [&str; 8] = ["view", "click", "cart", "buy", "refund", "search", "login", "logout"];
    let mut out = String::with_capacity(rows * 60);
    for id in first_id..first_id + rows {
        let user = (id * 7919) % 100_000;
        let kind = KINDS[id % KINDS.len()];
        let amount = (id % 10_000) as f64 / 100.0;
        let second = id % 86_400;
        out.push_str(&format!(
            "{id},{user},{kind},{amount},2026-11-20 {:02}:{:02}:{:02}+00\n",
            second / 3600,
            second / 60 % 60,
            second % 60
        ));
    }
    bytes::Bytes::from(out)
}

const CREATE_EVENTS: &str = "(id BIGINT NOT NULL, user_id BIGINT, kind TEXT, amount DOUBLE PRECISION, at TIMESTAMPTZ)";

/// Targets: Strata, and PostgreSQL when configured. (label, conninfo, DDL noun)
fn targets(strata: &Server) -> Vec<(&'static str, String, &'static str)> {
    let mut targets = vec![("strata", strata.conninfo(), "STREAM")];
    if let Ok(pg) = std::env::var("STRATA_BENCH_PG") {
        targets.push(("postgres", pg, "TABLE"));
    }
    targets
}

fn copy_1m(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let server = Server::start("copy");
    let csv = events_csv(0, COPY_ROWS);
    let mut group = c.benchmark_group("copy_1m");
    group.sample_size(10).throughput(Throughput::Elements(COPY_ROWS as u64));
    for (label, conninfo, noun) in targets(&server) {
        let client = runtime.block_on(connect(&conninfo));
        let mut round = 0;
        group.bench_function(label, |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        round += 1;
                        let table = format!("copy_{}_{round}", std::process::id());
                        client.batch_execute(&format!("CREATE {noun} {table} {CREATE_EVENTS}")).await.unwrap();
                        let start = Instant::now();
                        assert_eq!(copy_in(&client, &table, csv.clone()).await, COPY_ROWS as u64);
                        total += start.elapsed();
                        client.batch_execute(&format!("DROP {noun} {table}")).await.unwrap();
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

fn insert_8_clients(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let server = Server::start("insert");
    let commits = INSERT_CLIENTS * INSERTS_PER_CLIENT;
    let mut group = c.benchmark_group("insert_8_clients");
    group.sample_size(10).throughput(Throughput::Elements(commits as u64));
    for (label, conninfo, noun) in targets(&server) {
        let table = format!("inserts_{}", std::process::id());
        let clients: Vec<Client> = runtime.block_on(async {
            let admin = connect(&conninfo).await;
            admin.batch_execute(&format!("CREATE {noun} {table} {CREATE_EVENTS}")).await.unwrap();
            let mut clients = Vec::new();
            for _ in 0..INSERT_CLIENTS {
                clients.push(connect(&conninfo).await);
            }
            clients
        });
        let clients = Arc::new(clients);
        group.bench_function(label, |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    let sql = format!("INSERT INTO {table} VALUES ($1, $2, 'click', 1.5, now())");
                    for _ in 0..iterations {
                        let params = Arc::new(|index: usize, n: usize| vec![n as i64, index as i64]);
                        run_clients(&clients, &sql, INSERTS_PER_CLIENT, params).await;
                    }
                    start.elapsed()
                })
            })
        });
        runtime.block_on(async {
            let admin = connect(&conninfo).await;
            admin.batch_execute(&format!("DROP {noun} {table}")).await.unwrap();
        });
    }
    group.finish();
}

fn batch_insert(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let server = Server::start("batch");
    let mut group = c.benchmark_group("batch_insert");
    group.sample_size(10).throughput(Throughput::Elements(BATCH_ROWS as u64));
    for (label, conninfo, noun) in targets(&server) {
        let table = format!("batch_{}", std::process::id());
        runtime.block_on(async {
            let admin = connect(&conninfo).await;
            admin.batch_execute(&format!("CREATE {noun} {table} {CREATE_EVENTS}")).await.unwrap();
        });
        let mut client = BatchClient::connect(&conninfo);
        let sql = format!("INSERT INTO {table} VALUES ($1, $2, 'click', 1.5, now())");
        let mut next_id = 0;
        group.bench_function(label, |b| {
            b.iter(|| {
                let rows: Vec<Vec<String>> =
                    (next_id..next_id + BATCH_ROWS).map(|id| vec![id.to_string(), (id % 1000).to_string()]).collect();
                next_id += BATCH_ROWS;
                client.run_batch(&sql, &rows);
            })
        });
        runtime.block_on(async {
            let admin = connect(&conninfo).await;
            let rows: i64 = admin.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
            assert_eq!(rows as usize, next_id, "every batch committed");
            admin.batch_execute(&format!("DROP {noun} {table}")).await.unwrap();
        });
    }
    group.finish();
}

fn group_by_10m(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let server = Server::start("groupby");
    let client = runtime.block_on(connect(&server.conninfo()));
    let load_start = Instant::now();
    runtime.block_on(async {
        client.batch_execute(&format!("CREATE STREAM events {CREATE_EVENTS}")).await.unwrap();
        for chunk in 0..GROUP_BY_ROWS / COPY_ROWS {
            copy_in(&client, "events", events_csv(chunk * COPY_ROWS, COPY_ROWS)).await;
            if chunk == 0 {
                eprintln!("strata peak RSS after 1M events: {:.0} MiB", server.peak_rss_mib());
            }
        }
        client.batch_execute("CHECKPOINT").await.unwrap();
    });
    let load = load_start.elapsed();
    eprintln!(
        "loaded {GROUP_BY_ROWS} events in {:.1}s ({:.0} rows/s); strata peak RSS after 10M events: {:.0} MiB",
        load.as_secs_f64(),
        GROUP_BY_ROWS as f64 / load.as_secs_f64(),
        server.peak_rss_mib()
    );

    const QUERY: &str =
        "SELECT kind, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM events GROUP BY kind";
    let mut group = c.benchmark_group("group_by_10m");
    group.sample_size(10).throughput(Throughput::Elements(GROUP_BY_ROWS as u64));
    group.bench_function("strata", |b| {
        b.iter(|| runtime.block_on(async { assert_eq!(client.query(QUERY, &[]).await.unwrap().len(), 8) }))
    });
    // The same rows as plain Parquet files (Strata's own segments), read by DataFusion in process.
    let context = datafusion::prelude::SessionContext::new();
    let segments = server.data_dir.join("store/segments/1/");
    runtime
        .block_on(context.register_parquet("events", segments.to_str().unwrap(), Default::default()))
        .expect("register parquet");
    group.bench_function("datafusion_parquet", |b| {
        b.iter(|| {
            runtime.block_on(async {
                assert_eq!(
                    context
                        .sql(QUERY)
                        .await
                        .unwrap()
                        .collect()
                        .await
                        .unwrap()
                        .iter()
                        .map(|b| b.num_rows())
                        .sum::<usize>(),
                    8
                )
            })
        })
    });
    group.finish();
}

criterion_group!(benches, copy_1m, insert_8_clients, batch_insert, group_by_10m);
criterion_main!(benches);
