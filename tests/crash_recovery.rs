//! Durability: SIGKILL a real server during concurrent inserts; after restart
//! every acknowledged row is present exactly once, and nothing else is
//! half-present. Repeated so recovery also recovers a recovered log. Seals
//! and WAL file deletion run during the inserts (small thresholds), so a
//! kill can land in the middle of either.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: i64 = 8;
const CYCLES: i64 = 3;
const SMALL_STORAGE: &[&str] = &["--seal-bytes-max", "100000", "--wal-file-bytes-max", "65536"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_survive_kill_9() {
    let data_dir = common::fresh_data_dir("crash-recovery");
    let mut server = common::Server::start_with(&data_dir, SMALL_STORAGE);
    server
        .client()
        .await
        .batch_execute("CREATE STREAM acks (writer BIGINT NOT NULL, seq BIGINT NOT NULL, pad TEXT)")
        .await
        .unwrap();

    let acknowledged: Arc<Mutex<HashSet<(i64, i64)>>> = Arc::default();
    let mut attempted: HashSet<(i64, i64)> = HashSet::new();
    for cycle in 0..CYCLES {
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let client = server.client().await;
            let acknowledged = acknowledged.clone();
            writers.push(tokio::spawn(async move {
                let mut tried = Vec::new();
                // Two rows per commit: after a crash a commit is all there or absent.
                let statement =
                    client.prepare("INSERT INTO acks VALUES ($1, $2, $3), ($1, $2, 'second')").await.unwrap();
                for seq in 0.. {
                    let key = (cycle * 100 + writer, seq);
                    tried.push(key);
                    let result = client.execute(&statement, &[&key.0, &key.1, &"x".repeat(100)]).await;
                    if result.is_err() {
                        break;
                    }
                    acknowledged.lock().unwrap().insert(key);
                }
                tried
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill9();
        for writer in writers {
            attempted.extend(writer.await.unwrap());
        }
        server = common::Server::start_with(&data_dir, SMALL_STORAGE);
        let client = server.client().await;
        let rows = client.query("SELECT writer, seq, count(*) FROM acks GROUP BY writer, seq", &[]).await.unwrap();
        let present: HashMap<(i64, i64), i64> = rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect();
        let acknowledged = acknowledged.lock().unwrap();
        assert!(!acknowledged.is_empty(), "no insert was acknowledged before the kill");
        for key in acknowledged.iter() {
            assert_eq!(present.get(key), Some(&2), "acknowledged commit {key:?} after cycle {cycle}");
        }
        for (key, count) in &present {
            assert_eq!(*count, 2, "commit {key:?} has {count} of its 2 rows");
            assert!(attempted.contains(key), "row {key:?} was never written");
        }
        let segments = std::fs::read_dir(data_dir.join("store/segments/1")).map(|d| d.count()).unwrap_or(0);
        eprintln!("cycle {cycle}: {} acknowledged, {} present, {segments} segments", acknowledged.len(), present.len());
    }
}
