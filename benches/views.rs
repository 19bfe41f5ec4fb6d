//! Continuous-view benchmarks over the wire against a real release server
//! (and, when `STRATA_BENCH_PG` holds a libpq connection string, PostgreSQL
//! keeping the same aggregate side by side):
//! - `view_maintenance`: one durable single-row INSERT, from one client, into
//!   a stream `ev (k, v)` read by `ev_by_k` (`GROUP BY k` over 1,000 keys:
//!   count, sum), with 1M and with 10M events of history (`strata_1M`,
//!   `strata_10M`). Target: within 20% of each other, since a commit costs
//!   its change and not the history. Printed once per history: the load time
//!   and a view read (`SELECT * FROM ev_by_k WHERE k = 7`). PostgreSQL on a
//!   1M-row table: the INSERT with a statement-level trigger that upserts
//!   the aggregate from its transition table (`pg_trigger_1M`), and the
//!   INSERT plus `REFRESH MATERIALIZED VIEW` (`pg_refresh_1M`: what making
//!   one new event visible costs there);
//! - `ingest_with_views`: COPY of 1M rows × 5 columns into a stream read by
//!   0, 1, 5 and 10 aggregate views, each grouping differently. Target: with
//!   one view at least 70% of the rows/s without. PostgreSQL: the same COPY
//!   with 0 and 1 such triggers (`pg_trigger/0` is a plain COPY);
//! - `commit_to_visible` (printed, not timed by criterion): 8 writers paced at
//!   10,000 events/s in all for 3 s while a probe inserts into a key of its
//!   own and another connection polls `ev_by_k` until the count moves:
//!   p50/p99 of INSERT sent → view shows it. Target: p99 ≤ 10 ms.
//!
//! `benches/compare.sh views` sets up PostgreSQL 15 and runs this side by side.

#[allow(dead_code)] // run_clients and BatchClient serve the unpaced benches in wire.rs and tables.rs
mod common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, connect, copy_in};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::time::MissedTickBehavior;
use tokio_postgres::{Client, Statement};

/// Distinct keys of `ev` (groups of `ev_by_k`).
const KEYS: i64 = 1_000;
/// Rows per COPY (one commit) when loading history.
const CHUNK_ROWS: i64 = 1_000_000;
const CREATE_EV_BY_K: &str =
    "CREATE MATERIALIZED VIEW ev_by_k AS SELECT k, count(*) AS n, sum(v) AS total FROM ev GROUP BY k";
const VIEW_READ: &str = "SELECT * FROM ev_by_k WHERE k = 7";

/// `k,v` for events `first..first + rows`: event `i` has key `i % KEYS`, so
/// every key holds the same number of events after whole chunks.
fn ev_csv(first: i64, rows: i64) -> bytes::Bytes {
    let mut out = String::with_capacity(rows as usize * 12);
    for i in first..first + rows {
        writeln!(out, "{},{}", i % KEYS, i * 37 % 1_000).unwrap();
    }
    bytes::Bytes::from(out)
}

/// A Strata server's `ev` with `ev_by_k` over it, then `events` events
/// COPYed in 1M-row commits (the view maintained by each of them).
async fn load_strata_history(server: &Server, events: i64) -> Client {
    let client = connect(&server.conninfo()).await;
    client.batch_execute("CREATE STREAM ev (k BIGINT NOT NULL, v BIGINT NOT NULL)").await.unwrap();
    client.batch_execute(CREATE_EV_BY_K).await.unwrap();
    for start in (0..events).step_by(CHUNK_ROWS as usize) {
        assert_eq!(copy_in(&client, "ev", ev_csv(start, CHUNK_ROWS)).await, CHUNK_ROWS as u64);
    }
    client.batch_execute("CHECKPOINT").await.unwrap();
    client
}

/// Prints the first run of `sql` (a one-row view read whose `n` must be
/// `expected_n`) and the median of the next 21.
async fn print_view_read(client: &Client, label: &str, sql: &str, expected_n: i64) {
    let mut times = Vec::new();
    for _ in 0..22 {
        let start = Instant::now();
        let row = client.query_one(sql, &[]).await.unwrap();
        times.push(start.elapsed());
        assert_eq!(row.get::<_, i64>("n"), expected_n, "{label}: {sql}");
    }
    let first = times.remove(0);
    times.sort();
    eprintln!(
        "{label}: view read `{sql}` first {:.3} ms, median of {} {:.3} ms",
        ms(first),
        times.len(),
        ms(times[times.len() / 2])
    );
}

/// `view` (or a trigger-kept table) counted every row of `input` in its `n`s.
async fn assert_counted(client: &Client, view: &str, input: &str) {
    let counted: i64 =
        client.query_one(&format!("SELECT CAST(sum(n) AS BIGINT) FROM {view}"), &[]).await.unwrap().get(0);
    let rows: i64 = client.query_one(&format!("SELECT count(*) FROM {input}"), &[]).await.unwrap().get(0);
    assert_eq!(counted, rows, "{view} counts every row of {input}");
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn view_maintenance(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    for (label, events) in [("1M", CHUNK_ROWS), ("10M", 10 * CHUNK_ROWS)] {
        let server = Server::start(&format!("views-history-{label}"));
        let started = Instant::now();
        let client = runtime.block_on(load_strata_history(&server, events));
        let load = started.elapsed();
        eprintln!(
            "{label}: {events} events COPYed in 1M-row commits with ev_by_k maintained in {:.1}s ({:.0} rows/s); \
             strata peak RSS {:.0} MiB",
            load.as_secs_f64(),
            events as f64 / load.as_secs_f64(),
            server.peak_rss_mib()
        );
        runtime.block_on(print_view_read(&client, &format!("strata, {label} history"), VIEW_READ, events / KEYS));
        let insert = runtime.block_on(client.prepare("INSERT INTO ev VALUES ($1, $2)")).unwrap();
        let mut next = events;
        let mut group = c.benchmark_group("view_maintenance");
        group.bench_function(BenchmarkId::new("single_insert", format!("strata_{label}")), |b| {
            b.iter(|| {
                next += 1;
                runtime.block_on(client.execute(&insert, &[&(next % KEYS), &next])).unwrap()
            })
        });
        group.finish();
        runtime.block_on(assert_counted(&client, "ev_by_k", "ev"));
    }
    if let Ok(conninfo) = std::env::var("STRATA_BENCH_PG") {
        pg_view_maintenance(c, &runtime, &conninfo);
    }
}

/// The aggregate of `ev_by_k` kept by a PostgreSQL trigger: one upsert per
/// INSERT statement from its transition table.
const PG_EV_TRIGGER: &str = "
    CREATE TABLE ev_by_k_t (k BIGINT PRIMARY KEY, n BIGINT NOT NULL, total BIGINT NOT NULL);
    INSERT INTO ev_by_k_t SELECT k, count(*), sum(v) FROM ev GROUP BY k;
    CREATE FUNCTION ev_by_k_maintain() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ev_by_k_t SELECT k, count(*), sum(v) FROM new_rows GROUP BY k
        ON CONFLICT (k) DO UPDATE SET n = ev_by_k_t.n + EXCLUDED.n, total = ev_by_k_t.total + EXCLUDED.total;
        RETURN NULL;
    END $$;
    CREATE TRIGGER ev_by_k_maintain AFTER INSERT ON ev REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ev_by_k_maintain();";

const PG_EV_DROP: &str = "DROP TABLE IF EXISTS ev CASCADE; DROP TABLE IF EXISTS ev_by_k_t;
    DROP FUNCTION IF EXISTS ev_by_k_maintain();";

/// PostgreSQL's `ev` as a 1M-row table: single INSERTs with the trigger,
/// then single INSERTs each followed by `REFRESH MATERIALIZED VIEW`.
fn pg_view_maintenance(c: &mut Criterion, runtime: &Runtime, conninfo: &str) {
    let pg = runtime.block_on(async {
        let pg = connect(conninfo).await;
        pg.batch_execute(PG_EV_DROP).await.unwrap();
        pg.batch_execute("CREATE TABLE ev (k BIGINT NOT NULL, v BIGINT NOT NULL)").await.unwrap();
        assert_eq!(copy_in(&pg, "ev", ev_csv(0, CHUNK_ROWS)).await, CHUNK_ROWS as u64);
        // VACUUM may not run inside the implicit transaction of a multi-statement query.
        pg.batch_execute("VACUUM ANALYZE ev").await.unwrap();
        pg.batch_execute(PG_EV_TRIGGER).await.unwrap();
        pg
    });
    runtime.block_on(print_view_read(
        &pg,
        "postgres trigger table, 1M history",
        "SELECT * FROM ev_by_k_t WHERE k = 7",
        CHUNK_ROWS / KEYS,
    ));
    let insert = runtime.block_on(pg.prepare("INSERT INTO ev VALUES ($1, $2)")).unwrap();
    let mut next = CHUNK_ROWS;
    let mut group = c.benchmark_group("view_maintenance");
    group.bench_function(BenchmarkId::new("single_insert", "pg_trigger_1M"), |b| {
        b.iter(|| {
            next += 1;
            runtime.block_on(pg.execute(&insert, &[&(next % KEYS), &next])).unwrap()
        })
    });
    runtime.block_on(async {
        assert_counted(&pg, "ev_by_k_t", "ev").await;
        pg.batch_execute("DROP TRIGGER ev_by_k_maintain ON ev").await.unwrap();
        pg.batch_execute(CREATE_EV_BY_K).await.unwrap();
    });
    // A refresh regroups the whole table (100s of ms): few, equal samples.
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    group.bench_function(BenchmarkId::new("single_insert", "pg_refresh_1M"), |b| {
        b.iter(|| {
            next += 1;
            runtime.block_on(async {
                pg.execute(&insert, &[&(next % KEYS), &next]).await.unwrap();
                pg.batch_execute("REFRESH MATERIALIZED VIEW ev_by_k").await.unwrap();
            })
        })
    });
    group.finish();
    runtime.block_on(async {
        assert_counted(&pg, "ev_by_k", "ev").await;
        let n: i64 = pg.query_one("SELECT count(*) FROM ev WHERE k = 7", &[]).await.unwrap().get(0);
        print_view_read(&pg, "postgres materialized view, 1M history", VIEW_READ, n).await;
        pg.batch_execute(PG_EV_DROP).await.unwrap();
    });
}

/// Rows per COPY in `ingest_with_views`.
const INGEST_ROWS: i64 = 1_000_000;
const INGEST_COLUMNS: &str = "(k BIGINT, g INT, v BIGINT, w DOUBLE PRECISION, note TEXT)";

/// `k,g,v,w,note` for `rows` rows; `w` is a multiple of 1/8, exact in text.
fn ingest_csv(rows: i64) -> bytes::Bytes {
    let mut out = String::with_capacity(rows as usize * 40);
    for i in 0..rows {
        let w = (i % 1_000) as f64 / 8.0;
        writeln!(out, "{i},{},{},{w},note{}", i / 7 % 97, i * 31 % 10_007, i / 3 % 50).unwrap();
    }
    bytes::Bytes::from(out)
}

/// Aggregate views over `ing`, each grouping differently (by expressions,
/// plain columns, text, two columns; 7 to 100,000 groups). The first `n`
/// are created for `n` views; every view names its row count `n`.
const INGEST_VIEWS: [(&str, &str); 10] = [
    (
        "ing_by_bucket",
        "SELECT k % 1000 AS bucket, count(*) AS n, sum(v) AS total, min(w) AS low, max(w) AS high \
         FROM ing GROUP BY k % 1000",
    ),
    ("ing_by_g", "SELECT g, count(*) AS n, sum(v) AS total, min(v) AS low, max(v) AS high FROM ing GROUP BY g"),
    (
        "ing_by_digit",
        "SELECT k % 10 AS digit, count(*) AS n, sum(w) AS total, min(k) AS low, max(k) AS high \
         FROM ing GROUP BY k % 10",
    ),
    (
        "ing_by_note",
        "SELECT note, count(*) AS n, sum(v) AS total, min(g) AS low, max(g) AS high FROM ing GROUP BY note",
    ),
    (
        "ing_by_g_digit",
        "SELECT g, k % 10 AS digit, count(*) AS n, sum(v) AS total, min(w) AS low, max(w) AS high \
         FROM ing GROUP BY g, k % 10",
    ),
    (
        "ing_by_fine",
        "SELECT k % 100000 AS bucket, count(*) AS n, sum(v) AS total, min(v) AS low, max(v) AS high \
         FROM ing GROUP BY k % 100000",
    ),
    (
        "ing_by_v",
        "SELECT v % 100 AS bucket, count(*) AS n, sum(w) AS total, min(note) AS low, max(note) AS high \
         FROM ing GROUP BY v % 100",
    ),
    (
        "ing_by_g7",
        "SELECT g % 7 AS bucket, count(*) AS n, sum(k) AS total, min(k) AS low, max(k) AS high FROM ing GROUP BY g % 7",
    ),
    (
        "ing_by_note_g3",
        "SELECT note, g % 3 AS third, count(*) AS n, sum(w) AS total, min(v) AS low, max(v) AS high \
         FROM ing GROUP BY note, g % 3",
    ),
    (
        "ing_by_thousand",
        "SELECT (k / 1000) % 1000 AS bucket, count(*) AS n, sum(v) AS total, min(w) AS low, max(w) AS high \
         FROM ing GROUP BY (k / 1000) % 1000",
    ),
];

/// `ing_by_bucket` kept by a PostgreSQL trigger (min/max are safe to merge
/// with least/greatest: the table only grows).
const PG_INGEST_TRIGGER: &str = "
    CREATE TABLE ing_by_bucket (bucket BIGINT PRIMARY KEY, n BIGINT NOT NULL, total BIGINT NOT NULL,
        low DOUBLE PRECISION, high DOUBLE PRECISION);
    CREATE FUNCTION ing_by_bucket_maintain() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ing_by_bucket SELECT k % 1000, count(*), sum(v), min(w), max(w) FROM new_rows GROUP BY k % 1000
        ON CONFLICT (bucket) DO UPDATE SET n = ing_by_bucket.n + EXCLUDED.n,
            total = ing_by_bucket.total + EXCLUDED.total,
            low = least(ing_by_bucket.low, EXCLUDED.low), high = greatest(ing_by_bucket.high, EXCLUDED.high);
        RETURN NULL;
    END $$;
    CREATE TRIGGER ing_by_bucket_maintain AFTER INSERT ON ing REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ing_by_bucket_maintain();";

const PG_INGEST_DROP: &str = "DROP TABLE IF EXISTS ing; DROP TABLE IF EXISTS ing_by_bucket;
    DROP FUNCTION IF EXISTS ing_by_bucket_maintain();";

/// Runs `iterations` COPYs of `csv` into `table` and returns their time.
async fn timed_copies(client: &Client, table: &str, csv: &bytes::Bytes, iterations: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        assert_eq!(copy_in(client, table, csv.clone()).await, INGEST_ROWS as u64);
    }
    start.elapsed()
}

fn ingest_with_views(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let csv = ingest_csv(INGEST_ROWS);
    let mut group = c.benchmark_group("ingest_with_views");
    // Every COPY is 0.5–3 s: 10 samples of one COPY each after a single
    // warm-up COPY, about 11 per benchmark.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(INGEST_ROWS as u64));
    for views in [0, 1, 5, 10] {
        // A fresh server for each number of views: the same log length at the start.
        let server = Server::start(&format!("views-ingest-{views}"));
        let client = runtime.block_on(async {
            let client = connect(&server.conninfo()).await;
            client.batch_execute(&format!("CREATE STREAM ing {INGEST_COLUMNS}")).await.unwrap();
            for (name, query) in &INGEST_VIEWS[..views] {
                client.batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}")).await.unwrap();
            }
            client
        });
        group.bench_function(BenchmarkId::new("strata", views), |b| {
            b.iter_custom(|iterations| runtime.block_on(timed_copies(&client, "ing", &csv, iterations)))
        });
        runtime.block_on(async {
            for (name, _) in &INGEST_VIEWS[..views] {
                assert_counted(&client, name, "ing").await;
            }
        });
    }
    if let Ok(conninfo) = std::env::var("STRATA_BENCH_PG") {
        let pg = runtime.block_on(connect(&conninfo));
        for triggers in [0, 1] {
            runtime.block_on(async {
                pg.batch_execute(PG_INGEST_DROP).await.unwrap();
                pg.batch_execute(&format!("CREATE TABLE ing {INGEST_COLUMNS}")).await.unwrap();
                if triggers == 1 {
                    pg.batch_execute(PG_INGEST_TRIGGER).await.unwrap();
                }
            });
            group.bench_function(BenchmarkId::new("pg_trigger", triggers), |b| {
                b.iter_custom(|iterations| runtime.block_on(timed_copies(&pg, "ing", &csv, iterations)))
            });
            runtime.block_on(async {
                if triggers == 1 {
                    assert_counted(&pg, "ing_by_bucket", "ing").await;
                }
                pg.batch_execute(PG_INGEST_DROP).await.unwrap();
            });
        }
    }
    group.finish();
}

/// Paced writers in `commit_to_visible` and the rows of each INSERT:
/// 8 × 10 rows every 8 ms = 10,000 events/s in 1,000 commits/s.
const PACED_WRITERS: usize = 8;
const ROWS_PER_INSERT: usize = 10;
const EVENTS_PER_SECOND: u64 = 10_000;
const PACED_FOR: Duration = Duration::from_secs(3);
const PROBE_EVERY: Duration = Duration::from_millis(5);
/// The probe's own group of `ev_by_k`: no writer uses it, so its count
/// moves exactly once per probe.
const PROBE_KEY: i64 = KEYS;

/// One paced writer: `ticks` INSERTs of `ROWS_PER_INSERT` events, one per
/// `period` from `first_tick` (late ticks catch up in a burst, so the offered
/// rate holds). Returns each commit's latency.
async fn paced_writer(
    conninfo: String,
    index: usize,
    first_tick: tokio::time::Instant,
    period: Duration,
    ticks: usize,
) -> Vec<Duration> {
    let client = connect(&conninfo).await;
    let values: Vec<String> = (0..ROWS_PER_INSERT).map(|row| format!("(${}, ${})", 2 * row + 1, 2 * row + 2)).collect();
    let insert = client.prepare(&format!("INSERT INTO ev VALUES {}", values.join(", "))).await.unwrap();
    let mut interval = tokio::time::interval_at(first_tick, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut latencies = Vec::with_capacity(ticks);
    for tick in 0..ticks {
        interval.tick().await;
        let params: Vec<i64> = (0..ROWS_PER_INSERT)
            .flat_map(|row| {
                let event = ((tick * PACED_WRITERS + index) * ROWS_PER_INSERT + row) as i64;
                [event % KEYS, event]
            })
            .collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        let start = Instant::now();
        client.execute(&insert, &refs).await.unwrap();
        latencies.push(start.elapsed());
    }
    latencies
}

/// What the probe saw: for each probe, INSERT sent → the view read showing
/// it, and INSERT sent → INSERT acknowledged.
struct Probes {
    visible: Vec<Duration>,
    acknowledged: Vec<Duration>,
}

/// The count of `PROBE_KEY` in `ev_by_k` (0 before its first event).
async fn probe_count(reader: &Client, read: &Statement) -> i64 {
    reader.query_opt(read, &[]).await.unwrap().map_or(0, |row| row.get::<_, i64>(0))
}

/// From `from` until `until`, every `PROBE_EVERY`: one single-row INSERT
/// into `PROBE_KEY` on its own connection while another connection polls
/// the view's count for that key until it moves.
async fn probe(conninfo: &str, from: tokio::time::Instant, until: tokio::time::Instant) -> Probes {
    let writer = Arc::new(connect(conninfo).await);
    let reader = connect(conninfo).await;
    let insert = writer.prepare("INSERT INTO ev VALUES ($1, $2)").await.unwrap();
    let read = reader.prepare(&format!("SELECT n FROM ev_by_k WHERE k = {PROBE_KEY}")).await.unwrap();
    let mut seen = probe_count(&reader, &read).await;
    let mut probes = Probes { visible: Vec::new(), acknowledged: Vec::new() };
    let mut interval = tokio::time::interval_at(from, PROBE_EVERY);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while tokio::time::Instant::now() < until {
        interval.tick().await;
        let sent = Instant::now();
        let acknowledged = {
            let (writer, insert) = (writer.clone(), insert.clone());
            tokio::spawn(async move {
                writer.execute(&insert, &[&PROBE_KEY, &seen]).await.unwrap();
                sent.elapsed()
            })
        };
        loop {
            let n = probe_count(&reader, &read).await;
            if n != seen {
                probes.visible.push(sent.elapsed());
                assert_eq!(n, seen + 1, "one probe, one more event in its group");
                seen = n;
                break;
            }
            assert!(sent.elapsed() < Duration::from_secs(10), "a probe INSERT not visible in ev_by_k after 10 s");
        }
        probes.acknowledged.push(acknowledged.await.unwrap());
    }
    probes
}

/// `(p50, p99, max)` in ms.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
    (at(0.50), at(0.99), at(1.0))
}

fn commit_to_visible(_: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let server = Server::start("views-visible");
    let client = runtime.block_on(load_strata_history(&server, CHUNK_ROWS));
    let conninfo = server.conninfo();
    let period = Duration::from_secs_f64((PACED_WRITERS * ROWS_PER_INSERT) as f64 / EVENTS_PER_SECOND as f64);
    let ticks = (PACED_FOR.as_secs_f64() / period.as_secs_f64()).round() as usize;
    let (probes, commits, paced) = runtime.block_on(async {
        let begin = tokio::time::Instant::now() + Duration::from_millis(100);
        let writers: Vec<_> = (0..PACED_WRITERS)
            .map(|index| {
                // Staggered through the period, so commits arrive evenly.
                let first_tick = begin + period * index as u32 / PACED_WRITERS as u32;
                tokio::spawn(paced_writer(conninfo.clone(), index, first_tick, period, ticks))
            })
            .collect();
        let probes = probe(&conninfo, begin, begin + PACED_FOR).await;
        let mut commits = Vec::new();
        for writer in writers {
            commits.extend(writer.await.unwrap());
        }
        (probes, commits, begin.elapsed())
    });
    runtime.block_on(assert_counted(&client, "ev_by_k", "ev"));
    let probed = probes.visible.len();
    let events = commits.len() * ROWS_PER_INSERT + probed;
    let (visible_p50, visible_p99, visible_max) = percentiles(probes.visible);
    let (ack_p50, ack_p99, _) = percentiles(probes.acknowledged);
    let (commit_p50, commit_p99, _) = percentiles(commits);
    eprintln!(
        "commit_to_visible: {PACED_WRITERS} writers × {ROWS_PER_INSERT}-row INSERTs every {:.0} ms offered \
         {EVENTS_PER_SECOND} events/s; {events} events in {:.2}s = {:.0} events/s (writer commits p50 {commit_p50:.2} \
         ms, p99 {commit_p99:.2} ms)",
        ms(period),
        paced.as_secs_f64(),
        events as f64 / paced.as_secs_f64()
    );
    eprintln!(
        "commit_to_visible: {probed} probes, INSERT sent -> ev_by_k shows it: p50 {visible_p50:.2} ms, p99 \
         {visible_p99:.2} ms, max {visible_max:.2} ms (target p99 <= 10 ms); INSERT acknowledged p50 {ack_p50:.2} ms, \
         p99 {ack_p99:.2} ms"
    );
}

criterion_group!(benches, view_maintenance, ingest_with_views, commit_to_visible);
criterion_main!(benches);
