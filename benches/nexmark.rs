//! Nexmark q0–q5 as continuous views, over the wire against a real release
//! server. The events come from the `nexmark` crate's generator (its default
//! mix: per 50 events 1 person, 3 auctions, 46 bids; 10,000 events per second
//! of event time) with a fixed base time, so every run sees the same data:
//! 1M events by default (`STRATA_NEXMARK_EVENTS`), as CSV per stream.
//!
//! For each query, a fresh server gets the streams `person`, `auction` and
//! `bid` and the query's views; then the events are COPYed in, `person` and
//! `auction` first, then `bid`, in commits of at most 1M rows (the views
//! maintained inside each commit). Measured over that whole ingest: its wall
//! time and the server process's CPU time (utime + stime from
//! `/proc/<pid>/stat`), printed as events/s and events per server
//! CPU-second ("events/s/core"), the median of `STRATA_NEXMARK_RUNS` runs
//! (default 3), next to the same ingest with no view (`no_view`). Printed,
//! not timed by criterion: every run needs a fresh server, and the figure
//! that matters is CPU time. After the first run of a query, every view is
//! checked against its defining query run directly over the streams (count
//! and a sum per view must match, and no view may be empty).
//!
//! The queries, RisingWave's Nexmark SQL adapted:
//! - q0 (pass-through): `SELECT auction, bidder, price, date_time FROM bid`;
//! - q1 (currency conversion): `0.908 * price`;
//! - q2 (selection): `WHERE auction % 123 = 0`;
//! - q3 (local item suggestion): auctions of category 10 joined with their
//!   sellers in Oregon, Idaho or California (the generator writes states in
//!   lower case, `or`, `id`, `ca`, as RisingWave's q3 spells them);
//! - q4 (average price per category): `q4_max`, the highest bid per auction
//!   among bids between the auction's start and expiry (auction ⋈ bid,
//!   GROUP BY), and `q4`, a view over it averaging per category;
//! - q5 (hot items): hopping windows of 10 s sliding every 2 s,
//!   `hop(bid, date_time, INTERVAL '2 seconds', INTERVAL '10 seconds')`
//!   (every bid in its 5 windows); then bids per auction and window
//!   (`q5_counts`), the most per window (`q5_max`), and the auctions that
//!   have it (`q5`).
//!
//! Targets: at least 500,000 events/s/core for q0–q2 and 200,000 for q3–q5.
//!
//! `benches/compare.sh nexmark [filter]` runs this (a filter such as `q5`
//! runs the queries whose name holds it, and the no-view baseline).

#[allow(dead_code)] // run_clients and BatchClient serve the unpaced benches in wire.rs and tables.rs
mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Server, connect, copy_in};
use criterion::{Criterion, criterion_group, criterion_main};
use nexmark::EventGenerator;
use nexmark::config::NexmarkConfig;
use nexmark::event::{Auction, Bid, Event, Person};
use tokio::runtime::Runtime;
use tokio_postgres::Client;

/// Events generated (all three streams together) unless `STRATA_NEXMARK_EVENTS` says otherwise.
const DEFAULT_EVENTS: usize = 1_000_000;
/// Runs of each query unless `STRATA_NEXMARK_RUNS` says otherwise.
const DEFAULT_RUNS: usize = 3;
/// Rows per COPY (one commit) at most.
const CHUNK_ROWS: usize = 1_000_000;
/// The first event's time, 2026-11-26 10:00:00 UTC in ms (the generator's
/// default is the wall clock, which would change the data run to run).
const BASE_TIME_MS: u64 = 1_795_687_200_000;

const CREATE_STREAMS: &str = "
    CREATE STREAM person (id BIGINT, name TEXT, email TEXT, credit_card TEXT, city TEXT, state TEXT,
        date_time TIMESTAMPTZ, extra TEXT);
    CREATE STREAM auction (id BIGINT, item_name TEXT, description TEXT, initial_bid BIGINT, reserve BIGINT,
        date_time TIMESTAMPTZ, expires TIMESTAMPTZ, seller BIGINT, category BIGINT, extra TEXT);
    CREATE STREAM bid (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time TIMESTAMPTZ,
        extra TEXT);";

/// A continuous view; `check` is what the sanity check compares between
/// the view and its query run directly (BIGINTs: a count first, then sums).
struct View {
    name: &'static str,
    sql: &'static str,
    check: &'static str,
}

/// One measured configuration: statements run after the streams are
/// created, then its views in order (later ones may read earlier ones).
struct Query {
    name: &'static str,
    setup: &'static [&'static str],
    views: &'static [View],
    /// Events per server CPU-second to reach.
    target: Option<f64>,
}

static NO_VIEW: Query = Query { name: "no_view", setup: &[], views: &[], target: None };

static QUERIES: [Query; 6] = [
    Query {
        name: "q0",
        setup: &[],
        views: &[View {
            name: "q0",
            sql: "SELECT auction, bidder, price, date_time FROM bid",
            check: "count(*), CAST(sum(price) AS BIGINT)",
        }],
        target: Some(500_000.0),
    },
    Query {
        name: "q1",
        setup: &[],
        views: &[View {
            name: "q1",
            sql: "SELECT auction, bidder, 0.908 * price AS price, date_time FROM bid",
            check: "count(*), CAST(sum(auction) AS BIGINT)",
        }],
        target: Some(500_000.0),
    },
    Query {
        name: "q2",
        setup: &[],
        views: &[View {
            name: "q2",
            sql: "SELECT auction, price FROM bid WHERE auction % 123 = 0",
            check: "count(*), CAST(sum(price) AS BIGINT)",
        }],
        target: Some(500_000.0),
    },
    Query {
        name: "q3",
        setup: &[],
        views: &[View {
            name: "q3",
            sql: "SELECT p.name, p.city, p.state, a.id FROM auction a JOIN person p ON a.seller = p.id \
                  WHERE a.category = 10 AND (p.state = 'or' OR p.state = 'id' OR p.state = 'ca')",
            check: "count(*), CAST(sum(id) AS BIGINT)",
        }],
        target: Some(200_000.0),
    },
    Query {
        name: "q4",
        setup: &[],
        views: &[
            View {
                name: "q4_max",
                sql: "SELECT a.id, a.category, max(b.price) AS final FROM auction a JOIN bid b ON a.id = b.auction \
                      WHERE b.date_time BETWEEN a.date_time AND a.expires GROUP BY a.id, a.category",
                check: "count(*), CAST(sum(final) AS BIGINT)",
            },
            View {
                name: "q4",
                sql: "SELECT category, avg(final) AS avg FROM q4_max GROUP BY category",
                check: "count(*), CAST(sum(category) AS BIGINT)",
            },
        ],
        target: Some(200_000.0),
    },
    Query {
        name: "q5",
        setup: &[],
        views: &[
            View {
                name: "q5_counts",
                sql: "SELECT auction, window_start AS starttime, count(*) AS num \
                      FROM hop(bid, date_time, INTERVAL '2 seconds', INTERVAL '10 seconds') GROUP BY auction, window_start",
                check: "count(*), CAST(sum(num) AS BIGINT)",
            },
            View {
                name: "q5_max",
                sql: "SELECT starttime, max(num) AS maxn FROM q5_counts GROUP BY starttime",
                check: "count(*), CAST(sum(maxn) AS BIGINT)",
            },
            View {
                name: "q5",
                sql: "SELECT c.auction, c.num, c.starttime FROM q5_counts c JOIN q5_max m ON c.starttime = m.starttime \
                      WHERE c.num >= m.maxn",
                check: "count(*), CAST(sum(num) AS BIGINT)",
            },
        ],
        target: Some(200_000.0),
    },
];

/// CSV of one stream in chunks of at most `CHUNK_ROWS` rows.
#[derive(Default)]
struct Csv {
    chunks: Vec<(Bytes, u64)>,
    current: String,
    current_rows: u64,
    rows: usize,
}

impl Csv {
    /// The buffer to write the next row into.
    fn row(&mut self) -> &mut String {
        if self.current_rows == CHUNK_ROWS as u64 {
            self.flush();
        }
        self.current_rows += 1;
        self.rows += 1;
        &mut self.current
    }

    fn flush(&mut self) {
        if self.current_rows > 0 {
            self.chunks.push((Bytes::from(std::mem::take(&mut self.current)), self.current_rows));
            self.current_rows = 0;
        }
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().map(|(chunk, _)| chunk.len()).sum()
    }
}

/// The generated events, ready to COPY.
struct Events {
    person: Csv,
    auction: Csv,
    bid: Csv,
}

impl Events {
    fn total(&self) -> usize {
        self.person.rows + self.auction.rows + self.bid.rows
    }

    /// In COPY order: people and auctions before the bids that refer to them.
    fn streams(&self) -> [(&'static str, &Csv); 3] {
        [("person", &self.person), ("auction", &self.auction), ("bid", &self.bid)]
    }
}

/// `ms` since the epoch as PostgreSQL prints a TIMESTAMPTZ in UTC.
fn write_time(out: &mut String, ms: u64) {
    let time = chrono::DateTime::from_timestamp_millis(ms as i64).expect("event time in range");
    write!(out, "{}", time.format("%Y-%m-%d %H:%M:%S%.3f+00")).unwrap();
}

// The generator's text is letters, digits, spaces and URL punctuation
// without commas or quotes, so no field needs CSV quoting.

fn write_person(out: &mut String, p: &Person) {
    write!(out, "{},{},{},{},{},{},", p.id, p.name, p.email_address, p.credit_card, p.city, p.state).unwrap();
    write_time(out, p.date_time);
    writeln!(out, ",{}", p.extra).unwrap();
}

fn write_auction(out: &mut String, a: &Auction) {
    write!(out, "{},{},{},{},{},", a.id, a.item_name, a.description, a.initial_bid, a.reserve).unwrap();
    write_time(out, a.date_time);
    out.push(',');
    write_time(out, a.expires);
    writeln!(out, ",{},{},{}", a.seller, a.category, a.extra).unwrap();
}

fn write_bid(out: &mut String, b: &Bid) {
    write!(out, "{},{},{},{},{},", b.auction, b.bidder, b.price, b.channel, b.url).unwrap();
    write_time(out, b.date_time);
    writeln!(out, ",{}", b.extra).unwrap();
}

fn generate(events: usize) -> Events {
    let config = NexmarkConfig { base_time: BASE_TIME_MS, ..NexmarkConfig::default() };
    let mut out = Events { person: Csv::default(), auction: Csv::default(), bid: Csv::default() };
    for event in EventGenerator::new(config).take(events) {
        match event {
            Event::Person(p) => write_person(out.person.row(), &p),
            Event::Auction(a) => write_auction(out.auction.row(), &a),
            Event::Bid(b) => write_bid(out.bid.row(), &b),
        }
    }
    out.person.flush();
    out.auction.flush();
    out.bid.flush();
    out
}

fn env_or(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

/// The criterion filter, if any (the first argument that is not an option).
fn filter() -> Option<String> {
    std::env::args().skip(1).find(|arg| !arg.starts_with('-'))
}

/// `sql` with every whole identifier in `views` renamed `direct_<name>`:
/// the views it reads, as the CTEs that recompute them.
fn direct_names(sql: &str, views: &[&str]) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut word = String::new();
    for c in sql.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if views.contains(&word.as_str()) {
            out.push_str("direct_");
        }
        out.push_str(&word);
        word.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// The one row of `sql`, every column a BIGINT (NULL for a sum of nothing).
async fn bigints(client: &Client, sql: &str) -> Vec<Option<i64>> {
    let row = client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    (0..row.len()).map(|i| row.get::<_, Option<i64>>(i)).collect()
}

/// Every view of `query` against its defining query run directly over the
/// streams (the views it reads inlined as CTEs); returns each view's rows.
async fn check_views(client: &Client, query: &Query) -> Vec<(&'static str, i64)> {
    let names: Vec<&str> = query.views.iter().map(|v| v.name).collect();
    let mut ctes = Vec::new();
    let mut counts = Vec::new();
    for view in query.views {
        ctes.push(format!("direct_{} AS ({})", view.name, direct_names(view.sql, &names)));
        let kept = bigints(client, &format!("SELECT {} FROM {}", view.check, view.name)).await;
        let direct =
            bigints(client, &format!("WITH {} SELECT {} FROM direct_{}", ctes.join(", "), view.check, view.name)).await;
        assert_eq!(kept, direct, "{}: view {} ({}) against its query run directly", query.name, view.name, view.check);
        let rows = kept[0].unwrap_or(0);
        assert!(rows > 0, "{}: view {} is empty: the query selects nothing from these events", query.name, view.name);
        counts.push((view.name, rows));
    }
    counts
}

struct Run {
    wall: Duration,
    cpu: Duration,
    peak_rss_mib: f64,
}

/// One run of `query` on a fresh server: setup (not measured), the ingest
/// (measured), then, if `check`, the views against their queries.
fn run(runtime: &Runtime, query: &Query, events: &Events, check: bool) -> (Run, Vec<(&'static str, i64)>) {
    let server = Server::start(&format!("nexmark-{}", query.name));
    let client = runtime.block_on(async {
        let client = connect(&server.conninfo()).await;
        client.batch_execute(CREATE_STREAMS).await.unwrap();
        for statement in query.setup {
            client.batch_execute(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        for view in query.views {
            let create = format!("CREATE MATERIALIZED VIEW {} AS {}", view.name, view.sql);
            client.batch_execute(&create).await.unwrap_or_else(|e| panic!("{create}: {e}"));
        }
        client
    });
    let cpu_before = server.cpu_time();
    let start = Instant::now();
    runtime.block_on(async {
        for (stream, csv) in events.streams() {
            for (chunk, rows) in &csv.chunks {
                assert_eq!(copy_in(&client, stream, chunk.clone()).await, *rows, "COPY {stream}");
            }
        }
    });
    let wall = start.elapsed();
    let cpu = server.cpu_time().saturating_sub(cpu_before);
    let measured = Run { wall, cpu, peak_rss_mib: server.peak_rss_mib() };
    let counts = if check { runtime.block_on(check_views(&client, query)) } else { Vec::new() };
    (measured, counts)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// `1.23/1.31/1.27`: every run's time in seconds.
fn seconds(times: &[Duration]) -> String {
    let each: Vec<String> = times.iter().map(|t| format!("{:.2}", t.as_secs_f64())).collect();
    each.join("/")
}

fn per_second(events: usize, time: Duration) -> f64 {
    events as f64 / time.as_secs_f64()
}

/// Runs `query` `runs` times and prints its figures; returns its median events/s.
fn measure(runtime: &Runtime, query: &Query, events: &Events, runs: usize, baseline: Option<f64>) -> f64 {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut peak_rss_mib: f64 = 0.0;
    let mut counts = Vec::new();
    for index in 0..runs {
        let (measured, checked) = run(runtime, query, events, index == 0);
        if index == 0 {
            counts = checked;
        }
        walls.push(measured.wall);
        cpus.push(measured.cpu);
        peak_rss_mib = peak_rss_mib.max(measured.peak_rss_mib);
    }
    let total = events.total();
    let (wall, cpu) = (median(walls.clone()), median(cpus.clone()));
    let rate = per_second(total, wall);
    let per_core = per_second(total, cpu);
    let versus = baseline.map(|b| format!(" ({:.0}% of no_view)", 100.0 * rate / b)).unwrap_or_default();
    let target = query
        .target
        .map(|t| {
            let verdict = if per_core >= t { "met" } else { "NOT met" };
            format!("; target >= {:.0}k events/s/core: {verdict}", t / 1000.0)
        })
        .unwrap_or_default();
    let views = if counts.is_empty() {
        String::new()
    } else {
        let rows: Vec<String> = counts.iter().map(|(name, rows)| format!("{name} {rows}")).collect();
        format!("; view rows (checked against the queries): {}", rows.join(", "))
    };
    eprintln!(
        "nexmark/{}: {:.0} events/s{versus}, {:.0} events/s/core (median of {runs}: wall {:.2}s, server CPU {:.2}s; \
         runs wall {}s, CPU {}s); strata peak RSS {:.0} MiB{target}{views}",
        query.name,
        rate,
        per_core,
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        seconds(&walls),
        seconds(&cpus),
        peak_rss_mib,
    );
    rate
}

fn nexmark_views(_: &mut Criterion) {
    let filter = filter();
    let selected: Vec<&Query> =
        QUERIES.iter().filter(|q| filter.as_deref().is_none_or(|f| q.name.contains(f))).collect();
    if selected.is_empty() {
        return;
    }
    let events = env_or("STRATA_NEXMARK_EVENTS", DEFAULT_EVENTS);
    let runs = env_or("STRATA_NEXMARK_RUNS", DEFAULT_RUNS).max(1);
    let started = Instant::now();
    let events = generate(events);
    let bytes: usize = events.streams().iter().map(|(_, csv)| csv.bytes()).sum();
    eprintln!(
        "nexmark: {} events ({} person, {} auction, {} bid; {:.0} MB of CSV) generated in {:.1}s; \
         each run COPYs them into a fresh server in commits of at most {CHUNK_ROWS} rows",
        events.total(),
        events.person.rows,
        events.auction.rows,
        events.bid.rows,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let runtime = Runtime::new().unwrap();
    let baseline = measure(&runtime, &NO_VIEW, &events, runs, None);
    for query in selected {
        measure(&runtime, query, &events, runs, Some(baseline));
    }
}

criterion_group!(benches, nexmark_views);
criterion_main!(benches);
