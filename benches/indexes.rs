//! Secondary index benchmarks over the wire against a real release server:
//! at 1M rows, an equality on a column with no index (a scan of the current
//! state), through a UNIQUE index (one row) and through a plain index (10
//! rows), beside a lookup by the primary key (the floor: one query's round
//! trip and planning), and what building each index costs in time and
//! memory (printed once). The filters are the same; only whether an index
//! serves them differs.

#[allow(dead_code)] // BatchClient serves wire.rs
mod common;

use std::time::Instant;

use common::{Server, connect, copy_in};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const ROWS: i64 = 1_000_000;
/// Rows per value of the plainly indexed column.
const PER_GROUP: i64 = 10;

/// `id, email, grp` for every id in `ids`.
fn rows_csv(ids: std::ops::Range<i64>) -> bytes::Bytes {
    let mut out = String::with_capacity(ids.clone().count() * 32);
    for id in ids {
        out.push_str(&format!("{id},user{id}@example.com,{}\n", id % (ROWS / PER_GROUP)));
    }
    bytes::Bytes::from(out)
}

fn index_lookup(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let server = Server::start("indexes");
    let client = runtime.block_on(connect(&server.conninfo()));
    runtime.block_on(async {
        client.batch_execute("CREATE TABLE accounts (id BIGINT PRIMARY KEY, email TEXT, grp BIGINT)").await.unwrap();
        for start in (0..ROWS).step_by(100_000) {
            copy_in(&client, "accounts", rows_csv(start..start + 100_000)).await;
        }
        client.batch_execute("CHECKPOINT").await.unwrap();
    });
    let by_email = runtime.block_on(client.prepare("SELECT id FROM accounts WHERE email = $1")).unwrap();
    let by_group = runtime.block_on(client.prepare("SELECT count(*) FROM accounts WHERE grp = $1")).unwrap();
    let by_id = runtime.block_on(client.prepare("SELECT email FROM accounts WHERE id = $1")).unwrap();
    let mut id = 0i64;
    let mut next_email = move || {
        id = (id + 7919) % ROWS;
        format!("user{id}@example.com")
    };
    let mut group_key = 0i64;
    let mut next_group = move || {
        group_key = (group_key + 7919) % (ROWS / PER_GROUP);
        group_key
    };
    let mut group = c.benchmark_group("index_lookup");
    group.sample_size(10);
    let mut key = 0i64;
    group.bench_function(BenchmarkId::new("id", "primary_key"), |b| {
        b.iter(|| {
            key = (key + 7919) % ROWS;
            runtime.block_on(client.query_one(&by_id, &[&key])).unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("email", "no_index"), |b| {
        b.iter(|| runtime.block_on(client.query_one(&by_email, &[&next_email()])).unwrap())
    });
    group.bench_function(BenchmarkId::new("grp", "no_index"), |b| {
        b.iter(|| runtime.block_on(client.query_one(&by_group, &[&next_group()])).unwrap())
    });
    eprintln!("strata peak RSS before the indexes: {:.0} MiB", server.peak_rss_mib());
    for (sql, what) in [
        ("CREATE UNIQUE INDEX accounts_email ON accounts (email)", "unique index"),
        ("CREATE INDEX accounts_grp ON accounts (grp)", "index"),
    ] {
        let started = Instant::now();
        runtime.block_on(client.batch_execute(sql)).unwrap();
        eprintln!("{what} over {ROWS} rows built in {:.2}s", started.elapsed().as_secs_f64());
    }
    eprintln!("strata peak RSS with both indexes: {:.0} MiB", server.peak_rss_mib());
    group.bench_function(BenchmarkId::new("email", "unique_index"), |b| {
        b.iter(|| runtime.block_on(client.query_one(&by_email, &[&next_email()])).unwrap())
    });
    group.bench_function(BenchmarkId::new("grp", "index"), |b| {
        b.iter(|| runtime.block_on(client.query_one(&by_group, &[&next_group()])).unwrap())
    });
    group.finish();
}

criterion_group!(benches, index_lookup);
criterion_main!(benches);
