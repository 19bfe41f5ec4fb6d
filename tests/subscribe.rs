//! `COPY (SUBSCRIBE x …) TO STDOUT` over the wire with tokio-postgres: the
//! snapshot, live changes as they commit (tables, streams, views), cancel,
//! and resuming after the last offset received with nothing lost or repeated.

mod common;

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::{Client, CopyOutStream, NoTls};

/// Reads COPY lines until at least `count` have arrived (or 10 s pass):
/// every line of the last chunk read is returned.
async fn lines(stream: &mut std::pin::Pin<Box<CopyOutStream>>, count: usize) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    while lines.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} lines arrived: {lines:?}", lines.len()))
            .expect("the subscription ended")
            .unwrap_or_else(|e| panic!("subscription data after {lines:?}: {e}"));
        pending.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            lines.push(line.trim_end_matches('\n').split('\t').map(str::to_string).collect());
        }
    }
    lines
}

/// `_diff` and the relation's columns of `lines` (offsets and times dropped).
fn changes(lines: &[Vec<String>]) -> Vec<String> {
    lines.iter().map(|l| l[2..].join(" ")).collect()
}

fn offsets(lines: &[Vec<String>]) -> Vec<i64> {
    lines.iter().map(|l| l[0].parse().unwrap()).collect()
}

async fn subscribe(client: &Client, sql: &str) -> std::pin::Pin<Box<CopyOutStream>> {
    Box::pin(client.copy_out(sql).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_streams_snapshot_then_changes_and_resumes_exactly_once() {
    let server = common::Server::start(&common::fresh_data_dir("subscribe"));
    let writer = server.client().await;
    writer
        .batch_execute(
            "CREATE TABLE acct (id BIGINT PRIMARY KEY, owner TEXT, balance INT);
             CREATE STREAM ev (id BIGINT, note TEXT);
             INSERT INTO acct VALUES (1, 'ann', 100), (2, 'bob', 50);
             INSERT INTO ev VALUES (1, 'opened');
             CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(balance) AS total FROM acct;",
        )
        .await
        .unwrap();

    // A table: its current rows, then each change with its _diff.
    let reader = server.client().await;
    let mut table = subscribe(&reader, "COPY (SUBSCRIBE acct) TO STDOUT").await;
    let mut snapshot = changes(&lines(&mut table, 2).await);
    snapshot.sort();
    assert_eq!(snapshot, ["1 1 ann 100", "1 2 bob 50"]);
    writer.batch_execute("UPDATE acct SET balance = 70 WHERE id = 1").await.unwrap();
    let update = lines(&mut table, 2).await;
    assert_eq!(changes(&update), ["-1 1 ann 100", "1 1 ann 70"]);
    assert_eq!(update[0][0], update[1][0].parse::<i64>().map(|o| o - 1).unwrap().to_string());
    writer.batch_execute("DELETE FROM acct WHERE id = 2").await.unwrap();
    assert_eq!(changes(&lines(&mut table, 1).await), ["-1 2 bob 50"]);

    // A view without its snapshot: only what changes after the start.
    let view_reader = server.client().await;
    let mut view = subscribe(&view_reader, "COPY (SUBSCRIBE total WITH (snapshot = false)) TO STDOUT").await;
    writer.batch_execute("INSERT INTO acct VALUES (3, 'cy', 5)").await.unwrap();
    assert_eq!(changes(&lines(&mut view, 2).await), ["-1 1 70", "1 2 75"]);

    // A cancelled subscription ends with 57014 and leaves the session usable.
    view_reader.cancel_token().cancel_query(NoTls).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), view.next()).await.expect("cancel ends the COPY");
    let error = ended.expect("an error, not the end").expect_err("cancelled");
    assert_eq!(error.code().map(|c| c.code()), Some("57014"), "{error:?}");
    let one: i32 = view_reader.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    // A stream: resume after the last offset received, in the middle of
    // a burst, and get every later event exactly once.
    let stream_reader = server.client().await;
    let mut events = subscribe(&stream_reader, "COPY (SUBSCRIBE ev) TO STDOUT").await;
    assert_eq!(changes(&lines(&mut events, 1).await), ["1 1 opened"]);
    for i in 0..20 {
        writer.execute("INSERT INTO ev VALUES ($1, 'e')", &[&(i as i64 + 100)]).await.unwrap();
    }
    let first = lines(&mut events, 7).await;
    drop(events);
    drop(stream_reader);
    let resume_after = *offsets(&first).last().unwrap();
    let resumed_reader = server.client().await;
    let mut resumed = subscribe(
        &resumed_reader,
        &format!("COPY (SUBSCRIBE ev WITH (snapshot = false) VERSION AS OF {resume_after}) TO STDOUT"),
    )
    .await;
    // A read can bring more lines than asked for (one chunk, many commits).
    let rest = lines(&mut resumed, 20 - first.len()).await;
    let ids: Vec<String> = first.iter().chain(&rest).map(|l| l[3].clone()).collect();
    let expected: Vec<String> = (100..120).map(|i: i64| i.to_string()).collect();
    assert_eq!(ids, expected, "every event once, in order");
    assert!(offsets(&rest).windows(2).all(|w| w[0] < w[1]));

    // SUBSCRIBE inside a transaction block and on a missing relation fail clearly.
    let other = server.client().await;
    let missing = other.copy_out("COPY (SUBSCRIBE nosuch) TO STDOUT").await.err().expect("missing relation");
    assert_eq!(missing.code().map(|c| c.code()), Some("42P01"));
    let syntax = server.client().await;
    let bad =
        syntax.copy_out("COPY (SUBSCRIBE acct WITH (snapshot = maybe)) TO STDOUT").await.err().expect("bad option");
    assert_eq!(bad.code().map(|c| c.code()), Some("42601"));
}

/// `DECLARE c CURSOR FOR SUBSCRIBE x` then `FETCH`: rows as they commit,
/// waiting up to the timeout for the first; `CLOSE` ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_fetches_subscription_rows() {
    let server = common::Server::start(&common::fresh_data_dir("subscribe-cursor"));
    let writer = server.client().await;
    writer
        .batch_execute(
            "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT);
             INSERT INTO kv VALUES (1, 'one'), (2, 'two');",
        )
        .await
        .unwrap();
    let reader = server.client().await;
    reader.batch_execute("BEGIN; DECLARE c CURSOR FOR SUBSCRIBE kv").await.unwrap();
    // The snapshot, one row at a time, then the rest (extended protocol).
    let first = reader.query("FETCH 1 FROM c", &[]).await.unwrap();
    assert_eq!(first.len(), 1);
    let rest = reader.query("FETCH ALL FROM c", &[]).await.unwrap();
    let mut keys: Vec<i32> = first.iter().chain(&rest).map(|row| row.get::<_, i32>("k")).collect();
    keys.sort();
    assert_eq!(keys, [1, 2]);
    assert!(first.iter().chain(&rest).all(|row| row.get::<_, i64>("_diff") == 1));

    // Nothing committed: the timeout passes with no rows.
    let none = reader.simple_query("FETCH ALL FROM c WITH (timeout = '100 milliseconds')").await.unwrap();
    assert!(!none.iter().any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))));

    // A change committed while FETCH waits arrives.
    let fetching = tokio::spawn({
        let reader = reader;
        async move {
            let rows = reader.query("FETCH ALL c WITH (timeout = '10s')", &[]).await.unwrap();
            let changes: Vec<(i64, i32, String)> =
                rows.iter().map(|r| (r.get("_diff"), r.get("k"), r.get("v"))).collect();
            reader.batch_execute("CLOSE c; COMMIT").await.unwrap();
            let missing = reader.batch_execute("FETCH 1 FROM c").await.expect_err("closed");
            assert_eq!(missing.code().map(|c| c.code()), Some("34000"));
            changes
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.batch_execute("UPDATE kv SET v = 'uno' WHERE k = 1").await.unwrap();
    let changes = fetching.await.unwrap();
    assert_eq!(changes, [(-1, 1, "one".to_string()), (1, 1, "uno".to_string())]);
}

/// The notices that have arrived, as (SQLSTATE, message).
fn arrived(
    notices: &mut tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::error::DbError>,
) -> Vec<(String, String)> {
    std::iter::from_fn(|| notices.try_recv().ok())
        .map(|n| (n.code().code().to_string(), n.message().to_string()))
        .collect()
}

/// `(read_through, behind, rows_read)` of each open subscription on `relation`.
async fn listed(client: &Client, relation: &str) -> Vec<(Option<String>, i64, i64, i64)> {
    let rows = client
        .query(
            "SELECT cursor, read_through, behind, rows_read FROM strata.subscriptions WHERE relation = $1 ORDER BY id",
            &[&relation],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()
}

/// A subscriber that finds more than `behind_warning` offsets waiting gets a
/// WARNING, once per time it falls behind; `strata.subscriptions` shows how
/// far behind each subscription is and drops it when it ends. Writers are
/// not held up by a subscriber that does not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_behind_the_log_is_warned_and_listed() {
    let server = common::Server::start(&common::fresh_data_dir("subscribe-behind"));
    let writer = server.client().await;
    writer.batch_execute("CREATE STREAM ev (n BIGINT)").await.unwrap();
    let (reader, mut notices) = server.client_with_notices().await;
    reader
        .batch_execute("DECLARE c CURSOR FOR SUBSCRIBE ev WITH (snapshot = false, behind_warning = 1000)")
        .await
        .unwrap();
    let start: i64 = writer.query_one("SELECT current_offset()", &[]).await.unwrap().get(0);
    assert_eq!(listed(&writer, "ev").await, [(Some("c".to_string()), start, 0, 0)]);

    // 2,000 events while the cursor is not read: listed as behind; the next
    // FETCH warns, then reads them all.
    writer.batch_execute("INSERT INTO ev SELECT * FROM generate_series(1, 2000)").await.unwrap();
    assert_eq!(listed(&writer, "ev").await, [(Some("c".to_string()), start, 2000, 0)]);
    let rows = reader.query("FETCH ALL FROM c", &[]).await.unwrap();
    assert_eq!(rows.len(), 2000);
    let warned = arrived(&mut notices);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, "01000");
    assert!(warned[0].1.contains("\"ev\" is 2000 offsets behind the log"), "{warned:?}");
    assert_eq!(listed(&writer, "ev").await, [(Some("c".to_string()), start + 2000, 0, 2000)]);

    // Within the bound: no warning, and it is armed again …
    writer.batch_execute("INSERT INTO ev SELECT * FROM generate_series(1, 500)").await.unwrap();
    assert_eq!(reader.query("FETCH ALL FROM c", &[]).await.unwrap().len(), 500);
    assert_eq!(arrived(&mut notices), []);
    // … so falling behind again warns again.
    writer.batch_execute("INSERT INTO ev SELECT * FROM generate_series(1, 1500)").await.unwrap();
    assert_eq!(reader.query("FETCH ALL FROM c", &[]).await.unwrap().len(), 1500);
    assert_eq!(arrived(&mut notices).len(), 1);
    reader.batch_execute("CLOSE c").await.unwrap();
    assert_eq!(listed(&writer, "ev").await, []);

    // A COPY subscriber that stops reading: commits go on, it is listed as
    // behind, and it is unlisted when it is cancelled. Each commit is more
    // than its bound, so it is warned once (never caught up in between).
    let (copy_reader, mut copy_notices) = server.client_with_notices().await;
    let cancel = copy_reader.cancel_token();
    let sql = "COPY (SUBSCRIBE ev WITH (snapshot = false, behind_warning = 1000)) TO STDOUT";
    let mut stream = subscribe(&copy_reader, sql).await;
    let before: i64 = writer.query_one("SELECT current_offset()", &[]).await.unwrap().get(0);
    // Bounded: a writer held up by the subscriber fails here instead of hanging.
    let writes = async {
        for _ in 0..20 {
            writer.batch_execute("INSERT INTO ev SELECT * FROM generate_series(1, 5000)").await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(30), writes).await.expect("writers wait for no subscriber");
    let after: i64 = writer.query_one("SELECT current_offset()", &[]).await.unwrap().get(0);
    assert_eq!(after - before, 100_000, "no writer waits for the subscriber");
    let listing = listed(&writer, "ev").await;
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].0, None);
    assert_eq!(listing[0].1 + listing[0].2, after, "read through + behind is the log's offset");
    assert!(lines(&mut stream, 100_000).await.len() >= 100_000);
    let warned = arrived(&mut copy_notices);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].1.contains("offsets behind the log"), "{warned:?}");
    cancel.cancel_query(NoTls).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !listed(&writer, "ev").await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "a cancelled subscription stays listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// BEGIN inside a transaction block and COMMIT or ROLLBACK outside one warn
/// as PostgreSQL does (25001, 25P01) and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_commands_out_of_place_warn() {
    let server = common::Server::start(&common::fresh_data_dir("subscribe-warn-transaction"));
    let (client, mut notices) = server.client_with_notices().await;
    client.batch_execute("BEGIN; BEGIN; COMMIT; COMMIT; ROLLBACK").await.unwrap();
    let warned: Vec<String> = arrived(&mut notices).into_iter().map(|(code, _)| code).collect();
    assert_eq!(warned, ["25001", "25P01", "25P01"]);
}

/// A big snapshot comes in scan order a batch at a time: every row once,
/// then the changes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_snapshot_streams_every_row_once_then_changes() {
    let server = common::Server::start(&common::fresh_data_dir("subscribe-big-snapshot"));
    let writer = server.client().await;
    writer
        .batch_execute("CREATE STREAM ev (n BIGINT); INSERT INTO ev SELECT * FROM generate_series(1, 30000)")
        .await
        .unwrap();
    writer.batch_execute("CHECKPOINT; INSERT INTO ev SELECT * FROM generate_series(30001, 50000)").await.unwrap();
    let reader = server.client().await;
    let mut stream = subscribe(&reader, "COPY (SUBSCRIBE ev) TO STDOUT").await;
    let snapshot = lines(&mut stream, 50_000).await;
    assert_eq!(snapshot.len(), 50_000, "no row beyond the snapshot yet");
    let mut values: Vec<i64> = snapshot.iter().map(|l| l[3].parse().unwrap()).collect();
    values.sort_unstable();
    assert_eq!(values, (1..=50_000).collect::<Vec<i64>>());
    let mut seen = offsets(&snapshot);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 50_000, "each row with its own offset, once");
    writer.batch_execute("INSERT INTO ev VALUES (0)").await.unwrap();
    let change = lines(&mut stream, 1).await;
    assert_eq!(changes(&change), ["1 0"]);
    assert!(offsets(&change)[0] > *seen.last().unwrap());
}
