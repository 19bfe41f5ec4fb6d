//! The PostgreSQL wire protocol as tokio-postgres speaks it: extended query
//! with parameters and binary results, type OIDs, errors with SQLSTATE,
//! concurrent sessions, and COPY FROM STDIN.

mod common;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::{SinkExt, TryStreamExt};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_parameters_and_binary_results() {
    let server = common::Server::start(&common::fresh_data_dir("wire-types"));
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE STREAM typed (b BOOLEAN, s SMALLINT, i INT, l BIGINT, r REAL, d DOUBLE PRECISION,
             t TEXT, v VARCHAR(10), y BYTEA, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ, n NUMERIC(10,2),
             iv INTERVAL, j JSONB)",
        )
        .await
        .unwrap();
    let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let stamp: NaiveDateTime = date.and_hms_micro_opt(12, 30, 45, 123456).unwrap();
    let stamp_tz: DateTime<Utc> = stamp.and_utc();
    let inserted = client
        .execute(
            "INSERT INTO typed (b, s, i, l, r, d, t, v, y, dt, ts, tz) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[&true, &7i16, &-42i32, &(1i64 << 40), &1.5f32, &-2.25f64, &"héllo", &"short", &vec![0u8, 255, 7], &date, &stamp, &stamp_tz],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);

    let statement = client.prepare("SELECT b, s, i, l, r, d, t, v, y, dt, ts, tz FROM typed").await.unwrap();
    let types: Vec<Type> = statement.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        vec![
            Type::BOOL,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::TEXT,
            Type::TEXT,
            Type::BYTEA,
            Type::DATE,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ
        ]
    );
    let row = client.query_one(&statement, &[]).await.unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i16>(1), 7);
    assert_eq!(row.get::<_, i32>(2), -42);
    assert_eq!(row.get::<_, i64>(3), 1 << 40);
    assert_eq!(row.get::<_, f32>(4), 1.5);
    assert_eq!(row.get::<_, f64>(5), -2.25);
    assert_eq!(row.get::<_, String>(6), "héllo");
    assert_eq!(row.get::<_, String>(7), "short");
    assert_eq!(row.get::<_, Vec<u8>>(8), vec![0u8, 255, 7]);
    assert_eq!(row.get::<_, NaiveDate>(9), date);
    assert_eq!(row.get::<_, NaiveDateTime>(10), stamp);
    assert_eq!(row.get::<_, DateTime<Utc>>(11), stamp_tz);

    // NUMERIC, INTERVAL and JSONB through text (simple query protocol).
    client
        .batch_execute("INSERT INTO typed (n, iv, j) VALUES (1234.5, INTERVAL '3 days 04:05:06', '{\"k\": [1, 2]}')")
        .await
        .unwrap();
    let messages = client.simple_query("SELECT n, iv, j FROM typed WHERE n IS NOT NULL").await.unwrap();
    let row = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .unwrap();
    assert_eq!(row.get(0), Some("1234.50"));
    assert_eq!(row.get(1), Some("3 days 04:05:06"));
    assert_eq!(row.get(2), Some("{\"k\": [1, 2]}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstate_and_leave_no_trace() {
    let server = common::Server::start(&common::fresh_data_dir("wire-errors"));
    let client = server.client().await;
    client.batch_execute("CREATE STREAM s (id BIGINT NOT NULL, note TEXT)").await.unwrap();

    let error = client.execute("INSERT INTO s VALUES ($1, $2)", &[&None::<i64>, &"x"]).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::NOT_NULL_VIOLATION), "{error:?}");
    let error = client.batch_execute("SELECT * FROM missing").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_TABLE));
    let error = client.batch_execute("SELECT nope FROM s").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_COLUMN));
    let error = client.batch_execute("INSERT INTO s VALUES (1, 'a'), ('x', 'b')").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));

    // PostgreSQL's messages for an INSERT whose widths disagree, and for a
    // value too big for its NUMERIC(p, s), over both protocols.
    client.batch_execute("CREATE STREAM money (amount NUMERIC(6,2), note TEXT)").await.unwrap();
    for (sql, code, message, detail) in [
        ("INSERT INTO s VALUES (1, 'a', 2)", "42601", "INSERT has more expressions than target columns", None),
        ("INSERT INTO s (id, note) VALUES (1)", "42601", "INSERT has more target columns than expressions", None),
        ("INSERT INTO s VALUES (1), (2, 'b')", "42601", "VALUES lists must all be the same length", None),
        (
            "INSERT INTO money VALUES (12345.5)",
            "22003",
            "numeric field overflow",
            Some("A field with precision 6, scale 2 must round to an absolute value less than 10^4."),
        ),
        (
            "SELECT 1.5::numeric(2,2)",
            "22003",
            "numeric field overflow",
            Some("A field with precision 2, scale 2 must round to an absolute value less than 1."),
        ),
    ] {
        let simple = client.batch_execute(sql).await.unwrap_err();
        let extended = client.query(sql, &[]).await.unwrap_err();
        for error in [simple, extended] {
            let db = error.as_db_error().unwrap_or_else(|| panic!("{sql}: {error:?}"));
            assert_eq!((db.code().code(), db.message(), db.detail()), (code, message, detail), "{sql}");
        }
    }

    // The session still works, and nothing was appended.
    let count: i64 = client.query_one("SELECT count(*) FROM s", &[]).await.unwrap().get(0);
    assert_eq!(count, 0);
    let count: i64 = client.query_one("SELECT count(*) FROM money", &[]).await.unwrap().get(0);
    assert_eq!(count, 0);

    // A decimal of negative scale is sent as the whole number it is (its
    // encoding once grew the server's memory until the kernel killed it).
    let value = common::text_rows(&client, "SELECT arrow_cast(-123456, 'Decimal128(6, -3)') AS d").await;
    assert_eq!(value, ["-123000"]);
    let rows = client.query("SELECT arrow_cast(1500, 'Decimal128(5, -2)') AS d", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_see_each_others_commits() {
    let server = common::Server::start(&common::fresh_data_dir("wire-sessions"));
    let writer = server.client().await;
    writer.batch_execute("CREATE STREAM s (n BIGINT)").await.unwrap();
    let mut readers = Vec::new();
    for _ in 0..16 {
        readers.push(server.client().await);
    }
    for n in 0..5i64 {
        writer.execute("INSERT INTO s VALUES ($1)", &[&n]).await.unwrap();
        for reader in &readers {
            // Read-your-writes across sessions: a commit that returned is visible.
            let count: i64 = reader.query_one("SELECT count(*) FROM s", &[]).await.unwrap().get(0);
            assert_eq!(count, n + 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_stdin_is_atomic() {
    let server = common::Server::start(&common::fresh_data_dir("wire-copy"));
    let client = server.client().await;
    client.batch_execute("CREATE STREAM c (id BIGINT NOT NULL, name TEXT, at TIMESTAMPTZ)").await.unwrap();

    let sink = client.copy_in("COPY c FROM STDIN WITH (FORMAT csv, HEADER true)").await.unwrap();
    let mut sink = std::pin::pin!(sink);
    let mut csv = String::from("id,name,at\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i},\"name, {i}\",2026-11-20 12:00:00+00\n"));
    }
    // Split mid-line to check records spanning CopyData messages.
    let (first, second) = csv.as_bytes().split_at(csv.len() / 2 + 3);
    sink.send(bytes::Bytes::copy_from_slice(first)).await.unwrap();
    sink.send(bytes::Bytes::copy_from_slice(second)).await.unwrap();
    assert_eq!(sink.finish().await.map_err(|e| format!("{e:?}")).unwrap(), 20_000);

    let sink = client.copy_in("COPY c (id, name) FROM STDIN").await.unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(bytes::Bytes::from_static(b"1\tok\n2\t\\N\nbad\tvalue\n")).await.unwrap();
    let error = sink.finish().await.unwrap_err();
    let message = error.as_db_error().expect("a server error").message().to_string();
    assert_eq!(error.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION), "{message}");
    assert!(message.contains("line 3") && message.contains("\"bad\""), "{message}");

    let row = client.query_one("SELECT count(*), count(DISTINCT _ts), min(name) FROM c", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 20_000);
    assert_eq!(row.get::<_, i64>(1), 1, "one COPY is one commit");
    assert_eq!(row.get::<_, String>(2), "name, 0");
}

/// A cancel request while COPY data is coming stops the COPY (57014), as
/// in PostgreSQL: nothing of it is written (it was written whole before),
/// and the next COPY is not stopped by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_copy_from_stdin_writes_nothing() {
    use common::raw;
    let server = common::Server::start(&common::fresh_data_dir("wire-copy-cancel"));
    let port = server.port;
    tokio::task::spawn_blocking(move || {
        let lines = |range: std::ops::Range<i64>| range.map(|i| format!("{i}\tx\n")).collect::<String>().into_bytes();
        let mut client = raw::Client::connect(port);
        client.send(&[raw::query("CREATE TABLE cc (id BIGINT PRIMARY KEY, v TEXT)")]);
        client.read_until(b'Z');
        client.send(&[raw::query("COPY cc FROM STDIN"), raw::copy_data(&lines(0..1000))]);
        client.read_until(b'G');
        client.cancel();
        client.send(&[raw::copy_data(&lines(1000..2000)), raw::copy_done()]);
        let (_, error) = client.read_until(b'E');
        assert!(String::from_utf8_lossy(&error).contains("C57014"), "{}", String::from_utf8_lossy(&error));
        client.read_until(b'Z');
        client.send(&[raw::query("COPY cc FROM STDIN"), raw::copy_data(&lines(0..10)), raw::copy_done()]);
        let (types, done) = client.read_until(b'C');
        assert!(!types.contains(&b'E') && done.starts_with(b"COPY 10"), "{types:?} {}", String::from_utf8_lossy(&done));
        client.read_until(b'Z');
        client.send(&[raw::query("SELECT count(*) FROM cc")]);
        let (_, row) = client.read_until(b'D');
        assert!(row.ends_with(b"10"), "{}", String::from_utf8_lossy(&row));
    })
    .await
    .unwrap();
}

/// `COPY … TO STDOUT` over the extended protocol (tokio-postgres's
/// `copy_out`) gives back what COPY FROM read, byte for byte; an error
/// while rows are computed is the statement's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_stdout_gives_back_what_copy_from_read() {
    let server = common::Server::start(&common::fresh_data_dir("wire-copy-out"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE c (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(8,2))").await.unwrap();
    let mut csv = String::from("id,name,amount\n");
    for i in 0..5_000 {
        let name = match i % 4 {
            0 => format!("\"name, {i}\""),
            1 => format!("\"say \"\"{i}\"\"\""),
            2 => String::new(),
            _ => "\"\"".to_string(),
        };
        csv.push_str(&format!("{i},{name},{i}.25\n"));
    }
    let sink = client.copy_in("COPY c FROM STDIN (FORMAT csv, HEADER)").await.unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(bytes::Bytes::from(csv.clone())).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 5_000);

    let copied = |sql: &'static str| {
        let client = &client;
        async move {
            let stream = client.copy_out(sql).await?;
            let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
            Ok::<_, tokio_postgres::Error>(chunks.concat())
        }
    };
    let out = copied("COPY (SELECT * FROM c ORDER BY id) TO STDOUT (FORMAT csv, HEADER)").await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), csv);
    // Text format: NULL is \N, an empty string is empty.
    let out = copied("COPY (SELECT id, name FROM c WHERE id < 4 ORDER BY id) TO STDOUT").await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "0\tname, 0\n1\tsay \"1\"\n2\t\\N\n3\t\n");

    // ESCAPE defaults to QUOTE, as in PostgreSQL.
    let out = copied("COPY (SELECT 'it''s' AS t) TO STDOUT (FORMAT csv, QUOTE '''')").await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "'it''s'\n");

    let error = copied("COPY (SELECT id / (id - 4000) FROM c) TO STDOUT").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::DIVISION_BY_ZERO), "{error:?}");
    let error = copied("COPY missing TO STDOUT").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_TABLE), "{error:?}");
    // The connection goes on after either.
    assert_eq!(client.query_one("SELECT count(*) FROM c", &[]).await.unwrap().get::<_, i64>(0), 5_000);
}

/// A statement text described again after DDL gets the new columns and
/// types (a connection remembers what it described, per catalog version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_described_again_after_ddl() {
    let server = common::Server::start(&common::fresh_data_dir("wire-described"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY); INSERT INTO t VALUES (1)").await.unwrap();
    let columns =
        |rows: &[tokio_postgres::Row]| rows[0].columns().iter().map(|c| c.name().to_string()).collect::<Vec<_>>();
    // Unnamed statements: every query below is parsed and described anew.
    let rows = client.query("SELECT * FROM t", &[]).await.unwrap();
    assert_eq!(columns(&rows), ["id"]);
    client.batch_execute("ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'x'").await.unwrap();
    let rows = client.query("SELECT * FROM t", &[]).await.unwrap();
    assert_eq!(columns(&rows), ["id", "note"]);
    assert_eq!(rows[0].get::<_, String>(1), "x");
    let inserted = client.execute("INSERT INTO t VALUES ($1, $2)", &[&2i64, &"y"]).await.unwrap();
    assert_eq!(inserted, 1);
    client.batch_execute("DROP TABLE t; CREATE TABLE t (id TEXT PRIMARY KEY, n INT)").await.unwrap();
    client.execute("INSERT INTO t VALUES ($1, $2)", &[&"a", &3i32]).await.unwrap();
    let rows = client.query("SELECT * FROM t", &[]).await.unwrap();
    assert_eq!(columns(&rows), ["id", "n"]);
    assert_eq!((rows[0].get::<_, String>(0), rows[0].get::<_, i32>(1)), ("a".to_string(), 3));
}

/// Sends `data` as one COPY, one CopyData message per `piece` bytes.
async fn copy_in_pieces(
    client: &tokio_postgres::Client,
    sql: &str,
    data: &[u8],
    piece: usize,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(sql).await?;
    let mut sink = std::pin::pin!(sink);
    for chunk in data.chunks(piece) {
        sink.send(bytes::Bytes::copy_from_slice(chunk)).await?;
    }
    sink.finish().await
}

/// PostgreSQL's text and CSV formats, read the same whatever the message
/// boundaries: escapes, quotes, records spanning lines, bad bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_formats_read_as_postgresql_does() {
    let server = common::Server::start(&common::fresh_data_dir("wire-copy-formats"));
    let client = server.client().await;
    client.batch_execute("CREATE STREAM f (n INT NOT NULL, a TEXT, b TEXT)").await.unwrap();
    // Text: \t \n \\ octal, hex, an escaped delimiter, \N, an escaped newline;
    // what follows the end marker `\.` is ignored, as PostgreSQL does.
    let text = b"1\ta\\tb\t\\N\n2\t\\101\\x42\\\\\tx\\\ty\n3\tline\\\nbreak\t\n\\.\nignored after the end marker\n";
    // CSV: quoted delimiters, doubled quotes, a quoted newline, NULL vs "".
    let csv = b"4,\"a,b\",\n5,\"say \"\"hi\"\"\",\"\"\n6,\"two\nlines\",x\"y\"z\n";
    // CSV with ESCAPE '\\': \" inside quotes is a quote.
    let escaped = b"7,\"a\\\"b\",c\n";
    let expected = [
        (1, Some("a\tb"), None),
        (2, Some("AB\\"), Some("x\ty")),
        (3, Some("line\nbreak"), Some("")),
        (4, Some("a,b"), None),
        (5, Some("say \"hi\""), Some("")),
        (6, Some("two\nlines"), Some("xyz")),
        (7, Some("a\"b"), Some("c")),
    ];
    let expected: Vec<_> = expected.iter().map(|(n, a, b)| (*n, a.map(String::from), b.map(String::from))).collect();
    for piece in [1, 7, 4096] {
        assert_eq!(copy_in_pieces(&client, "COPY f FROM STDIN", text, piece).await.unwrap(), 3);
        assert_eq!(copy_in_pieces(&client, "COPY f FROM STDIN (FORMAT csv)", csv, piece).await.unwrap(), 3);
        let sql = "COPY f FROM STDIN (FORMAT csv, ESCAPE '\\')";
        assert_eq!(copy_in_pieces(&client, sql, escaped, piece).await.unwrap(), 1);
        let sql = "SELECT n, a, b FROM f WHERE _offset > current_offset() - 7 ORDER BY n";
        let rows = client.query(sql, &[]).await.unwrap();
        let seen: Vec<(i32, Option<String>, Option<String>)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        assert_eq!(seen, expected, "in messages of {piece} bytes");
    }

    // Times without seconds, as PostgreSQL reads them.
    client.batch_execute("CREATE STREAM times (n INT, at TIMESTAMPTZ)").await.unwrap();
    let csv = b"1,2026-11-20 12:00\n2,2026-11-20 12:30:15\n3,2026-11-20T13:05+02\n";
    assert_eq!(copy_in_pieces(&client, "COPY times FROM STDIN (FORMAT csv)", csv, 5).await.unwrap(), 3);
    let times = common::text_rows(&client, "SELECT at FROM times ORDER BY n").await;
    assert_eq!(times, ["2026-11-20 12:00:00+00", "2026-11-20 12:30:15+00", "2026-11-20 11:05:00+00"]);

    let before: i64 = client.query_one("SELECT count(*) FROM f", &[]).await.unwrap().get(0);
    let error = copy_in_pieces(&client, "COPY f FROM STDIN", b"8\tok\t\n9\tbad \xff\t\n", 3).await.unwrap_err();
    let message = error.as_db_error().expect("a server error").message().to_string();
    assert_eq!(error.code(), Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE), "{message}");
    assert!(message.contains("line 2") && message.contains("column a"), "{message}");
    let error = copy_in_pieces(&client, "COPY f FROM STDIN (FORMAT csv)", b"10,\"open\n", 64).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::BAD_COPY_FILE_FORMAT), "{error:?}");
    let error = copy_in_pieces(&client, "COPY f FROM STDIN", b"11\ta\n", 64).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::BAD_COPY_FILE_FORMAT), "{error:?}");
    let after: i64 = client.query_one("SELECT count(*) FROM f", &[]).await.unwrap().get(0);
    assert_eq!(after, before, "a rejected COPY appends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_updates_and_deletes_take_parameters() {
    let server = common::Server::start(&common::fresh_data_dir("wire-table-params"));
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance NUMERIC(12,2));
             INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 50), (3, 'cy', 10)",
        )
        .await
        .unwrap();
    let updated = client.execute("UPDATE accounts SET owner = $1 WHERE id = $2", &[&"anne", &1i64]).await.unwrap();
    assert_eq!(updated, 1);
    let deleted = client.execute("DELETE FROM accounts WHERE id >= $1", &[&3i64]).await.unwrap();
    assert_eq!(deleted, 1);
    let rows = client.query("SELECT id, owner FROM accounts ORDER BY id", &[]).await.unwrap();
    let seen: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(seen, vec![(1, "anne".to_string()), (2, "bob".to_string())]);

    // A NULL parameter into a NOT NULL column is rejected and changes nothing.
    let error =
        client.execute("UPDATE accounts SET owner = $1 WHERE id = $2", &[&None::<String>, &2i64]).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::NOT_NULL_VIOLATION), "{error:?}");
    let owner: String = client.query_one("SELECT owner FROM accounts WHERE id = 2", &[]).await.unwrap().get(0);
    assert_eq!(owner, "bob");
}

/// An UPDATE by key compiles its SET expressions once per session and
/// definition: each execution must still use its own parameters, its own
/// start time, and the table's columns as they are after an ALTER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_by_key_run_again_with_new_values_and_definitions() {
    let server = common::Server::start(&common::fresh_data_dir("wire-update-compiled"));
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE acct (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, note TEXT);
             INSERT INTO acct VALUES (1, 100, NULL), (2, 50, NULL)",
        )
        .await
        .unwrap();
    let pay = client.prepare("UPDATE acct SET balance = balance - $1 WHERE id = $2").await.unwrap();
    for (amount, id) in [(10i64, 1i64), (5, 2), (20, 1)] {
        assert_eq!(client.execute(&pay, &[&amount, &id]).await.unwrap(), 1);
    }
    let balances: Vec<i64> =
        client.query("SELECT balance FROM acct ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(balances, vec![70, 45]);

    // A function fixed at the statement's start is not reused from a previous one.
    let stamp = "UPDATE acct SET note = CAST(now() AS TEXT) WHERE id = 1";
    client.execute(stamp, &[]).await.unwrap();
    let first: String = client.query_one("SELECT note FROM acct WHERE id = 1", &[]).await.unwrap().get(0);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    client.execute(stamp, &[]).await.unwrap();
    let second: String = client.query_one("SELECT note FROM acct WHERE id = 1", &[]).await.unwrap().get(0);
    assert_ne!(first, second, "now() is each statement's start");

    // A subquery in SET (the key path leaves it to the general one).
    let changed = client.execute("UPDATE acct SET balance = (SELECT max(balance) FROM acct) WHERE id = 2", &[]).await;
    assert_eq!(changed.unwrap(), 1);
    let balance: i64 = client.query_one("SELECT balance FROM acct WHERE id = 2", &[]).await.unwrap().get(0);
    assert_eq!(balance, 70);

    // After the columns change, the same text is compiled anew.
    client.batch_execute("ALTER TABLE acct ADD COLUMN bonus BIGINT DEFAULT 7").await.unwrap();
    let update = "UPDATE acct SET balance = balance + $1 WHERE id = $2";
    client.execute(update, &[&1i64, &1i64]).await.unwrap();
    client.batch_execute("ALTER TABLE acct DROP COLUMN note").await.unwrap();
    client.execute(update, &[&2i64, &1i64]).await.unwrap();
    client.batch_execute("ALTER TABLE acct RENAME COLUMN balance TO amount").await.unwrap();
    let error = client.execute(update, &[&4i64, &1i64]).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_COLUMN), "{error:?}");
    client.execute("UPDATE acct SET amount = amount + bonus WHERE id = $1", &[&1i64]).await.unwrap();
    let row = client.query_one("SELECT amount, bonus FROM acct WHERE id = 1", &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (80, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_take_parameters_and_return_rows() {
    let server = common::Server::start(&common::fresh_data_dir("wire-upsert"));
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE counters (name TEXT PRIMARY KEY, hits BIGINT NOT NULL DEFAULT 0, note TEXT DEFAULT 'new')",
        )
        .await
        .unwrap();
    // The statement a client prepares once and runs per event.
    let upsert = client
        .prepare(
            "INSERT INTO counters (name, hits) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET hits = counters.hits + EXCLUDED.hits
             RETURNING name, hits, note",
        )
        .await
        .unwrap();
    let columns: Vec<&str> = upsert.columns().iter().map(|c| c.name()).collect();
    assert_eq!(columns, vec!["name", "hits", "note"]);
    for (name, hits) in [("a", 1i64), ("b", 2), ("a", 3)] {
        let rows = client.query(&upsert, &[&name, &hits]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, &str>(0), name);
    }
    let row = client.query_one("SELECT hits, note FROM counters WHERE name = 'a'", &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, String>(1)), (4, "new".to_string()));

    // COPY fills the columns it leaves out with their defaults.
    let sink = client.copy_in("COPY counters (name) FROM STDIN").await.unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(bytes::Bytes::from_static(b"c\nd\n")).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let row = client
        .query_one("SELECT CAST(sum(hits) AS BIGINT), count(*) FILTER (WHERE note = 'new') FROM counters", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (6, 4));

    // DELETE … RETURNING through the extended protocol.
    let gone = client.query("DELETE FROM counters WHERE hits = $1 RETURNING name", &[&0i64]).await.unwrap();
    let mut names: Vec<String> = gone.iter().map(|r| r.get(0)).collect();
    names.sort();
    assert_eq!(names, vec!["c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_inside_on_conflict_do_update() {
    let server = common::Server::start(&common::fresh_data_dir("wire-upsert-params"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)").await.unwrap();
    let upsert = client
        .prepare("INSERT INTO kv VALUES ($1, 0) ON CONFLICT (k) DO UPDATE SET v = kv.v + CAST($2 AS BIGINT)")
        .await
        .unwrap();
    assert_eq!(upsert.params().len(), 2);
    for _ in 0..3 {
        client.execute(&upsert, &[&7i64, &"5"]).await.unwrap();
    }
    let v: i64 = client.query_one("SELECT v FROM kv WHERE k = 7", &[]).await.unwrap().get(0);
    assert_eq!(v, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_and_updates_lose_no_increment() {
    const CLIENTS: i64 = 6;
    const ROUNDS: i64 = 40;
    const KEYS: i64 = 3;
    let server = common::Server::start(&common::fresh_data_dir("wire-upsert-race"));
    let admin = server.client().await;
    admin.batch_execute("CREATE TABLE hits (k BIGINT PRIMARY KEY, n BIGINT NOT NULL)").await.unwrap();
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let client = server.client().await;
        tasks.push(tokio::spawn(async move {
            let upsert = client
                .prepare("INSERT INTO hits VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = hits.n + 1")
                .await
                .unwrap();
            let update = client.prepare("UPDATE hits SET n = n + 1 WHERE k = $1").await.unwrap();
            for round in 0..ROUNDS {
                let key = (client_index + round) % KEYS;
                // Every client races on the same few keys, through both paths.
                let updated = round % 2 == 1 && client.execute(&update, &[&key]).await.unwrap() == 1;
                if !updated {
                    client.execute(&upsert, &[&key]).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total: i64 = admin.query_one("SELECT CAST(sum(n) AS BIGINT) FROM hits", &[]).await.unwrap().get(0);
    assert_eq!(total, CLIENTS * ROUNDS, "every acknowledged increment is counted once");
    // The history agrees with the state: the last +1 version of each key.
    let replayed: i64 =
        admin.query_one("SELECT CAST(sum(n) AS BIGINT) FROM hits VERSION AS OF 1000000", &[]).await.unwrap().get(0);
    assert_eq!(replayed, total);
}

/// A query string of several statements commits as one (PostgreSQL's
/// implicit block): a reader never sees one table counted and not the
/// other, and strings racing on the same keys are run again, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_of_statements_commits_whole_and_runs_again_on_conflict() {
    const CLIENTS: i64 = 4;
    const ROUNDS: i64 = 30;
    let server = common::Server::start(&common::fresh_data_dir("wire-implicit-block"));
    let admin = server.client().await;
    admin
        .batch_execute(
            "CREATE TABLE debits (k BIGINT PRIMARY KEY, n BIGINT NOT NULL);
             CREATE TABLE credits (k BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let client = server.client().await;
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let key = (client_index + round) % 2;
                client
                    .batch_execute(&format!(
                        "INSERT INTO debits VALUES ({key}, 1) ON CONFLICT (k) DO UPDATE SET n = debits.n + 1;
                         UPDATE credits SET n = n + 1 WHERE k = {key};
                         INSERT INTO credits VALUES ({key}, 1) ON CONFLICT (k) DO NOTHING"
                    ))
                    .await
                    .unwrap();
            }
        }));
    }
    let balance =
        "SELECT CAST((SELECT coalesce(sum(n), 0) FROM debits) - (SELECT coalesce(sum(n), 0) FROM credits) AS BIGINT)";
    let mut reads = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        let difference: i64 = admin.query_one(balance, &[]).await.unwrap().get(0);
        assert_eq!(difference, 0, "a string's writes are seen all together or not at all");
        reads += 1;
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(reads > 0);
    let total: i64 = admin.query_one("SELECT CAST(sum(n) AS BIGINT) FROM credits", &[]).await.unwrap().get(0);
    assert_eq!(total, CLIENTS * ROUNDS, "every string counted once");

    // A failure undoes the statements before it, and a SET with them.
    let failing =
        admin.batch_execute("INSERT INTO debits VALUES (7, 1); SET TimeZone = 'Asia/Tokyo'; SELECT 1/0").await;
    assert_eq!(failing.unwrap_err().code(), Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO));
    let kept: i64 = admin.query_one("SELECT count(*) FROM debits WHERE k = 7", &[]).await.unwrap().get(0);
    assert_eq!(kept, 0);
    let zone: String = admin.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
    assert_eq!(zone, "UTC");
}

/// Several Executes before one Sync are one implicit block, as in
/// PostgreSQL (asyncpg's `executemany`, JDBC batches and psycopg's pipeline
/// send them so): the batch commits whole, or not at all when one fails. A
/// write answered on a Flush stays uncommitted until the Sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_executes_before_one_sync_commit_as_one_block() {
    use common::raw;
    let server = common::Server::start(&common::fresh_data_dir("wire-batch"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT)").await.unwrap();
    let count = async || -> i64 { client.query_one("SELECT count(*) FROM kv", &[]).await.unwrap().get(0) };
    let insert = || raw::parse("INSERT INTO kv VALUES ($1, $2)");
    let mut batch = raw::Client::connect(server.port);

    // The third row repeats the first's key: the first two are undone too.
    batch.send(&[
        insert(),
        raw::bind(&["1", "1"]),
        raw::execute(),
        raw::bind(&["2", "2"]),
        raw::execute(),
        raw::bind(&["1", "3"]),
        raw::execute(),
        raw::sync(),
    ]);
    let (answers, status) = batch.read_until(b'Z');
    assert_eq!(answers, b"12C2C2EZ", "ParseComplete, BindComplete, CommandComplete…, ErrorResponse, ReadyForQuery");
    assert_eq!(status, b"I", "idle: the implicit block is not the client's");
    assert_eq!(count().await, 0);

    batch.send(&[insert(), raw::bind(&["1", "1"]), raw::execute(), raw::flush()]);
    assert_eq!(batch.read_until(b'C').0, b"12C", "a Flush answers the write held");
    assert_eq!(count().await, 0, "not committed before the Sync");
    batch.send(&[raw::bind(&["2", "2"]), raw::execute(), raw::sync()]);
    assert_eq!(batch.read_until(b'Z').0, b"2CZ");
    assert_eq!(count().await, 2);

    // A lone write commits at its Sync.
    batch.send(&[insert(), raw::bind(&["3", "3"]), raw::execute(), raw::sync()]);
    assert_eq!(batch.read_until(b'Z').0, b"12CZ");
    assert_eq!(count().await, 3);

    // Two Executes of one write's portal in a block: the second fetches
    // the rest of its rows (it ran the INSERT again, and wrote it twice).
    batch.send(&[raw::query("BEGIN")]);
    batch.read_until(b'Z');
    batch.send(&[
        raw::parse("INSERT INTO kv VALUES (10, 1), (11, 1), (12, 1) RETURNING k"),
        raw::bind(&[]),
        raw::execute_rows(2),
        raw::execute_rows(2),
        raw::sync(),
    ]);
    assert_eq!(batch.read_until(b'Z').0, b"12DDsDCZ", "two rows, PortalSuspended, the third, CommandComplete");
    batch.send(&[raw::query("COMMIT")]);
    batch.read_until(b'Z');
    assert_eq!(count().await, 6);

    // A write that fails before a Query with no Sync between: the Query is
    // skipped, as every message is up to the Sync, which answers alone.
    batch.send(&[insert(), raw::bind(&["1", "1"]), raw::execute(), raw::query("SELECT 1"), raw::sync()]);
    let (answers, status) = batch.read_until(b'Z');
    assert_eq!((answers, status), (b"12EZ".to_vec(), b"I".to_vec()));
    batch.send(&[raw::query("SELECT 1")]);
    assert_eq!(batch.read_until(b'Z').0, b"TDCZ", "one ReadyForQuery per Sync, none left over");
}

/// COPY fills a left-out column with its DEFAULT, `now()` included (the
/// statement's start, the same for every row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_fills_time_defaults() {
    let server = common::Server::start(&common::fresh_data_dir("wire-copy-now"));
    let client = server.client().await;
    client.batch_execute("CREATE STREAM d (n INT, at TIMESTAMPTZ DEFAULT now())").await.unwrap();
    let sink = client.copy_in("COPY d (n) FROM STDIN").await.unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(bytes::Bytes::from_static(b"1\n2\n")).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let row = client
        .query_one("SELECT count(*), count(DISTINCT at), bool_and(at <= now()) FROM d WHERE at IS NOT NULL", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, bool>(2)), (2, 1, true));
}

/// Result columns are named and typed as PostgreSQL names and types them,
/// where DataFusion's own names differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_have_postgres_names_and_types() {
    let server = common::Server::start(&common::fresh_data_dir("wire-column-names"));
    let client = server.client().await;
    let names = |sql: &'static str| {
        let client = &client;
        async move {
            let statement = client.prepare(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            statement.columns().iter().map(|c| c.name().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(names("SELECT g FROM generate_series(1, 2) g").await, ["g"]);
    assert_eq!(names("SELECT * FROM generate_series(1, 2)").await, ["generate_series"]);
    assert_eq!(names("SELECT * FROM generate_series(1, 2) AS t(n)").await, ["n"]);
    assert_eq!(names("SELECT (1 + 2)::text, count(*)::int FROM generate_series(1, 2)").await, ["text", "count"]);
    assert_eq!(names("SELECT 1.5::float8::text").await, ["text"]);
    assert_eq!(names("SELECT DATE '2026-11-20'").await, ["date"]);
    assert_eq!(names("SELECT CASE WHEN true THEN 1 END").await, ["case"]);
    // Two columns of one name, as PostgreSQL allows (DataFusion does not).
    client.batch_execute("CREATE TABLE named (id BIGINT PRIMARY KEY, v TEXT)").await.unwrap();
    assert_eq!(names("SELECT id, * FROM named").await, ["id", "id", "v"]);
    assert_eq!(names("SELECT *, v FROM named").await, ["id", "v", "v"]);
    assert_eq!(names("SELECT v, v, count(*), count(*) FROM named GROUP BY v").await, ["v", "v", "count", "count"]);
    assert_eq!(names("SELECT 1, 2").await, ["?column?", "?column?"]);
    assert_eq!(names("SELECT id AS x, v AS x FROM named").await, ["x", "x"]);
    assert_eq!(names("SELECT _offset, _diff, * FROM changes('named')").await, ["_offset", "_diff", "id", "v"]);
    let simple = client.simple_query("SELECT v, v FROM named").await.unwrap();
    let Some(tokio_postgres::SimpleQueryMessage::RowDescription(columns)) = simple.first() else {
        panic!("no row description: {simple:?}")
    };
    assert_eq!(columns.iter().map(|c| c.name()).collect::<Vec<_>>(), ["v", "v"]);
    let now = client.prepare("SELECT now()").await.unwrap();
    assert_eq!(now.columns()[0].name(), "now");
    assert_eq!(now.columns()[0].type_(), &tokio_postgres::types::Type::TIMESTAMPTZ);
    // SQL's own function syntax is named after the function; tests are `?column?`.
    assert_eq!(
        names("SELECT extract(year FROM now()), substring('abc' FROM 2), position('b' IN 'abc'), trim(' a ')").await,
        ["extract", "substring", "position", "btrim"]
    );
    assert_eq!(
        names("SELECT 1 IN (1, 2), 1 BETWEEN 0 AND 2, NULL IS NULL, 'a' LIKE 'a', now() AT TIME ZONE 'UTC'").await,
        ["?column?", "?column?", "?column?", "?column?", "timezone"]
    );
    // A CASE is named after its ELSE when that is a column; EXISTS is `exists`.
    assert_eq!(
        names("SELECT CASE WHEN id > 0 THEN 0 ELSE id END, EXISTS (SELECT 1 FROM named) FROM named").await,
        ["id", "exists"]
    );
    // Integer literals are INTEGER where they fit, as in PostgreSQL.
    let types = client.prepare("SELECT 1, 2147483648, id + 1 FROM named").await.unwrap();
    let types: Vec<_> = types.columns().iter().map(|c| c.type_().clone()).collect();
    use tokio_postgres::types::Type;
    assert_eq!(types, [Type::INT4, Type::INT8, Type::INT8]);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    // A parameter keeps the type it was described with beside a literal:
    // its value is no literal (results here are binary, as tokio-postgres
    // asks for them).
    let statement = client.prepare("SELECT $1 + 1, $1 * 1000").await.unwrap();
    assert_eq!(statement.params(), [Type::INT8]);
    assert_eq!(statement.columns()[0].type_(), &Type::INT8);
    let row = client.query_one(&statement, &[&5_000_000i64]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (5_000_001, 5_000_000_000));
}

/// Parameters DataFusion leaves untyped are described as PostgreSQL infers
/// them, and oids as oids: drivers encode by the described type, and
/// asyncpg looks up the types it has no codec for with `$1::oid[]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_and_oid_columns_are_described_as_postgresql_describes_them() {
    use tokio_postgres::types::Type;
    let server = common::Server::start(&common::fresh_data_dir("wire-parameter-types"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE owned (id BIGINT PRIMARY KEY, n INT)").await.unwrap();
    let described = |sql: &'static str| {
        let client = &client;
        async move {
            let statement = client.prepare(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            let columns: Vec<Type> = statement.columns().iter().map(|c| c.type_().clone()).collect();
            (statement.params().to_vec(), columns)
        }
    };
    assert_eq!(described("SELECT id FROM owned WHERE n = ANY($1)").await.0, [Type::INT4_ARRAY]);
    assert_eq!(described("SELECT $1::oid, $2::oid[]").await.0, [Type::OID, Type::OID_ARRAY]);
    // An oid cast to text is text (it was announced as an oid and sent as text).
    assert_eq!(described("SELECT typelem::text FROM pg_type LIMIT 1").await.1, [Type::TEXT]);
    // asyncpg's type lookup, as asyncpg 0.32 sends it, for `integer[]`.
    let lookup = include_str!("drivers/asyncpg_type_lookup.sql");
    let statement = client.prepare(lookup).await.unwrap();
    assert_eq!(statement.params(), [Type::OID_ARRAY]);
    assert!(!statement.columns().iter().any(|c| *c.type_() == Type::INT4_ARRAY), "{:?}", statement.columns());
    let rows = client.query(&statement, &[&vec![tokio_postgres::types::Oid::from(1007u32)]]).await.unwrap();
    let found: Vec<(u32, String, u32)> =
        rows.iter().map(|r| (r.get("oid"), r.get("name"), r.get("elemtype"))).collect();
    assert_eq!(found, [(23, "int4".to_string(), 0), (1007, "_int4".to_string(), 23)]);
    client.batch_execute("INSERT INTO owned VALUES (1, 7), (2, 8), (3, 9)").await.unwrap();
    let rows = client.query("SELECT id FROM owned WHERE n = ANY($1) ORDER BY id", &[&vec![7i32, 9]]).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), [1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonb_reaches_clients_as_jsonb_in_text_and_binary() {
    let server = common::Server::start(&common::fresh_data_dir("wire-jsonb"));
    let client = server.client().await;
    client.batch_execute("CREATE STREAM docs (id BIGINT, j JSONB)").await.unwrap();
    // Parameters bound to a JSONB column or cast to jsonb are text, as PostgreSQL's unknown-typed literals.
    client.execute("INSERT INTO docs VALUES (1, $1)", &[&r#"{"b": [1, 2.50], "a": null}"#]).await.unwrap();
    client.execute("INSERT INTO docs VALUES ($1, $2::jsonb)", &[&2i64, &r#"{"a":  "x"}"#]).await.unwrap();

    let statement =
        client.prepare("SELECT j, j->'b', j->>'a', j @> '{\"a\": \"x\"}' FROM docs ORDER BY id").await.unwrap();
    let types: Vec<Type> = statement.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(types, vec![Type::JSONB, Type::JSONB, Type::TEXT, Type::BOOL]);
    // tokio-postgres reads results in binary: JSONB's version byte, then the text.
    let rows = client.query(&statement, &[]).await.unwrap();
    let first: serde_json::Value = rows[0].get(0);
    assert_eq!(first, serde_json::json!({"a": null, "b": [1, 2.5]}));
    assert_eq!(rows[0].get::<_, serde_json::Value>(1), serde_json::json!([1, 2.5]));
    assert_eq!(rows[0].get::<_, Option<String>>(2), None);
    assert!(!rows[0].get::<_, bool>(3));
    assert_eq!(rows[1].get::<_, Option<serde_json::Value>>(1), None);
    assert_eq!(rows[1].get::<_, String>(2), "x");
    assert!(rows[1].get::<_, bool>(3));

    // Text results show PostgreSQL's normalized form.
    let messages = client.simple_query("SELECT j FROM docs ORDER BY id").await.unwrap();
    let texts: Vec<&str> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec![r#"{"a": null, "b": [1, 2.50]}"#, r#"{"a": "x"}"#]);

    // A parameter compared with a JSONB value is read as JSONB, spelled however.
    let found = client.query("SELECT id FROM docs WHERE j = $1", &[&r#"{"a":"x"}"#]).await.unwrap();
    assert_eq!(found.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), vec![2]);

    let error = client.execute("INSERT INTO docs VALUES (3, $1)", &[&"{not json"]).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
    let count: i64 = client.query_one("SELECT count(*) FROM docs", &[]).await.unwrap().get(0);
    assert_eq!(count, 2);
}

/// NUMERIC as its binary wire bytes, to bind and read them exactly.
#[derive(Debug, PartialEq)]
struct NumericBytes(Vec<u8>);

impl tokio_postgres::types::ToSql for NumericBytes {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> tokio_postgres::types::FromSql<'a> for NumericBytes {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(NumericBytes(raw.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_of_38_digits_crosses_the_wire_exactly_in_binary() {
    let server = common::Server::start(&common::fresh_data_dir("wire-numeric"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE n (id BIGINT PRIMARY KEY, v NUMERIC(38,1), w NUMERIC(38,0))").await.unwrap();
    // PostgreSQL 15's numeric_send() of 12345678901234567890123456789.5 and of -(10^38 - 1).
    let long = NumericBytes(from_hex("0009000700000001000109291a85007b11d722c509291a851388"));
    let widest = NumericBytes(from_hex("000a0009400000000063270f270f270f270f270f270f270f270f270f"));
    let statement =
        client.prepare_typed("INSERT INTO n VALUES (1, $1, $2)", &[Type::NUMERIC, Type::NUMERIC]).await.unwrap();
    client.execute(&statement, &[&long, &widest]).await.unwrap();

    let row = client.query_one("SELECT v::text, w::text, v, w FROM n", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "12345678901234567890123456789.5");
    assert_eq!(row.get::<_, String>(1), "-99999999999999999999999999999999999999");
    assert_eq!(row.get::<_, NumericBytes>(2), long);
    assert_eq!(row.get::<_, NumericBytes>(3), widest);

    // Too many digits for the column: 22003, as PostgreSQL, and nothing written.
    let error = client.execute("UPDATE n SET v = $1 WHERE id = 1", &[&widest]).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE));
    let text: String = client.query_one("SELECT v::text FROM n", &[]).await.unwrap().get(0);
    assert_eq!(text, "12345678901234567890123456789.5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_typed_parameters_and_deallocate_work_as_drivers_use_them() {
    let server = common::Server::start(&common::fresh_data_dir("wire-driver-habits"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, j JSONB)").await.unwrap();
    // Parameters typed JSONB by the client (psycopg's Jsonb, tokio-postgres'
    // serde_json::Value): binary, a version byte before the text.
    let insert = client.prepare_typed("INSERT INTO t VALUES ($1, $2)", &[Type::INT8, Type::JSONB]).await.unwrap();
    client.execute(&insert, &[&1i64, &serde_json::json!({"b": [1, 2], "a": "x"})]).await.unwrap();
    let find = client.prepare_typed("SELECT id, j FROM t WHERE j @> $1", &[Type::JSONB]).await.unwrap();
    let row = client.query_one(&find, &[&serde_json::json!({"a": "x"})]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, serde_json::Value>(1), serde_json::json!({"a": "x", "b": [1, 2]}));

    // DEALLOCATE drops protocol-level prepared statements (psycopg sends
    // DEALLOCATE ALL after each rollback); an unknown name is 26000.
    client.batch_execute("BEGIN; DEALLOCATE ALL; COMMIT").await.unwrap();
    let error = client.query_one(&find, &[&serde_json::json!({})]).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_SQL_STATEMENT_NAME), "{error}");
    let error = client.batch_execute("DEALLOCATE nosuch").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_SQL_STATEMENT_NAME));
    let named = client.prepare("SELECT count(*) FROM t").await.unwrap();
    let count: i64 = client.query_one(&named, &[]).await.unwrap().get(0);
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_copy_loads_what_drivers_send() {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    let server = common::Server::start(&common::fresh_data_dir("wire-binary-copy"));
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE bc (id BIGINT PRIMARY KEY, n INT, name VARCHAR(5), amt NUMERIC(38,1), f DOUBLE PRECISION,
             ok BOOLEAN, at TIMESTAMPTZ, d DATE, j JSONB, b BYTEA)",
        )
        .await
        .unwrap();
    let types = [
        Type::INT8,
        Type::INT4,
        Type::VARCHAR,
        Type::NUMERIC,
        Type::FLOAT8,
        Type::BOOL,
        Type::TIMESTAMPTZ,
        Type::DATE,
        Type::JSONB,
        Type::BYTEA,
    ];
    let at: DateTime<Utc> =
        NaiveDate::from_ymd_opt(1999, 12, 31).unwrap().and_hms_micro_opt(23, 0, 0, 500).unwrap().and_utc();
    let date = NaiveDate::from_ymd_opt(1960, 2, 29).unwrap();
    // 12345678901234567890123456789.5, as PostgreSQL sends it.
    let long = NumericBytes(from_hex("0009000700000001000109291a85007b11d722c509291a851388"));
    let json = serde_json::json!({"k": [1, null], "a": "x"});

    let sink = client.copy_in("COPY bc FROM STDIN (FORMAT binary)").await.unwrap();
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    writer
        .as_mut()
        .write(&[&1i64, &-7i32, &"héllo", &long, &0.1f64, &true, &at, &date, &json, &vec![0u8, 255]])
        .await
        .unwrap();
    let none: Option<i32> = None;
    writer
        .as_mut()
        .write(&[
            &2i64,
            &none,
            &None::<&str>,
            &None::<NumericBytes>,
            &None::<f64>,
            &None::<bool>,
            &None::<DateTime<Utc>>,
            &None::<NaiveDate>,
            &None::<serde_json::Value>,
            &None::<Vec<u8>>,
        ])
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 2);

    let rows = client
        .simple_query("SELECT id, n, name, amt, f, ok, at, d, j, encode(b, 'hex') FROM bc ORDER BY id")
        .await
        .unwrap();
    let texts: Vec<Vec<Option<String>>> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some((0..10).map(|i| row.get(i).map(String::from)).collect())
            }
            _ => None,
        })
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        texts[0],
        vec![
            some("1"),
            some("-7"),
            some("héllo"),
            some("12345678901234567890123456789.5"),
            some("0.1"),
            some("t"),
            some("1999-12-31 23:00:00.0005+00"),
            some("1960-02-29"),
            some(r#"{"a": "x", "k": [1, null]}"#),
            some("00ff"),
        ]
    );
    assert_eq!(texts[1][1..], vec![None; 9][..]);

    // A bad value anywhere refuses the whole COPY (22001 here), as in text COPY.
    let sink = client.copy_in("COPY bc (id, name) FROM STDIN (FORMAT binary)").await.unwrap();
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::VARCHAR]);
    futures::pin_mut!(writer);
    writer.as_mut().write(&[&3i64, &"ok"]).await.unwrap();
    writer.as_mut().write(&[&4i64, &"too long"]).await.unwrap();
    let error = writer.finish().await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION), "{error}");
    let count: i64 = client.query_one("SELECT count(*) FROM bc", &[]).await.unwrap().get(0);
    assert_eq!(count, 2);

    // Raw framing as PostgreSQL reads it: input may end without the
    // trailer; data after the trailer is refused (22P04).
    let header = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    let raw = |bytes: Vec<u8>| async {
        let sink = client.copy_in::<_, bytes::Bytes>("COPY bc (id) FROM STDIN (FORMAT binary)").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(bytes)).await.unwrap();
        sink.finish().await
    };
    assert_eq!(raw(header.to_vec()).await.unwrap(), 0);
    let mut after_trailer = header.to_vec();
    after_trailer.extend_from_slice(&[0xff, 0xff, 0, 1]);
    let error = raw(after_trailer).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::BAD_COPY_FILE_FORMAT), "{error}");
    let error = raw(b"id\n1\n".to_vec()).await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::BAD_COPY_FILE_FORMAT), "{error}");
}

/// Any value as its binary wire bytes.
#[derive(Debug, PartialEq)]
struct RawBytes(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawBytes {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intervals_and_their_nulls_go_out_in_binary_as_postgresql_sends_them() {
    let server = common::Server::start(&common::fresh_data_dir("wire-interval"));
    let client = server.client().await;
    client.batch_execute("CREATE TABLE iv (id BIGINT PRIMARY KEY, v INTERVAL)").await.unwrap();
    client
        .batch_execute(
            "INSERT INTO iv VALUES (1, '1 day 00:00:00.000005'), (2, NULL), (3, '-1 mons -2 days 3 seconds')",
        )
        .await
        .unwrap();
    let rows = client.query("SELECT v FROM iv ORDER BY id", &[]).await.unwrap();
    let values: Vec<Option<RawBytes>> = rows.iter().map(|r| r.get(0)).collect();
    // PostgreSQL 15's interval_send() of the same values.
    assert_eq!(
        values,
        vec![
            Some(RawBytes(from_hex("00000000000000050000000100000000"))),
            None,
            Some(RawBytes(from_hex("00000000002dc6c0fffffffeffffffff"))),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_are_typed_as_in_postgresql_and_never_wrap() {
    let server = common::Server::start(&common::fresh_data_dir("wire-sums"));
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE STREAM amounts (k INT, small INT, big BIGINT);
             INSERT INTO amounts VALUES (1, 2147483647, 9223372036854775807), (1, 1, 1), (2, 5, -3);
             CREATE MATERIALIZED VIEW amount_sums AS SELECT k, sum(small) AS small, sum(big) AS big FROM amounts GROUP BY k;",
        )
        .await
        .unwrap();
    // The sum of INTs is BIGINT, of BIGINTs NUMERIC (PostgreSQL's types):
    // as described and as sent, in a query and in a view.
    for sql in [
        "SELECT k, sum(small) AS small, sum(big) AS big FROM amounts GROUP BY k ORDER BY k",
        "SELECT k, small, big FROM amount_sums ORDER BY k",
    ] {
        let rows = client.query(sql, &[]).await.unwrap();
        let types: Vec<Type> = rows[0].columns().iter().map(|c| c.type_().clone()).collect();
        assert_eq!(types, [Type::INT4, Type::INT8, Type::NUMERIC], "{sql}");
        assert_eq!(rows[0].get::<_, i64>(1), 2147483648, "{sql}");
        let big = client.query_one(&format!("SELECT big::text FROM ({sql}) s WHERE k = 1"), &[]).await.unwrap();
        assert_eq!(big.get::<_, String>(0), "9223372036854775808", "{sql}");
    }
    let text = common::text_rows(&client, "SELECT sum(big) FROM amounts").await;
    assert_eq!(text, ["9223372036854775805"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_round_trip_in_text_and_binary_and_survive_kill_9() {
    let data = common::fresh_data_dir("wire-arrays");
    let mut server = common::Server::start(&data);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE posts (id INT PRIMARY KEY, tags TEXT[], scores BIGINT[] NOT NULL DEFAULT '{}');
             CREATE MATERIALIZED VIEW by_tag AS SELECT id % 2 AS odd, array_agg(id) AS ids FROM posts GROUP BY 1;",
        )
        .await
        .unwrap();
    // Binary parameters (tokio-postgres sends Vec as binary arrays), with
    // the characters the text form has to quote, and NULL elements.
    let tags: Vec<Option<&str>> = vec![Some("a,b"), Some("say \"hi\""), None, Some("NULL"), Some("")];
    client.execute("INSERT INTO posts VALUES ($1, $2, $3)", &[&1i32, &tags, &vec![1i64, -2]]).await.unwrap();
    // A driver may send int4[] for a bigint[] column: its elements still read.
    let int4 = client
        .prepare_typed("INSERT INTO posts (id, scores) VALUES ($1, $2)", &[Type::INT4, Type::INT4_ARRAY])
        .await
        .unwrap();
    client.execute(&int4, &[&2i32, &vec![7i32]]).await.unwrap();
    // Text: a literal, and a parameter typed as text.
    client.execute("INSERT INTO posts VALUES (3, '{\"x y\",z}', '{ 3 , 4 }')", &[]).await.unwrap();
    let typed =
        client.prepare_typed("INSERT INTO posts (id, tags) VALUES (4, $1::text[])", &[Type::TEXT]).await.unwrap();
    client.execute(&typed, &[&r#"{"q,r",\"}"#]).await.unwrap();

    let check = |client: tokio_postgres::Client| async move {
        let rows = client.query("SELECT id, tags, scores FROM posts ORDER BY id", &[]).await.unwrap();
        assert_eq!(rows[0].columns()[1].type_(), &Type::TEXT_ARRAY);
        assert_eq!(rows[0].columns()[2].type_(), &Type::INT8_ARRAY);
        let tags: Vec<Option<Vec<Option<String>>>> = rows.iter().map(|r| r.get(1)).collect();
        let owned = |v: &[Option<&str>]| Some(v.iter().map(|e| e.map(str::to_string)).collect::<Vec<_>>());
        assert_eq!(
            tags,
            [
                owned(&[Some("a,b"), Some("say \"hi\""), None, Some("NULL"), Some("")]),
                None,
                owned(&[Some("x y"), Some("z")]),
                owned(&[Some("q,r"), Some("\"")])
            ]
        );
        let scores: Vec<Vec<i64>> = rows.iter().map(|r| r.get(2)).collect();
        assert_eq!(scores, [vec![1, -2], vec![7], vec![3, 4], vec![]]);
        // The same rows as text, quoted as PostgreSQL quotes array elements.
        let text = common::text_rows(&client, "SELECT tags FROM posts ORDER BY id").await;
        assert_eq!(text, [r#"{"a,b","say \"hi\"",NULL,"NULL",""}"#, "NULL", r#"{"x y",z}"#, r#"{"q,r","\""}"#]);
        let view = common::text_rows(&client, "SELECT ids FROM by_tag ORDER BY odd").await;
        assert_eq!(view, ["{2,4}", "{1,3}"]);
        let found =
            common::text_rows(&client, "SELECT id FROM posts WHERE tags @> ARRAY['z'] OR 7 = ANY(scores) ORDER BY id")
                .await;
        assert_eq!(found, ["2", "3"]);
    };
    check(client).await;
    server.kill9();
    let server = common::Server::start(&data);
    check(server.client().await).await;

    let client = server.client().await;
    for (sql, state) in [
        ("INSERT INTO posts VALUES (9, '{a', '{}')", SqlState::INVALID_TEXT_REPRESENTATION),
        ("INSERT INTO posts VALUES (9, '{a}', '{1,x}')", SqlState::INVALID_TEXT_REPRESENTATION),
        ("INSERT INTO posts VALUES (9, '{{a}}', '{}')", SqlState::FEATURE_NOT_SUPPORTED),
        ("INSERT INTO posts VALUES (9, '{a}', NULL)", SqlState::NOT_NULL_VIOLATION),
        ("CREATE TABLE grid (cells INT[][])", SqlState::FEATURE_NOT_SUPPORTED),
    ] {
        let error = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(error.code(), Some(&state), "{sql}: {error:?}");
    }
    assert_eq!(common::text_rows(&client, "SELECT count(*) FROM posts").await, ["4"]);

    // Element types arrow-pg does not read as parameters, a NULL array, and
    // NUMERIC elements past rust_decimal's 28 digits sent back in binary
    // (the server panicked on them).
    client
        .batch_execute("CREATE TABLE typed_arrays (id INT PRIMARY KEY, ts TIMESTAMPTZ[], n NUMERIC(38,0)[], d DATE[])")
        .await
        .unwrap();
    let at: DateTime<Utc> = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let date = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    client
        .execute("INSERT INTO typed_arrays (id, ts, d) VALUES ($1, $2, $3)", &[&1i32, &vec![at], &vec![date]])
        .await
        .unwrap();
    let none: Option<Vec<DateTime<Utc>>> = None;
    client.execute("INSERT INTO typed_arrays (id, ts) VALUES ($1, $2)", &[&2i32, &none]).await.unwrap();
    client
        .batch_execute("UPDATE typed_arrays SET n = '{12345678901234567890123456789012345678,-1}' WHERE id = 1")
        .await
        .unwrap();
    let rows = client.query("SELECT ts, d, n FROM typed_arrays ORDER BY id", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, Vec<DateTime<Utc>>>(0), [at]);
    assert_eq!(rows[0].get::<_, Vec<NaiveDate>>(1), [date]);
    assert_eq!(rows[1].get::<_, Option<Vec<DateTime<Utc>>>>(0), None);
    assert_eq!(rows[0].columns()[2].type_(), &Type::NUMERIC_ARRAY);
    let numbers = client.query_one("SELECT n::text FROM typed_arrays WHERE id = 1", &[]).await.unwrap();
    assert_eq!(numbers.get::<_, String>(0), "{12345678901234567890123456789012345678,-1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reads_and_prints_times_in_its_time_zone() {
    let server = common::Server::start(&common::fresh_data_dir("wire-time-zone"));
    // libpq's PGTZ and psycopg's `options` ask for a zone at startup.
    let config = format!("{} options='-c TimeZone=Europe/Berlin'", server.connection_string());
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("CREATE STREAM stamps (at TIMESTAMPTZ, note TEXT)").await.unwrap();
    // COPY and a parameter sent as text read a time without an offset in the zone.
    let sink = client.copy_in("COPY stamps FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"2026-11-24 09:00\tcopied\n2026-11-24 09:00+00\tcopied utc\n")).await.unwrap();
    sink.finish().await.unwrap();
    let typed = client.prepare_typed("INSERT INTO stamps VALUES ($1, 'parameter')", &[Type::TEXT]).await.unwrap();
    client.execute(&typed, &[&"2026-11-24 09:00"]).await.unwrap();
    client.batch_execute("INSERT INTO stamps VALUES ('2026-11-24 09:00', 'literal')").await.unwrap();
    let shown = common::text_rows(&client, "SELECT note, at FROM stamps ORDER BY note").await;
    assert_eq!(
        shown,
        [
            "copied|2026-11-24 09:00:00+01",
            "copied utc|2026-11-24 10:00:00+01",
            "literal|2026-11-24 09:00:00+01",
            "parameter|2026-11-24 09:00:00+01"
        ]
    );
    // The instants, in binary: 08:00 UTC.
    let at: DateTime<Utc> = client.query_one("SELECT at FROM stamps WHERE note = 'literal'", &[]).await.unwrap().get(0);
    assert_eq!(at, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(8, 0, 0).unwrap().and_utc());
    // Another session, in UTC, sees the same instants.
    let utc = server.client().await;
    let shown = common::text_rows(&utc, "SELECT at FROM stamps WHERE note = 'literal'").await;
    assert_eq!(shown, ["2026-11-24 08:00:00+00"]);
    let error = utc.batch_execute("SET TIME ZONE 'Nowhere/Special'").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}

/// CREATE and DROP of tables and streams in a transaction block are part
/// of it, as PostgreSQL's DDL is (SQLAlchemy's `create_all` and
/// `drop_all`, migrations): the block's own statements see the change,
/// prepared ones included; no other session does before COMMIT, which
/// makes it with the block's rows in one commit (it survives kill -9);
/// ROLLBACK leaves no trace; and a name another session took first fails
/// the COMMIT whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_in_a_transaction_block_commits_with_it() {
    let data = common::fresh_data_dir("wire-ddl-in-block");
    let mut server = common::Server::start(&data);
    let client = server.client().await;
    let other = server.client().await;
    client
        .batch_execute(
            "BEGIN; CREATE TABLE made (id BIGINT PRIMARY KEY, v TEXT); CREATE STREAM made_events (id BIGINT)",
        )
        .await
        .unwrap();
    client.execute("INSERT INTO made VALUES ($1, $2), (2, 'b')", &[&1i64, &"a"]).await.unwrap();
    client.execute("UPDATE made SET v = $1 WHERE id = 2", &[&"bb"]).await.unwrap();
    client.execute("INSERT INTO made_events SELECT id FROM made", &[]).await.unwrap();
    let joined = common::text_rows(&client, "SELECT v FROM made JOIN made_events USING (id) ORDER BY id").await;
    assert_eq!(joined, ["a", "bb"]);
    let unseen = other.query("SELECT * FROM made", &[]).await.unwrap_err();
    assert_eq!(unseen.code(), Some(&SqlState::UNDEFINED_TABLE));
    client.batch_execute("COMMIT").await.unwrap();
    let check = |client: tokio_postgres::Client| async move {
        let row = client.query_one("SELECT count(*), count(DISTINCT _ts) FROM made", &[]).await.unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2, 1), "one commit");
        assert_eq!(common::text_rows(&client, "SELECT v FROM made ORDER BY id").await, ["a", "bb"]);
        assert_eq!(common::text_rows(&client, "SELECT count(*) FROM made_events").await, ["2"]);
    };
    check(other).await;
    server.kill9();
    let server = common::Server::start(&data);
    check(server.client().await).await;

    let client = server.client().await;
    let other = server.client().await;
    client
        .batch_execute("BEGIN; CREATE TABLE gone (id INT PRIMARY KEY); INSERT INTO gone VALUES (1); ROLLBACK")
        .await
        .unwrap();
    let gone = client.query("SELECT * FROM gone", &[]).await.unwrap_err();
    assert_eq!(gone.code(), Some(&SqlState::UNDEFINED_TABLE));
    client
        .batch_execute("BEGIN; CREATE TABLE clash (id INT PRIMARY KEY); INSERT INTO made VALUES (3, 'c')")
        .await
        .unwrap();
    other.batch_execute("CREATE TABLE clash (n TEXT)").await.unwrap();
    let clash = client.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(clash.code(), Some(&SqlState::DUPLICATE_TABLE));
    assert_eq!(common::text_rows(&client, "SELECT count(*) FROM made").await, ["2"]);
    // The table is the other session's.
    assert!(common::text_rows(&client, "SELECT n FROM clash").await.is_empty());

    // A block that drops a relation and creates one of its name.
    client
        .batch_execute("BEGIN; DROP TABLE made; CREATE STREAM made (note TEXT); INSERT INTO made VALUES ('x')")
        .await
        .unwrap();
    assert_eq!(common::text_rows(&other, "SELECT count(*) FROM made").await, ["2"], "not dropped before COMMIT");
    client.batch_execute("COMMIT").await.unwrap();
    let mut server = server;
    server.kill9();
    let server = common::Server::start(&data);
    let client = server.client().await;
    assert_eq!(common::text_rows(&client, "SELECT note FROM made").await, ["x"]);
}

/// A SERIAL column's rows written by INSERT and COPY take its counter's
/// values; after kill -9 the counter goes on after the largest value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_columns_count_on_after_kill_9() {
    let data = common::fresh_data_dir("wire-serial");
    let mut server = common::Server::start(&data);
    let client = server.client().await;
    client.batch_execute("CREATE TABLE users (id BIGSERIAL PRIMARY KEY, name TEXT)").await.unwrap();
    let returned = client.query_one("INSERT INTO users (name) VALUES ($1) RETURNING id", &[&"ann"]).await.unwrap();
    assert_eq!(returned.get::<_, i64>(0), 1);
    let sink = client.copy_in("COPY users (name) FROM STDIN").await.unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(bytes::Bytes::from_static(b"bob\ncat\n")).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    assert_eq!(common::text_rows(&client, "SELECT id || name FROM users ORDER BY id").await, ["1ann", "2bob", "3cat"]);
    server.kill9();
    let server = common::Server::start(&data);
    let client = server.client().await;
    let returned = client.query_one("INSERT INTO users (name) VALUES ('dan') RETURNING id", &[]).await.unwrap();
    assert_eq!(returned.get::<_, i64>(0), 4);
}

/// A foreign key holds across a kill -9 (the counts of rows naming each
/// key are rebuilt from the log), and against a concurrent commit: a block
/// whose row names a key another session deleted meanwhile fails at COMMIT
/// and writes nothing.
#[tokio::test]
async fn foreign_keys_hold_after_kill_9_and_against_a_concurrent_delete() {
    let data = common::fresh_data_dir("wire-foreign-keys");
    let mut server = common::Server::start(&data);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE customers (id BIGINT PRIMARY KEY); \
             CREATE TABLE orders (id INT PRIMARY KEY, customer BIGINT REFERENCES customers); \
             INSERT INTO customers VALUES (1), (2), (3); \
             INSERT INTO orders VALUES (10, 1), (11, 1), (12, 2)",
        )
        .await
        .unwrap();
    server.kill9();
    let server = common::Server::start(&data);
    let client = server.client().await;
    let code = |error: tokio_postgres::Error| error.code().map(|c| c.code().to_string());
    let refused = client.execute("DELETE FROM customers WHERE id = 1", &[]).await.unwrap_err();
    let detail = refused.as_db_error().and_then(|e| e.detail()).map(str::to_string);
    assert_eq!(detail.as_deref(), Some("Key (id)=(1) is still referenced from table \"orders\"."));
    let fields = refused.as_db_error().map(|e| (e.schema(), e.table(), e.constraint()));
    assert_eq!(fields, Some((Some("public"), Some("orders"), Some("orders_customer_fkey"))));
    assert_eq!(code(refused).as_deref(), Some("23503"));
    let refused = client.execute("INSERT INTO orders VALUES (13, 4)", &[]).await.unwrap_err();
    let detail = refused.as_db_error().and_then(|e| e.detail()).map(str::to_string);
    assert_eq!(detail.as_deref(), Some("Key (customer)=(4) is not present in table \"customers\"."));
    assert_eq!(code(refused).as_deref(), Some("23503"));
    client.execute("DELETE FROM orders WHERE id = 10", &[]).await.unwrap();
    let refused = client.execute("DELETE FROM customers WHERE id = 1", &[]).await.unwrap_err();
    assert_eq!(code(refused).as_deref(), Some("23503"), "order 11 still names customer 1");
    client.execute("DELETE FROM orders WHERE id = 11", &[]).await.unwrap();
    assert_eq!(client.execute("DELETE FROM customers WHERE id = 1", &[]).await.unwrap(), 1);

    let other = server.client().await;
    client.batch_execute("BEGIN; INSERT INTO orders VALUES (20, 3)").await.unwrap();
    other.execute("DELETE FROM customers WHERE id = 3", &[]).await.unwrap();
    let refused = client.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(refused).as_deref(), Some("23503"));
    assert_eq!(common::text_rows(&client, "SELECT id::text FROM orders ORDER BY id").await, ["12"]);
    assert_eq!(common::text_rows(&client, "SELECT id::text FROM customers ORDER BY id").await, ["2"]);
}

/// UNIQUE constraints beside the primary key: rebuilt after a kill -9 from
/// the log, with PostgreSQL's errors; of two sessions taking one value, the
/// second to commit fails and writes nothing; ON CONFLICT on the constraint
/// updates the row holding the value.
#[tokio::test]
async fn unique_constraints_hold_after_kill_9_and_against_a_concurrent_insert() {
    let data = common::fresh_data_dir("wire-unique");
    let mut server = common::Server::start(&data);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE users (id INT PRIMARY KEY, email TEXT UNIQUE, nick TEXT, UNIQUE NULLS NOT DISTINCT (nick)); \
             INSERT INTO users VALUES (1, 'ann@example.com', NULL), (2, 'bob@example.com', 'bob'); \
             UPDATE users SET email = 'carl@example.com' WHERE id = 2",
        )
        .await
        .unwrap();
    server.kill9();
    let server = common::Server::start(&data);
    let client = server.client().await;
    let refused = |error: tokio_postgres::Error| {
        let error = error.as_db_error().expect("a server error").clone();
        (error.code().code().to_string(), error.constraint().map(str::to_string), error.detail().map(str::to_string))
    };
    let taken = client.execute("INSERT INTO users VALUES (3, 'ann@example.com', 'x')", &[]).await.unwrap_err();
    assert_eq!(
        refused(taken),
        ("23505".into(), Some("users_email_key".into()), Some("Key (email)=(ann@example.com) already exists.".into()))
    );
    let taken = client.execute("INSERT INTO users VALUES (3, 'dan@example.com', NULL)", &[]).await.unwrap_err();
    assert_eq!(refused(taken).2.as_deref(), Some("Key (nick)=(null) already exists."));
    // The value the update gave up is free, the one it took is not.
    client.execute("INSERT INTO users VALUES (3, 'bob@example.com', 'b')", &[]).await.unwrap();
    let taken = client.execute("INSERT INTO users VALUES (4, 'carl@example.com', 'c')", &[]).await.unwrap_err();
    assert_eq!(refused(taken).0, "23505");

    let other = server.client().await;
    client.batch_execute("BEGIN; INSERT INTO users VALUES (5, 'eve@example.com', 'e')").await.unwrap();
    other.execute("INSERT INTO users VALUES (6, 'eve@example.com', 'f')", &[]).await.unwrap();
    let taken = client.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(refused(taken).1.as_deref(), Some("users_email_key"));
    let upsert = "INSERT INTO users VALUES (7, 'eve@example.com', 'g') \
                  ON CONFLICT (email) DO UPDATE SET nick = excluded.nick RETURNING id";
    assert_eq!(client.query_one(upsert, &[]).await.unwrap().get::<_, i32>(0), 6);
    let rows =
        common::text_rows(&client, "SELECT id || ' ' || email || ' ' || coalesce(nick, '-') FROM users ORDER BY id");
    assert_eq!(
        rows.await,
        ["1 ann@example.com -", "2 carl@example.com bob", "3 bob@example.com b", "6 eve@example.com g"]
    );

    // A UNIQUE index over a history that repeated a value, sealed into
    // segments a restart replays with the index's definition.
    client
        .batch_execute(
            "CREATE TABLE tags (id INT PRIMARY KEY, tag TEXT); INSERT INTO tags VALUES (1, 'a'), (2, 'a'); \
             DELETE FROM tags WHERE id = 2; CREATE UNIQUE INDEX tags_tag ON tags (tag); CHECKPOINT",
        )
        .await
        .unwrap();
    drop((client, other));
    let mut server = server;
    server.kill9();
    let server = common::Server::start(&data);
    let client = server.client().await;
    let taken = client.execute("INSERT INTO tags VALUES (3, 'a')", &[]).await.unwrap_err();
    assert_eq!(refused(taken).1.as_deref(), Some("tags_tag"));
    assert_eq!(common::text_rows(&client, "SELECT id::text FROM tags WHERE tag = 'a'").await, ["1"]);
    // The error names the table by its name now.
    client.batch_execute("ALTER TABLE tags RENAME TO labels").await.unwrap();
    let taken = client.execute("INSERT INTO labels VALUES (4, 'a')", &[]).await.unwrap_err();
    assert_eq!(taken.as_db_error().and_then(|e| e.table()), Some("labels"));
}

/// An index answers as a scan does: after random inserts, updates and
/// deletes, with a kill -9 between rounds, every lookup through an index or
/// a UNIQUE constraint returns the rows the same filter returns where no
/// index can serve it (`grp + 0 = …`).
#[tokio::test]
async fn index_lookups_equal_scans_after_random_changes_and_kill_9() {
    let data = common::fresh_data_dir("wire-indexes");
    let mut server = common::Server::start(&data);
    let setup = "CREATE TABLE items (id INT PRIMARY KEY, grp INT, tag TEXT, code INT UNIQUE); \
                 CREATE INDEX items_grp ON items (grp); CREATE INDEX items_tag_grp ON items (tag, grp)";
    server.client().await.batch_execute(setup).await.unwrap();
    let mut seed: u64 = 0x5eed;
    let mut next = move |below: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % below
    };
    for round in 0..3 {
        let client = server.client().await;
        for _ in 0..150 {
            let (id, grp, tag, code) = (next(120), next(8), ["a", "b", "c"][next(3) as usize], next(300));
            let statement = match next(4) {
                0 | 1 => format!("INSERT INTO items VALUES ({id}, {grp}, '{tag}', {code})"),
                2 => format!("UPDATE items SET grp = {grp}, tag = '{tag}', code = NULLIF({code}, 0) WHERE id = {id}"),
                _ => format!("DELETE FROM items WHERE id = {id}"),
            };
            if let Err(error) = client.batch_execute(&statement).await {
                // A key or code already taken is refused; nothing else may fail.
                assert_eq!(error.code().map(|c| c.code()), Some("23505"), "{statement}: {error}");
            }
        }
        if round < 2 {
            server.kill9();
            server = common::Server::start(&data);
        }
    }
    let client = server.client().await;
    let ids = |filter: String| {
        let client = &client;
        async move { common::text_rows(client, &format!("SELECT id::text FROM items WHERE {filter} ORDER BY id")).await }
    };
    assert!(ids("true".into()).await.len() > 30, "the rounds left rows to look up");
    for grp in 0..8 {
        assert_eq!(ids(format!("grp = {grp}")).await, ids(format!("grp + 0 = {grp}")).await, "grp {grp}");
        for tag in ["a", "b", "c"] {
            let indexed = ids(format!("tag = '{tag}' AND grp = {grp}")).await;
            assert_eq!(indexed, ids(format!("tag || '' = '{tag}' AND grp + 0 = {grp}")).await, "{tag} {grp}");
        }
    }
    for code in 0..300 {
        assert_eq!(ids(format!("code = {code}")).await, ids(format!("code + 0 = {code}")).await, "code {code}");
    }
    // A block reads its snapshot's indexes, whatever another session made
    // or dropped since.
    client.batch_execute("BEGIN; SELECT count(*) FROM items").await.unwrap();
    let other = server.client().await;
    other.batch_execute("DROP INDEX items_grp; CREATE UNIQUE INDEX items_id ON items (id, code)").await.unwrap();
    other.batch_execute("CREATE INDEX items_code ON items (code)").await.unwrap();
    for grp in 0..8 {
        assert_eq!(ids(format!("grp = {grp}")).await, ids(format!("grp + 0 = {grp}")).await, "grp {grp} in a block");
    }
    for code in 0..300 {
        let (indexed, scanned) = (ids(format!("code = {code}")).await, ids(format!("code + 0 = {code}")).await);
        assert_eq!(indexed, scanned, "code {code} in a block");
    }
    client.batch_execute("COMMIT").await.unwrap();
}

/// ALTER inside a transaction block, as migration tools run it: the
/// block's statements see the relation altered, other sessions see nothing
/// before COMMIT, and after it the change and the block's rows are one
/// commit that survives a kill -9. ROLLBACK leaves no trace.
#[tokio::test]
async fn alter_in_a_transaction_block_commits_with_it() {
    let data = common::fresh_data_dir("wire-alter-in-block");
    let mut server = common::Server::start(&data);
    let client = server.client().await;
    let other = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT); INSERT INTO accounts VALUES (1, 'ann'); \
             CREATE STREAM events (id INT); INSERT INTO events VALUES (1)",
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "BEGIN; ALTER TABLE accounts ADD COLUMN tier INT NOT NULL DEFAULT 1; \
             ALTER TABLE accounts RENAME COLUMN owner TO holder; UPDATE accounts SET tier = 2 WHERE id = 1; \
             INSERT INTO accounts VALUES (2, 'bob', 3); ALTER TABLE accounts RENAME TO customers; \
             ALTER STREAM events ADD COLUMN kind TEXT; INSERT INTO events VALUES (2, 'new')",
        )
        .await
        .unwrap();
    let seen = common::text_rows(&client, "SELECT id || holder || tier FROM customers ORDER BY id").await;
    assert_eq!(seen, ["1ann2", "2bob3"]);
    assert_eq!(common::text_rows(&other, "SELECT owner FROM accounts").await, ["ann"], "not yet for others");
    client.batch_execute("COMMIT").await.unwrap();
    let check = |client: tokio_postgres::Client| async move {
        let rows = common::text_rows(&client, "SELECT id || holder || tier FROM customers ORDER BY id").await;
        assert_eq!(rows, ["1ann2", "2bob3"]);
        let events = common::text_rows(&client, "SELECT id || coalesce(kind, '-') FROM events ORDER BY id").await;
        assert_eq!(events, ["1-", "2new"]);
        let commits = client.query_one("SELECT count(DISTINCT _ts) FROM changes('customers') WHERE id = 2", &[]);
        assert_eq!(commits.await.unwrap().get::<_, i64>(0), 1);
    };
    check(other).await;
    server.kill9();
    let server = common::Server::start(&data);
    check(server.client().await).await;

    let client = server.client().await;
    client.batch_execute("BEGIN; ALTER TABLE customers DROP COLUMN tier; ROLLBACK").await.unwrap();
    let rows = common::text_rows(&client, "SELECT id || holder || tier FROM customers ORDER BY id").await;
    assert_eq!(rows, ["1ann2", "2bob3"]);
}
