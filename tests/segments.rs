//! Sealed history: the tail moves into Parquet segments listed in the
//! manifest, WAL files they cover are deleted, reads across segments and the
//! tail equal what was written (before and after restart), `_offset` filters
//! skip segments (visible in EXPLAIN), and a damaged segment is reported,
//! never read as if it were good.

mod common;

use tokio_postgres::Client;

const SMALL_STORAGE: &[&str] = &["--wal-file-bytes-max", "4096", "--seal-age-ms-max", "3600000"];

async fn all_rows(client: &Client) -> Vec<(i64, i64, String)> {
    client
        .query("SELECT _offset, n, note FROM s ORDER BY _offset", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn segment_files(data_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("store/segments/1"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_span_segments_and_tail_across_restarts() {
    let data_dir = common::fresh_data_dir("segments");
    let mut server = common::Server::start_with(&data_dir, SMALL_STORAGE);
    let client = server.client().await;
    client.batch_execute("CREATE STREAM s (n BIGINT NOT NULL, note TEXT)").await.unwrap();
    // Reference model: every row with the offset the log must have given it.
    let mut expected = Vec::new();
    let mut offset = 1; // CREATE STREAM took offset 1
    for batch in 0..4i64 {
        for commit in 0..25i64 {
            let n = batch * 100 + commit;
            client
                .execute("INSERT INTO s VALUES ($1, $2), ($1 + 1000, $2)", &[&n, &format!("b{batch}")])
                .await
                .unwrap();
            expected.push((offset + 1, n, format!("b{batch}")));
            expected.push((offset + 2, n + 1000, format!("b{batch}")));
            offset += 2;
        }
        if batch < 3 {
            client.batch_execute("CHECKPOINT").await.unwrap();
        }
    }
    // Three segments, one tail, one answer.
    assert_eq!(segment_files(&data_dir).len(), 3);
    assert_eq!(all_rows(&client).await, expected);

    // WAL files holding only sealed commits are gone: at most one remaining
    // file starts at or before the last sealed offset.
    let sealed_through = expected[149].0 as u64;
    let wal_starts: Vec<u64> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".wal")?.parse().ok())
        .collect();
    assert!(wal_starts.len() < 20, "{wal_starts:?}");
    assert!(wal_starts.iter().filter(|start| **start <= sealed_through).count() <= 1, "{wal_starts:?}");

    // An _offset range inside the second segment reads only that file.
    let (low, high) = (expected[60].0, expected[70].0);
    let plan: String = client
        .query(&format!("EXPLAIN SELECT count(*) FROM s WHERE _offset BETWEEN {low} AND {high}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect();
    assert_eq!(plan.matches(".parquet").count(), 1, "{plan}");
    let count: i64 = client
        .query_one(&format!("SELECT count(*) FROM s WHERE _offset BETWEEN {low} AND {high}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, high - low + 1);

    assert!(server.stop());
    server = common::Server::start_with(&data_dir, SMALL_STORAGE);
    let client = server.client().await;
    assert_eq!(all_rows(&client).await, expected, "after restart");
    client.batch_execute("INSERT INTO s VALUES (-1, 'after')").await.unwrap();
    let last: i64 = client.query_one("SELECT max(_offset) FROM s", &[]).await.unwrap().get(0);
    assert_eq!(last, offset + 1, "offsets continue after the sealed ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_segment_is_reported() {
    let data_dir = common::fresh_data_dir("segment-damage");
    let mut server = common::Server::start(&data_dir);
    let client = server.client().await;
    client.batch_execute("CREATE STREAM s (n BIGINT NOT NULL, note TEXT)").await.unwrap();
    client.batch_execute("INSERT INTO s VALUES (1, 'a'), (2, 'b'); CHECKPOINT").await.unwrap();
    assert!(server.stop());

    let segment = segment_files(&data_dir).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();

    let server = common::Server::start(&data_dir);
    let error = server.client().await.query("SELECT * FROM s", &[]).await.unwrap_err();
    let message = error.as_db_error().expect("server error").message().to_string();
    assert_eq!(error.code().map(|c| c.code()), Some("XX001"), "{message}");
    assert!(message.contains("checksum") && message.contains(".parquet"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_survive_kill_9_and_keep_history() {
    let dir = common::fresh_data_dir("segments-rename");
    let mut server = common::Server::start(&dir);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE STREAM clicks (n BIGINT NOT NULL);
             INSERT INTO clicks VALUES (1), (2);
             CHECKPOINT;
             INSERT INTO clicks VALUES (3);
             CREATE TABLE kv (k BIGINT PRIMARY KEY, v TEXT);
             INSERT INTO kv VALUES (1, 'a');
             ALTER STREAM clicks RENAME TO taps;
             ALTER TABLE kv RENAME TO pairs;
             INSERT INTO taps VALUES (4);
             UPDATE pairs SET v = 'b' WHERE k = 1;",
        )
        .await
        .unwrap();
    // Renamed in the WAL only (not sealed since), then killed.
    server.kill9();
    let server = common::Server::start(&dir);
    let client = server.client().await;
    let total: i64 = client.query_one("SELECT CAST(sum(n) AS BIGINT) FROM taps", &[]).await.unwrap().get(0);
    assert_eq!(total, 10, "history before and after the rename is one relation");
    let value: String = client.query_one("SELECT v FROM pairs WHERE k = 1", &[]).await.unwrap().get(0);
    assert_eq!(value, "b");
    let changes: i64 = client.query_one("SELECT count(*) FROM changes('pairs')", &[]).await.unwrap().get(0);
    assert_eq!(changes, 3);
    let error = client.query_one("SELECT * FROM clicks", &[]).await.unwrap_err();
    assert_eq!(error.code().unwrap().code(), "42P01");
    let error = client.batch_execute("ALTER TABLE taps RENAME TO x").await.unwrap_err();
    assert_eq!(error.code().unwrap().code(), "42809", "taps is a stream");
    let error = client.batch_execute("ALTER STREAM taps RENAME TO pairs").await.unwrap_err();
    assert_eq!(error.code().unwrap().code(), "42P07");

    // Sealed: the manifest's catalog carries the new names.
    client.batch_execute("CHECKPOINT").await.unwrap();
    drop(client);
    let mut server = server;
    assert!(server.stop());
    let server = common::Server::start(&dir);
    let client = server.client().await;
    let total: i64 = client.query_one("SELECT CAST(sum(n) AS BIGINT) FROM taps", &[]).await.unwrap().get(0);
    assert_eq!(total, 10);
}

/// The value of `field=` in the last "log recovered" line of a server log.
fn recovered_field(data_dir: &std::path::Path, field: &str) -> u64 {
    let log = std::fs::read_to_string(data_dir.with_extension("log")).unwrap();
    // Strip ANSI colour codes: `\x1b[…m`.
    let mut plain = String::new();
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    let line = plain.lines().rfind(|l| l.contains("log recovered")).expect("a recovery line");
    let value = line.split(&format!("{field}=")).nth(1).expect("the field").split_whitespace().next().unwrap();
    value.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_state_restarts_from_its_latest_snapshot() {
    let data_dir = common::fresh_data_dir("state-snapshot");
    let storage = ["--seal-age-ms-max", "3600000", "--snapshot-changes-min", "1"];
    let mut server = common::Server::start_with(&data_dir, &storage);
    let client = server.client().await;
    client.batch_execute("CREATE TABLE t (k BIGINT PRIMARY KEY, v TEXT NOT NULL)").await.unwrap();
    client.batch_execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g").await.unwrap();
    let inserted: i64 = client.query_one("SELECT current_offset()", &[]).await.unwrap().get(0);
    // 100 changes for 100 rows: this seal writes a snapshot.
    client.batch_execute("CHECKPOINT").await.unwrap();
    // 20 changes: sealed into a segment, too few for a snapshot.
    client.batch_execute("UPDATE t SET v = v || '!' WHERE k <= 10; CHECKPOINT").await.unwrap();
    // 5 changes, in the WAL only.
    client.batch_execute("DELETE FROM t WHERE k > 95").await.unwrap();
    drop(client);
    server.kill9();

    let snapshots: Vec<_> = std::fs::read_dir(data_dir.join("store/snapshots/1")).unwrap().collect();
    assert_eq!(snapshots.len(), 1, "one snapshot");
    let server = common::Server::start_with(&data_dir, &storage);
    assert_eq!(recovered_field(&data_dir, "state_rows_replayed"), 20, "only the segment after the snapshot");
    assert_eq!(recovered_field(&data_dir, "replayed_commits"), 1, "only the DELETE from the WAL");
    let client = server.client().await;
    let row =
        client.query_one("SELECT count(*), count(*) FILTER (WHERE v LIKE '%!'), max(k) FROM t", &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (95, 10, 95));
    let then: i64 = client
        .query_one(&format!("SELECT count(*) FROM t VERSION AS OF {inserted} WHERE v NOT LIKE '%!'"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(then, 100);
    drop(client);
    drop(server);

    // A damaged snapshot stops the start, naming the file.
    let snapshot = snapshots[0].as_ref().unwrap().path();
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&snapshot, &bytes).unwrap();
    let log = common::Server::try_start_with(&data_dir, &storage).err().expect("the start fails");
    assert!(log.contains("checksum") && log.contains("snapshots/1/"), "{log}");
}

/// `ALTER … ADD / DROP / RENAME COLUMN` is a logged event: after kill -9 (WAL replay
/// over rows of both layouts) and after a seal and restart (segments and a
/// snapshot from before the change), rows read with the new columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_changes_survive_kill_9_and_seals() {
    let data_dir = common::fresh_data_dir("alter-columns");
    let storage = ["--seal-age-ms-max", "3600000", "--snapshot-changes-min", "1", "--scan-cache-rows-min", "0"];
    let mut server = common::Server::start_with(&data_dir, &storage);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, a TEXT);
             INSERT INTO t VALUES (1, 'x'), (2, 'y');
             CHECKPOINT;
             CREATE STREAM s (x INT);
             INSERT INTO s VALUES (1);",
        )
        .await
        .unwrap();
    let before: i64 = client.query_one("SELECT current_offset()", &[]).await.unwrap().get(0);
    client
        .batch_execute(
            "ALTER TABLE t ADD COLUMN b INT DEFAULT 5;
             UPDATE t SET b = 6 WHERE id = 1;
             ALTER STREAM s ADD COLUMN y TEXT DEFAULT 'z';
             INSERT INTO s VALUES (2, 'w');
             ALTER STREAM s DROP COLUMN x;
             ALTER TABLE t RENAME COLUMN a TO label;
             ALTER STREAM s RENAME COLUMN y TO tag;",
        )
        .await
        .unwrap();
    async fn check(client: &Client, before: i64) {
        let rows: Vec<(i32, String, i32)> = client
            .query("SELECT id, label, b FROM t ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(rows, vec![(1, "x".to_string(), 6), (2, "y".to_string(), 5)]);
        let then: Vec<(i32, i32)> = client
            .query(&format!("SELECT id, b FROM t VERSION AS OF {before} ORDER BY id"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(then, vec![(1, 5), (2, 5)]);
        let events: Vec<String> =
            client.query("SELECT tag FROM s ORDER BY _offset", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(events, vec!["z".to_string(), "w".to_string()]);
    }
    check(&client, before).await;
    drop(client);
    server.kill9();
    let mut server = common::Server::start_with(&data_dir, &storage);
    let client = server.client().await;
    check(&client, before).await;
    client.batch_execute("CHECKPOINT").await.unwrap();
    drop(client);
    server.kill9();
    let server = common::Server::start_with(&data_dir, &storage);
    let client = server.client().await;
    check(&client, before).await;
}

/// Runs of small segments (a seal each) are merged into one file in the
/// background; every row keeps its offset and time, before and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_segments_are_merged_without_changing_a_row() {
    let data_dir = common::fresh_data_dir("segment-merge");
    let mut server = common::Server::start_with(&data_dir, SMALL_STORAGE);
    let client = server.client().await;
    client.batch_execute("CREATE STREAM s (n BIGINT NOT NULL, note TEXT)").await.unwrap();
    for seal in 0..10i64 {
        client.execute("INSERT INTO s VALUES ($1, 'x'), ($1 + 100, 'y')", &[&seal]).await.unwrap();
        client.batch_execute("CHECKPOINT").await.unwrap();
    }
    let rows = async |client: &Client| -> Vec<(i64, i64, String, String)> {
        client
            .query("SELECT _offset, n, note, CAST(_ts AS TEXT) FROM s ORDER BY _offset", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    };
    let before = rows(&client).await;
    assert_eq!(before.len(), 20);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while segment_files(&data_dir).len() > 2 {
        assert!(std::time::Instant::now() < deadline, "segments were not merged: {:?}", segment_files(&data_dir));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(rows(&client).await, before);
    let count: i64 = client.query_one("SELECT count(*) FROM s WHERE _offset > 10", &[]).await.unwrap().get(0);
    assert_eq!(count, before.iter().filter(|r| r.0 > 10).count() as i64);
    drop(client);
    server.kill9();
    let server = common::Server::start_with(&data_dir, SMALL_STORAGE);
    let client = server.client().await;
    assert_eq!(rows(&client).await, before, "after restart");
}

/// `--store file:///dir` puts sealed history in that directory, not the data
/// directory's own `store/`, and a restart reads it back from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_named_by_url_holds_sealed_history() {
    let data_dir = common::fresh_data_dir("file-store");
    let objects = common::fresh_data_dir("file-store-objects").join("sealed history");
    let url = format!("file://{}", objects.display().to_string().replace(' ', "%20"));
    let mut server = common::Server::start_with(&data_dir, &["--store", &url]);
    let client = server.client().await;
    client
        .batch_execute("CREATE STREAM s (n BIGINT, note TEXT); INSERT INTO s VALUES (1, 'a'), (2, 'b'); CHECKPOINT")
        .await
        .unwrap();
    assert!(objects.join("manifest.json").exists(), "the manifest is in {}", objects.display());
    let sealed: Vec<_> = std::fs::read_dir(objects.join("segments"))
        .unwrap()
        .flat_map(|relation| std::fs::read_dir(relation.unwrap().path()).unwrap())
        .map(|file| file.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(sealed.len(), 1, "one segment in {}", objects.display());
    assert!(!data_dir.join("store").exists(), "nothing sealed goes to the data directory");
    server.kill9();
    let server = common::Server::start_with(&data_dir, &["--store", &url]);
    let rows = all_rows(&server.client().await).await;
    assert_eq!(rows.iter().map(|(_, n, note)| (*n, note.as_str())).collect::<Vec<_>>(), [(1, "a"), (2, "b")]);
}
