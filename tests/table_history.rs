//! Randomized histories of table writes, checked against a simple in-memory
//! reference model: after random INSERT / UPDATE / DELETE / upsert-style
//! statements, checkpoints, clean restarts and kill -9, the current state,
//! the change log and the table at every recorded offset (VERSION AS OF)
//! equal what the model says. Seeds are printed so a failure can be replayed.

mod common;

use std::collections::BTreeMap;

use tokio_postgres::Client;

/// Small WAL files, seals only at CHECKPOINT, a state snapshot at every seal
/// that follows as many changes as the table has rows (so restarts and
/// points in time go through snapshots as well as through the change log),
/// and every full scan built from the previous scan's rows plus the changes
/// since, as big tables are scanned.
const STORAGE: &[&str] = &[
    "--wal-file-bytes-max",
    "8192",
    "--seal-age-ms-max",
    "3600000",
    "--snapshot-changes-min",
    "1",
    "--scan-cache-rows-min",
    "0",
];
const KEYS: i64 = 12;

type Model = BTreeMap<i64, (String, i64)>;

async fn state(client: &Client, sql: &str) -> Model {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), (r.get::<_, String>(1), r.get::<_, i64>(2))))
        .collect()
}

async fn current_offset(client: &Client) -> i64 {
    client.query_one("SELECT current_offset()", &[]).await.unwrap().get(0)
}

/// Key number `slot` of `KEYS`, `spread` apart and centred on zero.
fn key_of(slot: i64, spread: i64) -> i64 {
    (slot % KEYS - KEYS / 2) * spread
}

/// One random statement, applied to the server and (if it succeeds there)
/// to the model; a statement the model says must fail must fail.
async fn step(client: &Client, model: &mut Model, rng: &mut common::Rng, step: u64, spread: i64) {
    let slot = rng.below(KEYS as u64) as i64;
    let key = key_of(slot, spread);
    let value = rng.below(1000) as i64;
    let label = format!("s{step}");
    match rng.below(7) {
        0 | 1 => {
            let result = client.execute("INSERT INTO t VALUES ($1, $2, $3)", &[&key, &label, &value]).await;
            match model.contains_key(&key) {
                true => assert_eq!(result.unwrap_err().code().unwrap().code(), "23505", "duplicate key {key}"),
                false => {
                    result.unwrap();
                    model.insert(key, (label, value));
                }
            }
        }
        2 => {
            let changed = client
                .execute("UPDATE t SET v = v + $2, label = $3 WHERE k = $1", &[&key, &value, &label])
                .await
                .unwrap();
            if let Some(row) = model.get_mut(&key) {
                *row = (label, row.1 + value);
                assert_eq!(changed, 1);
            } else {
                assert_eq!(changed, 0);
            }
        }
        3 => {
            let deleted = client.execute("DELETE FROM t WHERE k = $1", &[&key]).await.unwrap();
            assert_eq!(deleted, model.remove(&key).map_or(0, |_| 1));
        }
        5 => {
            // Upsert of two keys, one of them maybe taken: one commit.
            let other = key_of(slot + 1, spread);
            let changed = client
                .execute(
                    "INSERT INTO t VALUES ($1, $3, $4), ($2, $3, $4) ON CONFLICT (k) DO UPDATE SET v = t.v + EXCLUDED.v",
                    &[&key, &other, &label, &value],
                )
                .await
                .unwrap();
            for k in [key, other] {
                model.entry(k).and_modify(|row| row.1 += value).or_insert((label.clone(), value));
            }
            assert_eq!(changed, 2);
        }
        6 => {
            let changed = client
                .execute("INSERT INTO t VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", &[&key, &label, &value])
                .await
                .unwrap();
            let fresh = !model.contains_key(&key);
            if fresh {
                model.insert(key, (label, value));
            }
            assert_eq!(changed, u64::from(fresh));
        }
        _ => {
            // Several keys in one statement: one commit.
            let bound = key;
            let changed = client.execute("UPDATE t SET v = v * 2 WHERE k <= $1", &[&bound]).await.unwrap();
            let mut expected = 0;
            for (_, row) in model.range_mut(..=bound) {
                row.1 *= 2;
                expected += 1;
            }
            assert_eq!(changed, expected);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_histories_match_the_reference_model() {
    let seeds: Vec<u64> = match std::env::var("STRATA_TEST_SEED") {
        Ok(seed) => vec![seed.parse().expect("STRATA_TEST_SEED is a number")],
        Err(_) => vec![0x5eed_0001, 0x5eed_0002, 0x5eed_0003],
    };
    for seed in seeds {
        println!("seed {seed}");
        let data_dir = common::fresh_data_dir(&format!("table-history-{seed}"));
        let mut server = common::Server::start_with(&data_dir, STORAGE);
        let mut client = server.client().await;
        client
            .batch_execute("CREATE TABLE t (k BIGINT PRIMARY KEY, label TEXT NOT NULL, v BIGINT NOT NULL)")
            .await
            .unwrap();
        let mut rng = common::Rng(seed);
        // Odd seeds spread keys 2^40 apart: a replay then tracks the keys it
        // touches in a hash set rather than a bitmap over their range.
        let spread = if seed % 2 == 1 { 1 << 40 } else { 1 };
        let mut model = Model::new();
        // The model after each commit, by the offset that commit ended at.
        let mut history: Vec<(i64, Model)> = Vec::new();
        for n in 0..150 {
            step(&client, &mut model, &mut rng, n, spread).await;
            history.push((current_offset(&client).await, model.clone()));
            // Every full scan replays the changes since the previous one.
            let now = state(&client, "SELECT k, label, v FROM t ORDER BY k").await;
            assert_eq!(now, model, "seed {seed}: current state after step {n}");
            match rng.below(40) {
                0 | 3..=5 => client.batch_execute("CHECKPOINT").await.unwrap(),
                1 => {
                    drop(client);
                    server.kill9();
                    server = common::Server::start_with(&data_dir, STORAGE);
                    client = server.client().await;
                }
                2 => {
                    drop(client);
                    assert!(server.stop());
                    server = common::Server::start_with(&data_dir, STORAGE);
                    client = server.client().await;
                }
                _ => {}
            }
        }
        assert_eq!(state(&client, "SELECT k, label, v FROM t ORDER BY k").await, model, "seed {seed}: current state");

        // The change log integrates to the current state.
        let integrated = state(
            &client,
            "SELECT k, max(label), CAST(sum(v * _diff) AS BIGINT) FROM changes('t') GROUP BY k \
             HAVING sum(_diff) > 0 ORDER BY k",
        )
        .await;
        let expected: Model = model.iter().map(|(k, (_, v))| (*k, (integrated[k].0.clone(), *v))).collect();
        assert_eq!(integrated, expected, "seed {seed}: changes() integrates to the current state");
        let diffs: i64 =
            client.query_one("SELECT CAST(sum(_diff) AS BIGINT) FROM changes('t')", &[]).await.unwrap().get(0);
        assert_eq!(diffs, model.len() as i64);

        // Every recorded point in time (the same offsets repeat when a
        // statement changed nothing; the last model for an offset is the truth).
        let mut points: BTreeMap<i64, Model> = BTreeMap::new();
        for (offset, snapshot) in history {
            points.insert(offset, snapshot);
        }
        for (offset, snapshot) in &points {
            let sql = format!("SELECT k, label, v FROM t VERSION AS OF {offset} ORDER BY k");
            assert_eq!(&state(&client, &sql).await, snapshot, "seed {seed}: VERSION AS OF {offset}");
            // One before: inside this commit when it has several events, so
            // the table is as the previous commit left it.
            let before = offset - 1;
            let expected = points.range(..=before).next_back().map(|(_, m)| m.clone()).unwrap_or_default();
            let sql = format!("SELECT k, label, v FROM t VERSION AS OF {before} ORDER BY k");
            assert_eq!(state(&client, &sql).await, expected, "seed {seed}: VERSION AS OF {before}");
        }
        drop(client);
        server.stop();
    }
}

/// A keyless table's row identities stay unique across CHECKPOINT, kill -9
/// and restart: rows written after the restart never reuse an identity, and
/// an update keeps the row's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_rows_keep_unique_identities_across_kill_9() {
    let data_dir = common::fresh_data_dir("keyless-identities");
    let mut server = common::Server::start_with(&data_dir, STORAGE);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE log (msg TEXT);
             INSERT INTO log VALUES ('a'), ('a'), ('b');
             UPDATE log SET msg = 'c' WHERE msg = 'b';
             CHECKPOINT;
             INSERT INTO log VALUES ('d'), ('d');
             DELETE FROM log WHERE msg = 'd';
             INSERT INTO log VALUES ('e');",
        )
        .await
        .unwrap();
    let before: Vec<i64> =
        client.query("SELECT _rowid FROM log ORDER BY _rowid", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    drop(client);
    server.kill9();
    let server = common::Server::start_with(&data_dir, STORAGE);
    let client = server.client().await;
    let after: Vec<i64> =
        client.query("SELECT _rowid FROM log ORDER BY _rowid", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(after, before, "identities survive the restart");
    client.batch_execute("INSERT INTO log VALUES ('f'), ('f'), ('f')").await.unwrap();
    let row = client.query_one("SELECT count(*), count(DISTINCT _rowid) FROM log", &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (7, 7));
    // No identity of a row ever written (deleted ones included) comes back.
    let ever = client
        .query_one("SELECT count(DISTINCT _rowid) FROM changes('log') WHERE _diff = 1", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    let inserted = client.query_one("SELECT count(*) FROM changes('log') WHERE _diff = 1", &[]).await.unwrap();
    let updates = 1;
    assert_eq!(ever, inserted.get::<_, i64>(0) - updates, "an update keeps its identity; no other repeats");
}
