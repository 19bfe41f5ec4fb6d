//! Continuous views equal their recomputed queries. Random histories of table
//! and stream writes (single and multi-row statements, upserts, key changes,
//! transactions committed and rolled back, TRUNCATE, CHECKPOINT, kill -9)
//! are applied to the inputs of views covering every supported operator;
//! every few steps each view, read with `SELECT *`, equals its defining query
//! run directly, as a multiset of rows in the server's own text. At the end
//! every view read `VERSION AS OF` a remembered offset is still what it was
//! then, and each view's change log integrates to its current result. Seeds
//! are printed; `STRATA_TEST_SEED=<n>` replays one, `STRATA_TEST_SEED=<a>..<b>`
//! runs seeds a to b-1 (for long runs by hand).

mod common;

use std::collections::BTreeMap;

use futures::SinkExt;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Small WAL files, seals only at CHECKPOINT, a table snapshot at every seal
/// (as in table_history.rs), so views are rebuilt after restarts from
/// segments, snapshots and the WAL tail.
const STORAGE: &[&str] =
    &["--wal-file-bytes-max", "8192", "--seal-age-ms-max", "3600000", "--snapshot-changes-min", "1"];

const SCHEMA: &str = "CREATE TABLE acct (id BIGINT PRIMARY KEY, grp INT, amount BIGINT, flag BOOLEAN);
     CREATE TABLE grps (grp INT PRIMARY KEY, name TEXT);
     CREATE STREAM ev (grp INT, amount BIGINT);";

/// Each view and its defining query, in creation order (a view only reads
/// views before it). The first `EARLY` are created after a short history;
/// the rest halfway through, so they are backfilled from a longer one.
const VIEWS: &[(&str, &str)] = &[
    ("v_filter", "SELECT id, grp, amount * 2 AS doubled, NOT flag AS unflagged FROM acct WHERE flag OR amount > 30"),
    (
        "v_groups",
        "SELECT grp, count(*) AS n, count(amount) AS priced, sum(amount) AS total, min(amount) AS lo, \
         max(amount) AS hi, avg(amount) AS mean FROM acct GROUP BY grp",
    ),
    ("v_amounts", "SELECT grp, count(DISTINCT amount) AS amounts FROM acct GROUP BY grp"),
    (
        "v_named",
        "SELECT g.name, count(*) AS n, sum(a.amount) AS total FROM acct a JOIN grps g ON a.grp = g.grp GROUP BY g.name",
    ),
    ("v_matched", "SELECT a.id, g.name, a.amount FROM acct a JOIN grps g ON a.grp = g.grp AND a.amount > g.grp * 5"),
    ("v_union_all", "SELECT grp, amount FROM acct UNION ALL SELECT grp, amount FROM ev"),
    ("v_ev", "SELECT grp, count(*) AS n, sum(amount) AS total, max(amount) AS hi FROM ev GROUP BY grp"),
    ("v_over", "SELECT grp, total FROM v_groups WHERE n >= 2"),
    (
        "v_global",
        "SELECT count(*) AS n, sum(amount) AS total, min(amount) AS lo, max(amount) AS hi, \
         bool_and(flag) AS all_flagged, bool_or(flag) AS any_flagged FROM acct",
    ),
    // Created halfway.
    ("v_union", "SELECT grp FROM acct UNION SELECT grp FROM ev"),
    ("v_distinct", "SELECT DISTINCT grp, flag FROM acct"),
    ("v_having", "SELECT grp, sum(amount) AS total FROM acct GROUP BY grp HAVING count(*) > 2"),
    ("v_names_summary", "SELECT count(*) AS names, max(total) AS top, sum(n) AS joined FROM v_named"),
    (
        "v_cte",
        "WITH big AS (SELECT grp, amount FROM acct WHERE amount >= 20) \
         SELECT b.grp, count(*) AS n FROM big b JOIN (SELECT grp, name FROM grps) g ON b.grp = g.grp GROUP BY b.grp",
    ),
    ("v_except", "SELECT grp FROM acct EXCEPT SELECT grp FROM ev"),
    ("v_intersect", "SELECT grp, amount FROM acct INTERSECT SELECT grp, amount FROM ev"),
    ("v_in", "SELECT id, amount FROM acct WHERE grp IN (SELECT grp FROM grps WHERE name <> 'red')"),
    ("v_not_exists", "SELECT id FROM acct a WHERE NOT EXISTS (SELECT 1 FROM ev e WHERE e.grp = a.grp)"),
    ("v_top", "SELECT id, amount FROM acct ORDER BY amount DESC NULLS LAST, id LIMIT 3"),
    ("v_top_groups", "SELECT grp, sum(amount) AS total FROM acct GROUP BY grp ORDER BY total, grp LIMIT 2 OFFSET 1"),
    (
        "v_group_top",
        "SELECT * FROM (SELECT grp, id, amount, row_number() OVER (PARTITION BY grp ORDER BY amount DESC NULLS LAST, id) \
         AS rn FROM acct) t WHERE rn <= 2",
    ),
    ("v_distinct_on", "SELECT DISTINCT ON (grp) grp, id, amount FROM acct ORDER BY grp, amount DESC NULLS LAST, id"),
    (
        "v_lists",
        "SELECT grp, string_agg(CAST(amount AS TEXT), ',' ORDER BY CAST(amount AS TEXT)) AS amounts FROM acct GROUP BY grp",
    ),
    ("v_arrays", "SELECT grp, array_agg(amount ORDER BY amount DESC) AS amounts FROM acct GROUP BY grp"),
    ("v_left", "SELECT a.id, a.grp, g.name FROM acct a LEFT JOIN grps g ON a.grp = g.grp"),
    ("v_full", "SELECT a.id, g.grp, g.name FROM acct a FULL JOIN grps g ON a.grp = g.grp"),
    (
        "v_right_counts",
        "SELECT g.name, count(a.id) AS members, sum(a.amount) AS total FROM acct a RIGHT JOIN grps g ON a.grp = g.grp \
         GROUP BY g.name",
    ),
    (
        "v_hop",
        "SELECT grp, window_start, window_end, count(*) AS n, sum(amount) AS total \
         FROM hop(ev, _ts, INTERVAL '1 second', INTERVAL '3 seconds') GROUP BY grp, window_start, window_end",
    ),
    (
        "v_tumble",
        "SELECT window_start, max(amount) AS hi FROM tumble(ev, _ts, INTERVAL '2 seconds') GROUP BY window_start",
    ),
];
const EARLY: usize = 9;

/// Views over views, also checked against their queries with the inner
/// views written out over the base relations.
const EXPANDED: &[(&str, &str)] = &[
    (
        "v_over",
        "SELECT grp, total FROM (SELECT grp, count(*) AS n, sum(amount) AS total FROM acct GROUP BY grp) g WHERE n >= 2",
    ),
    (
        "v_names_summary",
        "SELECT count(*) AS names, max(total) AS top, sum(n) AS joined FROM \
         (SELECT g.name, count(*) AS n, sum(a.amount) AS total FROM acct a JOIN grps g ON a.grp = g.grp GROUP BY g.name) j",
    ),
    // hop() written out: each event in the 3 windows whose start is its
    // 1 s bucket minus 0, 1 or 2 s.
    (
        "v_hop",
        "SELECT grp, date_bin(INTERVAL '1 second', _ts) - k.back AS window_start, \
         date_bin(INTERVAL '1 second', _ts) - k.back + INTERVAL '3 seconds' AS window_end, \
         count(*) AS n, sum(amount) AS total \
         FROM ev CROSS JOIN (VALUES (INTERVAL '0 seconds'), (INTERVAL '1 second'), (INTERVAL '2 seconds')) AS k(back) \
         WHERE _ts IS NOT NULL GROUP BY 1, 2, 3",
    ),
];

const IDS: u64 = 24;
const GROUPS: u64 = 6;
const NAMES: &[&str] = &["red", "green", "blue"];
const STEPS: u64 = 200;
const CHECK_EVERY: u64 = 5;
const REMEMBER_EVERY: u64 = 40;

/// Rows as the server's text (NULL as None), sorted: a multiset.
type Rows = Vec<Vec<Option<String>>>;

async fn rows(client: &Client, sql: &str) -> Rows {
    let messages = client.simple_query(sql).await.unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    let mut rows: Rows = messages
        .into_iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect()),
            _ => None,
        })
        .collect();
    rows.sort();
    rows
}

async fn current_offset(client: &Client) -> i64 {
    client.query_one("SELECT current_offset()", &[]).await.unwrap().get(0)
}

async fn create_views(client: &Client, views: &[(&str, &str)]) {
    for (name, query) in views {
        client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .unwrap_or_else(|error| panic!("CREATE MATERIALIZED VIEW {name}: {error:?}"));
    }
}

/// Every created view equals its query recomputed now (and views over views
/// also equal their queries written out over the base relations).
async fn check_views(client: &Client, created: usize, context: &str) {
    for (name, query) in &VIEWS[..created] {
        let view = rows(client, &format!("SELECT * FROM {name}")).await;
        let recomputed = rows(client, query).await;
        assert_eq!(view, recomputed, "{context}: view {name} differs from its query: {query}");
    }
    for (name, expanded) in EXPANDED {
        if VIEWS[..created].iter().any(|(view, _)| view == name) {
            let view = rows(client, &format!("SELECT * FROM {name}")).await;
            let recomputed = rows(client, expanded).await;
            assert_eq!(view, recomputed, "{context}: view {name} differs from its expanded query: {expanded}");
        }
    }
}

/// The view's change log summed by row: the multiset it integrates to.
async fn integrated_changes(client: &Client, name: &str) -> Rows {
    let sql = format!("SELECT _diff, * FROM changes('{name}')");
    let messages = client.simple_query(&sql).await.unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    let mut counts: BTreeMap<Vec<Option<String>>, i64> = BTreeMap::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            let diff: i64 = row.get(0).expect("_diff is never NULL").parse().expect("_diff is a number");
            let columns = (1..row.len()).map(|i| row.get(i).map(str::to_owned)).collect();
            *counts.entry(columns).or_default() += diff;
        }
    }
    let mut rows = Rows::new();
    for (row, count) in counts {
        assert!(count >= 0, "changes('{name}') retracts {row:?} more often than it adds it ({count})");
        rows.extend(std::iter::repeat_n(row, count as usize));
    }
    rows
}

fn group(rng: &mut common::Rng) -> String {
    if rng.one_in(16) { "NULL".to_string() } else { rng.below(GROUPS).to_string() }
}

fn amount(rng: &mut common::Rng) -> String {
    if rng.one_in(12) { "NULL".to_string() } else { rng.below(40).to_string() }
}

fn acct_row(rng: &mut common::Rng, id: u64) -> String {
    let (grp, amount, flag) = (group(rng), amount(rng), rng.one_in(2));
    format!("({id}, {grp}, {amount}, {flag})")
}

/// `count` distinct keys (7 is coprime with IDS).
fn distinct_ids(rng: &mut common::Rng, count: u64) -> Vec<u64> {
    let first = rng.below(IDS);
    (0..count).map(|i| (first + i * 7) % IDS).collect()
}

fn ev_insert(rng: &mut common::Rng) -> String {
    let count = 1 + rng.below(3);
    let rows: Vec<String> = (0..count).map(|_| format!("({}, {})", group(rng), amount(rng))).collect();
    format!("INSERT INTO ev VALUES {}", rows.join(", "))
}

fn grps_change(rng: &mut common::Rng) -> String {
    let grp = rng.below(GROUPS);
    if rng.one_in(3) {
        format!("DELETE FROM grps WHERE grp = {grp}")
    } else {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        format!("INSERT INTO grps VALUES ({grp}, '{name}') ON CONFLICT (grp) DO UPDATE SET name = EXCLUDED.name")
    }
}

/// One random write. Inside a transaction only statements that cannot fail
/// (a failed statement aborts the transaction): no duplicate-key inserts,
/// key changes or TRUNCATE.
fn statement(rng: &mut common::Rng, in_transaction: bool) -> String {
    let id = rng.below(IDS);
    match rng.below(if in_transaction { 16 } else { 20 }) {
        0..=2 if in_transaction => format!("INSERT INTO acct VALUES {} ON CONFLICT (id) DO NOTHING", acct_row(rng, id)),
        0..=2 => format!("INSERT INTO acct VALUES {}", acct_row(rng, id)),
        3 => {
            let count = 2 + rng.below(2);
            let rows: Vec<String> = distinct_ids(rng, count).into_iter().map(|id| acct_row(rng, id)).collect();
            format!("INSERT INTO acct VALUES {} ON CONFLICT (id) DO NOTHING", rows.join(", "))
        }
        4 => format!("UPDATE acct SET amount = {} WHERE id = {id}", amount(rng)),
        5 => format!("UPDATE acct SET amount = amount + {} WHERE id = {id}", rng.below(7) as i64 - 3),
        6 => format!("UPDATE acct SET grp = {} WHERE id = {id}", group(rng)),
        7 => format!("UPDATE acct SET flag = NOT flag WHERE grp = {}", rng.below(GROUPS)),
        8 => format!("UPDATE acct SET amount = amount + 1 WHERE amount < {}", rng.below(40)),
        9 | 10 => format!("DELETE FROM acct WHERE id = {id}"),
        11 => format!("DELETE FROM acct WHERE grp = {} AND amount > {}", rng.below(GROUPS), rng.below(40)),
        12 => {
            let rows: Vec<String> = distinct_ids(rng, 2).into_iter().map(|id| acct_row(rng, id)).collect();
            format!(
                "INSERT INTO acct VALUES {} ON CONFLICT (id) DO UPDATE SET grp = EXCLUDED.grp, \
                 amount = acct.amount + EXCLUDED.amount, flag = EXCLUDED.flag",
                rows.join(", ")
            )
        }
        13 | 14 => ev_insert(rng),
        15 => grps_change(rng),
        16 => format!("UPDATE acct SET id = {} WHERE id = {id}", rng.below(IDS)),
        17 => match rng.one_in(3) {
            true => "TRUNCATE acct".to_string(),
            false => ev_insert(rng),
        },
        18 => match rng.one_in(4) {
            true => "TRUNCATE grps".to_string(),
            false => grps_change(rng),
        },
        _ => format!("UPDATE acct SET grp = {}, amount = {} WHERE id = {id}", group(rng), amount(rng)),
    }
}

/// A write outside a transaction: it commits, or is refused as a duplicate
/// key (and then leaves no trace).
async fn write(client: &Client, sql: &str, context: &str) {
    if let Err(error) = client.batch_execute(sql).await {
        assert_eq!(error.code().map(|code| code.code()), Some("23505"), "{context}: {sql}: {error:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_histories_match_recomputation() {
    let seeds: Vec<u64> = match std::env::var("STRATA_TEST_SEED") {
        Ok(range) if range.contains("..") => {
            let (start, end) = range.split_once("..").expect("a range");
            let number = |n: &str| n.parse::<u64>().expect("STRATA_TEST_SEED is <n> or <a>..<b>");
            (number(start)..number(end)).collect()
        }
        Ok(seed) => vec![seed.parse().expect("STRATA_TEST_SEED is a number")],
        Err(_) => vec![0x71e0_0001, 0x71e0_0002, 0x71e0_0003],
    };
    for seed in seeds {
        println!("seed {seed}");
        let data_dir = common::fresh_data_dir(&format!("views-random-{seed}"));
        let mut server = common::Server::start_with(&data_dir, STORAGE);
        let mut client = server.client().await;
        let mut rng = common::Rng(seed);
        client.batch_execute(SCHEMA).await.unwrap();
        client
            .batch_execute("INSERT INTO grps VALUES (0, 'red'), (1, 'green'), (2, 'blue'), (3, 'red'), (4, 'green')")
            .await
            .unwrap();
        // A history (updates, deletes, stream events) for the first backfill.
        for _ in 0..20 {
            let sql = statement(&mut rng, false);
            write(&client, &sql, &format!("seed {seed}, before the views")).await;
        }
        create_views(&client, &VIEWS[..EARLY]).await;
        let mut created = EARLY;
        check_views(&client, created, &format!("seed {seed}, after the backfill")).await;

        // (offset, the rows of each view created by then)
        let mut remembered: Vec<(i64, Vec<(usize, Rows)>)> = Vec::new();
        for step in 0..STEPS {
            let context = format!("seed {seed}, step {step}");
            if step == STEPS / 2 {
                create_views(&client, &VIEWS[EARLY..]).await;
                created = VIEWS.len();
                check_views(&client, created, &format!("{context}, after the second backfill")).await;
            }
            if rng.one_in(8) {
                client.batch_execute("BEGIN").await.unwrap();
                for _ in 0..2 + rng.below(3) {
                    let sql = statement(&mut rng, true);
                    client.batch_execute(&sql).await.unwrap_or_else(|error| panic!("{context}: {sql}: {error:?}"));
                }
                let end = if rng.one_in(3) { "ROLLBACK" } else { "COMMIT" };
                client.batch_execute(end).await.unwrap_or_else(|error| panic!("{context}: {end}: {error:?}"));
            } else {
                let sql = statement(&mut rng, false);
                write(&client, &sql, &context).await;
            }
            match rng.below(100) {
                0..=2 => client.batch_execute("CHECKPOINT").await.unwrap(),
                3 => {
                    drop(client);
                    server.kill9();
                    server = common::Server::start_with(&data_dir, STORAGE);
                    client = server.client().await;
                    check_views(&client, created, &format!("{context}, after kill -9 and restart")).await;
                }
                _ => {}
            }
            if step % CHECK_EVERY == CHECK_EVERY - 1 {
                check_views(&client, created, &context).await;
            }
            if step % REMEMBER_EVERY == REMEMBER_EVERY - 1 {
                let offset = current_offset(&client).await;
                let mut views = Vec::new();
                for (index, (name, _)) in VIEWS[..created].iter().enumerate() {
                    views.push((index, rows(&client, &format!("SELECT * FROM {name}")).await));
                }
                remembered.push((offset, views));
            }
        }
        check_views(&client, created, &format!("seed {seed}, at the end")).await;

        // Points in time: each view as it was when remembered.
        for (offset, views) in &remembered {
            for (index, expected) in views {
                let name = VIEWS[*index].0;
                let then = rows(&client, &format!("SELECT * FROM {name} VERSION AS OF {offset}")).await;
                assert_eq!(&then, expected, "seed {seed}: {name} VERSION AS OF {offset}");
            }
        }

        // The change log of every view integrates to its current result.
        for (name, _) in VIEWS {
            let now = rows(&client, &format!("SELECT * FROM {name}")).await;
            assert_eq!(integrated_changes(&client, name).await, now, "seed {seed}: changes('{name}') integrated");
        }
        drop(client);
        server.stop();
    }
}

/// Views kill -9 leaves behind: their definitions (created before and after
/// a CHECKPOINT, one dropped), their results and their history come back on
/// restart, and they are maintained by writes after it, twice over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_survive_kill_9() {
    const KILL_VIEWS: &[(&str, &str)] = &[
        (
            "k_groups",
            "SELECT grp, count(*) AS n, sum(amount) AS total, min(amount) AS lo, max(amount) AS hi FROM acct GROUP BY grp",
        ),
        ("k_named", "SELECT g.name, sum(a.amount) AS total FROM acct a JOIN grps g ON a.grp = g.grp GROUP BY g.name"),
        ("k_union", "SELECT grp, amount FROM acct UNION ALL SELECT grp, amount FROM ev"),
        // Created after the CHECKPOINT: their definitions are only in the WAL at the kill.
        ("k_ev", "SELECT grp, count(*) AS n, sum(amount) AS total FROM ev GROUP BY grp"),
        ("k_over", "SELECT count(*) AS group_count, sum(total) AS total, max(hi) AS hi FROM k_groups"),
    ];
    async fn check(client: &Client, context: &str) -> Vec<Rows> {
        let mut results = Vec::new();
        for (name, query) in KILL_VIEWS {
            let view = rows(client, &format!("SELECT * FROM {name}")).await;
            assert_eq!(view, rows(client, query).await, "{context}: view {name} differs from its query: {query}");
            assert_eq!(integrated_changes(client, name).await, view, "{context}: changes('{name}') integrated");
            results.push(view);
        }
        results
    }

    let data_dir = common::fresh_data_dir("views-kill-9");
    let mut server = common::Server::start_with(&data_dir, STORAGE);
    let client = server.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO grps VALUES (0, 'red'), (1, 'green'), (2, 'red');
             INSERT INTO acct VALUES (1, 0, 10, true), (2, 1, 20, false), (3, 1, 30, true), (4, NULL, 5, false);
             INSERT INTO ev VALUES (0, 5), (1, 6), (1, 7);",
        )
        .await
        .unwrap();
    create_views(&client, &KILL_VIEWS[..3]).await;
    client
        .batch_execute(
            "UPDATE acct SET amount = 35 WHERE id = 2;
             DELETE FROM acct WHERE id = 1;
             INSERT INTO ev VALUES (2, 8);
             CHECKPOINT;",
        )
        .await
        .unwrap();
    // The seal checkpointed the first views' operators: a restart loads
    // them and replays only the later changes.
    let checkpoints: Vec<_> =
        walk(&data_dir.join("store/views")).into_iter().filter(|p| p.ends_with(".state")).collect();
    assert_eq!(checkpoints.len(), 3, "one operator checkpoint per view created before the CHECKPOINT: {checkpoints:?}");
    create_views(&client, &KILL_VIEWS[3..]).await;
    client
        .batch_execute(
            "INSERT INTO acct VALUES (5, 2, 50, true), (6, 0, 1, true);
             UPDATE grps SET name = 'blue' WHERE grp = 1;
             INSERT INTO acct VALUES (3, 1, 3, false) ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount;",
        )
        .await
        .unwrap();
    for sql in [
        "BEGIN",
        "INSERT INTO ev VALUES (0, 9), (NULL, 1)",
        "UPDATE acct SET grp = 2 WHERE id = 6",
        "COMMIT",
        "CREATE MATERIALIZED VIEW k_dropped AS SELECT id FROM acct",
        "DROP MATERIALIZED VIEW k_dropped",
    ] {
        client.batch_execute(sql).await.unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    }
    let before = check(&client, "before kill -9").await;
    let offset = current_offset(&client).await;

    drop(client);
    server.kill9();
    server = common::Server::start_with(&data_dir, STORAGE);
    let client = server.client().await;
    let after = check(&client, "after kill -9").await;
    assert_eq!(after, before, "views after kill -9 equal what was acknowledged before it");
    for ((name, _), expected) in KILL_VIEWS.iter().zip(&before) {
        let then = rows(&client, &format!("SELECT * FROM {name} VERSION AS OF {offset}")).await;
        assert_eq!(&then, expected, "{name} VERSION AS OF {offset} after restart");
    }
    let gone = client.simple_query("SELECT * FROM k_dropped").await.unwrap_err();
    assert_eq!(gone.code().map(|code| code.code()), Some("42P01"), "a dropped view stays dropped: {gone:?}");
    let blocked = client.batch_execute("DROP TABLE acct").await.unwrap_err();
    assert_eq!(blocked.code().map(|code| code.code()), Some("2BP01"), "dependencies survive restart: {blocked:?}");

    // Still maintained after recovery.
    client
        .batch_execute(
            "INSERT INTO acct VALUES (7, 1, 70, true);
             UPDATE acct SET amount = amount + 1 WHERE grp = 0;
             DELETE FROM acct WHERE id = 5;
             INSERT INTO ev VALUES (1, 100);
             DELETE FROM grps WHERE grp = 2;",
        )
        .await
        .unwrap();
    let maintained = check(&client, "writes after the restart").await;
    assert_ne!(maintained, after, "the writes after the restart changed the views");

    // A second kill, with the post-restart writes only in the WAL.
    drop(client);
    server.kill9();
    server = common::Server::start_with(&data_dir, STORAGE);
    let client = server.client().await;
    assert_eq!(check(&client, "after the second kill -9").await, maintained);
    client.batch_execute("TRUNCATE acct; INSERT INTO ev VALUES (3, 3);").await.unwrap();
    check(&client, "after TRUNCATE following the second restart").await;
    let global = rows(&client, "SELECT * FROM k_over").await;
    assert_eq!(global, vec![vec![Some("0".to_string()), None, None]], "a global aggregate over no groups");
    drop(client);
    server.stop();
}

/// Queries a view cannot maintain incrementally are refused at CREATE with
/// 0A000 and a message naming the operator, also inside subqueries and CTEs;
/// a refused CREATE leaves no trace in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refusals_name_the_operator() {
    let server = common::Server::start(&common::fresh_data_dir("views-refusals"));
    let client = server.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    let offset = current_offset(&client).await;
    // (query, words one of which the message must contain, case-insensitively)
    let refused: &[(&str, &[&str])] = &[
        ("SELECT id, now() AS at FROM acct", &["now"]),
        ("SELECT id FROM acct WHERE now() > '2000-01-01 00:00:00+00'", &["now"]),
        ("SELECT id, random() AS r FROM acct", &["random"]),
        ("SELECT id FROM acct LIMIT 3", &["limit"]),
        ("WITH firsts AS (SELECT id FROM acct LIMIT 3) SELECT id FROM firsts", &["limit"]),
        ("SELECT id, row_number() OVER (ORDER BY id) AS n FROM acct", &["row_number", "window"]),
        ("SELECT s.id FROM (SELECT id, random() AS r FROM acct) s", &["random"]),
        ("SELECT a.id, g.name FROM acct a LEFT JOIN grps g ON a.grp = g.grp AND a.amount > 3", &["left"]),
        ("SELECT id FROM acct WHERE grp NOT IN (SELECT grp FROM ev)", &["not in"]),
        (
            "SELECT grp, string_agg(CAST(id AS TEXT), ',' ORDER BY amount) AS ids FROM acct GROUP BY grp",
            &["string_agg"],
        ),
        ("SELECT grp, array_agg(ARRAY[id]) AS ids FROM acct GROUP BY grp", &["list"]),
    ];
    for (query, words) in refused {
        let error = client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW v_refused AS {query}"))
            .await
            .expect_err(&format!("refused: {query}"));
        let db = error.as_db_error().unwrap_or_else(|| panic!("{query}: not a server error: {error:?}"));
        assert_eq!(db.code().code(), "0A000", "{query}: {}", db.message());
        let message = db.message().to_lowercase();
        assert!(
            words.iter().any(|word| message.contains(word)),
            "{query}: the message names none of {words:?}: {message}"
        );
        let missing = client.simple_query("SELECT * FROM v_refused").await.unwrap_err();
        assert_eq!(missing.code().map(|code| code.code()), Some("42P01"), "{query}: the view was not created");
    }
    assert_eq!(current_offset(&client).await, offset, "refused CREATEs appended nothing");
}

/// A view is read-only to every write path (COPY included), and its columns
/// are named as PostgreSQL names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_read_only_and_named_like_postgresql() {
    let server = common::Server::start(&common::fresh_data_dir("views-read-only"));
    let client = server.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    client.batch_execute("INSERT INTO acct VALUES (1, 0, 10, true), (2, 0, 20, false), (3, 1, 5, true)").await.unwrap();
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW named AS SELECT grp, count(*), sum(amount), count(DISTINCT amount) AS kinds, \
             max(amount), avg(amount) FROM acct GROUP BY grp",
        )
        .await
        .unwrap();
    let described = client.prepare("SELECT * FROM named").await.unwrap();
    let columns: Vec<&str> = described.columns().iter().map(|column| column.name()).collect();
    assert_eq!(columns, ["grp", "count", "sum", "kinds", "max", "avg"]);
    let text = |values: &[&str]| vec![values.iter().map(|value| Some(value.to_string())).collect::<Vec<_>>()];
    assert_eq!(
        rows(&client, "SELECT count, sum, kinds, max FROM named WHERE grp = 0").await,
        text(&["2", "30", "2", "20"])
    );

    let offset = current_offset(&client).await;
    for refused in [
        "INSERT INTO named VALUES (9, 1, 1, 1, 1, 1)",
        "UPDATE named SET kinds = 0",
        "DELETE FROM named",
        "TRUNCATE named",
    ] {
        let error = client.batch_execute(refused).await.expect_err(refused);
        assert_eq!(error.code().map(|code| code.code()), Some("42809"), "{refused}: {error:?}");
    }
    // COPY may be refused before the data or at its end; either way 42809.
    let error = match client.copy_in::<_, bytes::Bytes>("COPY named FROM STDIN").await {
        Err(error) => error,
        Ok(sink) => {
            let mut sink = std::pin::pin!(sink);
            let _ = sink.send(bytes::Bytes::from_static(b"9\t1\t1\t1\t1\t1\n")).await;
            sink.finish().await.expect_err("COPY into a view")
        }
    };
    assert_eq!(error.code().map(|code| code.code()), Some("42809"), "COPY: {error:?}");
    // tokio-postgres pipelines a Sync after a COPY's Execute and another
    // after its CopyFail, so a COPY refused at the start leaves one extra
    // ReadyForQuery on the connection (PostgreSQL 15 answers the same way):
    // go on with a new connection.
    let client = server.client().await;
    assert_eq!(current_offset(&client).await, offset, "refused writes appended nothing");
    assert_eq!(
        rows(&client, "SELECT grp, count FROM named").await,
        rows(&client, "SELECT grp, count(*) FROM acct GROUP BY grp").await
    );
}

/// Every file under `dir`, as text paths.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}
