//! Retention over the wire: a stream drops sealed events older than its
//! `retention`, a table folds changes older than its `history_retention`
//! into a base snapshot. The current state stays, points in time before the
//! kept history fail with 22023, and all of it (the settings included)
//! survives kill -9.

mod common;

use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// Seal after 100 ms, so history reaches segments (which retention trims) quickly.
const FAST_SEALS: &[&str] = &["--seal-age-ms-max", "100"];

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Polls `sql` until it returns `expected` (retention runs in the background).
async fn wait_for(client: &Client, sql: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = count(client, sql).await;
        if found == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{sql} returned {found}, still not {expected}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sqlstate(client: &Client, sql: &str) -> (String, String) {
    let error = client.query(sql, &[]).await.expect_err(sql);
    let db = error.as_db_error().expect("a server error");
    (db.code().code().to_string(), db.message().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_retention_is_dropped_or_folded() {
    let data_dir = common::fresh_data_dir("retention");
    let mut server = common::Server::start_with(&data_dir, FAST_SEALS);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE STREAM clicks (n INT);
             ALTER STREAM clicks SET (retention = '3 seconds');
             CREATE TABLE acct (id INT PRIMARY KEY, balance INT NOT NULL) WITH (history_retention = '3 seconds');",
        )
        .await
        .unwrap();
    let created = count(&client, "SELECT current_offset()").await;
    client.batch_execute("INSERT INTO clicks VALUES (1), (2); INSERT INTO acct VALUES (1, 10), (2, 20)").await.unwrap();
    let inserted = count(&client, "SELECT current_offset()").await;
    client.batch_execute("UPDATE acct SET balance = balance + 1").await.unwrap();
    let updated = count(&client, "SELECT current_offset()").await;
    // The settings are logged DDL: they survive kill -9 before any seal.
    drop(client);
    server.kill9();
    let server = common::Server::start_with(&data_dir, FAST_SEALS);
    let client = server.client().await;

    // Three seconds on, the stream's events are gone, and the table's
    // history up to its latest snapshot is folded into it.
    wait_for(&client, "SELECT count(*) FROM clicks", 0).await;
    wait_for(&client, "SELECT count(*) FROM changes('acct')", 0).await;
    let state: Vec<(i32, i32)> = client
        .query("SELECT id, balance FROM acct ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(state, vec![(1, 11), (2, 21)], "the current state stays");
    let folded =
        count(&client, &format!("SELECT CAST(sum(balance) AS BIGINT) FROM acct VERSION AS OF {updated}")).await;
    assert_eq!(folded, 32, "the base snapshot still answers for its own point");

    for sql in [
        format!("SELECT * FROM acct VERSION AS OF {inserted}"),
        format!("SELECT * FROM clicks VERSION AS OF {created}"),
        "SELECT * FROM acct FOR SYSTEM_TIME AS OF now() - interval '1 hour'".to_string(),
        "SELECT * FROM clicks FOR SYSTEM_TIME AS OF now() - interval '1 hour'".to_string(),
    ] {
        let (code, message) = sqlstate(&client, &sql).await;
        assert_eq!(code, "22023", "{sql}: {message}");
        assert!(message.contains("keeps no history before offset"), "{message}");
    }
    // Changes after an offset whose successors were dropped would be
    // incomplete (a subscriber or a view catching up): refused the same way.
    let (code, message) = sqlstate(&client, &format!("SELECT * FROM changes('clicks', {created})")).await;
    assert_eq!(code, "22023", "{message}");
    assert!(message.contains("keeps no changes before offset"), "{message}");

    // With a longer retention, new history accumulates after the fold, and
    // the whole picture survives kill -9.
    client
        .batch_execute(
            "ALTER STREAM clicks SET (retention = '1 hour');
             ALTER TABLE acct SET (history_retention = '1 hour');
             INSERT INTO clicks VALUES (3);
             UPDATE acct SET balance = 0 WHERE id = 1;",
        )
        .await
        .unwrap();
    let mut server = server;
    drop(client);
    server.kill9();
    let server = common::Server::start_with(&data_dir, FAST_SEALS);
    let client = server.client().await;
    assert_eq!(count(&client, "SELECT count(*) FROM clicks").await, 1);
    assert_eq!(count(&client, "SELECT count(*) FROM changes('acct')").await, 2);
    assert_eq!(count(&client, "SELECT CAST(sum(balance) AS BIGINT) FROM acct").await, 21);
    let (code, _) = sqlstate(&client, &format!("SELECT * FROM acct VERSION AS OF {inserted}")).await;
    assert_eq!(code, "22023");

    // Without retention, history is kept again from now on.
    client.batch_execute("ALTER TABLE acct RESET (history_retention)").await.unwrap();
}
