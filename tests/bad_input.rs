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
