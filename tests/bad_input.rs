//! Bad input and misbehaving clients: a client that vanishes mid-COPY, a
//! cancel request for a long query, an oversized protocol message. Each gets
//! a clear outcome, other sessions are unaffected, nothing partial is appended.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use futures::SinkExt;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_vanishing_mid_copy_appends_nothing() {
    let server = common::Server::start(&common::fresh_data_dir("vanish-copy"));
    let observer = server.client().await;
    observer.batch_execute("CREATE STREAM c (id BIGINT, note TEXT)").await.unwrap();

    let (client, connection) = tokio_postgres::connect(&server.connection_string(), NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    let sink = client.copy_in("COPY c FROM STDIN").await.unwrap();
    let mut sink = Box::pin(sink);
    sink.send(bytes::Bytes::from_static(b"1\tfirst\n2\tsecond\n")).await.unwrap();
    sink.flush().await.unwrap();
    // The client goes away without CopyDone: its socket just closes.
    connection.abort();
    drop(sink);
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let count: i64 = observer.query_one("SELECT count(*) FROM c", &[]).await.unwrap().get(0);
    assert_eq!(count, 0);
    observer.batch_execute("INSERT INTO c VALUES (3, 'after')").await.unwrap();
    let count: i64 = observer.query_one("SELECT count(*) FROM c", &[]).await.unwrap().get(0);
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_a_long_query() {
    let server = common::Server::start(&common::fresh_data_dir("cancel"));
    let client = server.client().await;
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    let started = std::time::Instant::now();
    let error = client
        .simple_query("SELECT count(*) FROM generate_series(1, 100000000000) AS t(n) WHERE n % 7 = 3")
        .await
        .unwrap_err();
    canceller.await.unwrap();
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // The session is usable afterwards.
    let one: i64 = client.query_one("SELECT 1::BIGINT", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

/// A cancel that stops a string of statements undoes it whole (its implicit
/// block is rolled back, not left open), and fails an explicit block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_undoes_a_string_and_fails_a_block() {
    const LONG: &str = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(n) WHERE n % 7 = 3";
    let server = common::Server::start(&common::fresh_data_dir("cancel-string"));
    let client = server.client().await;
    let other = server.client().await;
    client.batch_execute("CREATE TABLE marks (k INT PRIMARY KEY)").await.unwrap();
    let cancelled = |sql: String| {
        let token = client.cancel_token();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            token.cancel_query(NoTls).await.unwrap();
        });
        let client = &client;
        async move {
            let error = client.simple_query(&sql).await.unwrap_err();
            canceller.await.unwrap();
            assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error:?}");
        }
    };
    cancelled(format!("INSERT INTO marks VALUES (1); {LONG}; SELECT 1")).await;
    let count = |sql: &'static str| async { other.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) };
    assert_eq!(count("SELECT count(*) FROM marks").await, 0, "the cancelled string wrote nothing");
    // The session is not left inside a block: its next write commits alone.
    client.batch_execute("INSERT INTO marks VALUES (2)").await.unwrap();
    assert_eq!(count("SELECT count(*) FROM marks WHERE k = 2").await, 1);

    // In a block, a cancel while a string runs or while the rows of its
    // last statement are sent fails the block.
    for string in [format!("{LONG}; SELECT 1"), LONG.to_string()] {
        client.batch_execute("BEGIN; INSERT INTO marks VALUES (3)").await.unwrap();
        cancelled(string).await;
        let after = client.batch_execute("INSERT INTO marks VALUES (4)").await.unwrap_err();
        assert_eq!(after.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION), "{after:?}");
        client.batch_execute("COMMIT").await.unwrap();
        assert_eq!(count("SELECT count(*) FROM marks").await, 1, "the failed block committed nothing");
    }

    // A cancel either stops a string before its commit (nothing written,
    // its SET LOCAL gone) or comes too late and is ignored (all written,
    // the client told so): never "canceled" of a commit that happened.
    client.batch_execute("CREATE TABLE many (k BIGINT PRIMARY KEY)").await.unwrap();
    let string = "SET LOCAL TimeZone = 'Asia/Tokyo'; \
                  INSERT INTO many SELECT x FROM generate_series(1, 30000000) AS t(x) WHERE x % 100 = 0";
    let mut outcomes = Vec::new();
    for delay in [20, 200, 600, 1000, 1500] {
        client.batch_execute("TRUNCATE many").await.unwrap();
        let token = client.cancel_token();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            token.cancel_query(NoTls).await.unwrap();
        });
        let result = client.batch_execute(string).await;
        canceller.await.unwrap();
        let rows = count("SELECT count(*) FROM many").await;
        match result {
            Ok(()) => assert_eq!(rows, 300_000, "a string that answered OK wrote everything"),
            Err(error) => {
                assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error:?}");
                assert_eq!(rows, 0, "a cancelled string wrote nothing");
            }
        }
        let zone: String = client.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
        assert_eq!(zone, "UTC", "SET LOCAL ended with its string");
        outcomes.push(rows);
    }
    eprintln!("rows kept per cancel delay: {outcomes:?}");
}

#[test]
fn oversized_protocol_message_is_refused() {
    let server = common::Server::start(&common::fresh_data_dir("oversized"));
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A startup message claiming to be 1 GiB long.
    socket.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    socket.write_all(&196608u32.to_be_bytes()).unwrap();
    let mut reply = Vec::new();
    let _ = socket.read_to_end(&mut reply);
    // The server answers with an error or closes the connection, and keeps serving others.
    assert!(reply.is_empty() || reply[0] == b'E', "unexpected reply {reply:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = server.client().await;
        let one: i64 = client.query_one("SELECT 1::BIGINT", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    });
}

/// Answers to Parse, Bind and Describe are held until the client asks with
/// Flush or Sync, as PostgreSQL does; a client that sends Flush and waits
/// must get them (drivers that pipeline do exactly that).
#[test]
fn extended_query_answers_arrive_on_flush_and_on_sync() {
    use common::raw;
    let server = common::Server::start(&common::fresh_data_dir("flush"));
    let mut client = raw::Client::connect(server.port);
    client.send(&[raw::parse("SELECT $1::BIGINT + 1 AS n"), raw::describe_statement(), raw::flush()]);
    assert_eq!(
        client.read_until(b'T').0,
        vec![b'1', b't', b'T'],
        "ParseComplete, ParameterDescription, RowDescription"
    );
    client.send(&[raw::bind(&["41"]), raw::describe_portal(), raw::execute(), raw::sync()]);
    assert_eq!(client.read_until(b'Z').0, vec![b'2', b'T', b'D', b'C', b'Z']);
}
