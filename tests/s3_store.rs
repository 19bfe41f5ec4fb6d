//! Sealed history in an S3-compatible bucket (`--store s3://bucket/prefix`):
//! a real S3 server over HTTP (moto's, from PyPI: `pip install 'moto[server]'`),
//! a real `strata` process killed with SIGKILL. Segments, snapshots, view
//! checkpoints and the manifest land in the bucket, the WAL stays local, and
//! a restart reads the sealed history back from the bucket.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "strata-test";

/// An S3 server on a loopback port, stopped when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn start() -> S3Server {
        let port = common::free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut server = S3Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the S3 server exited ({status}): is moto installed? pip install 'moto[server]'");
            }
            assert!(Instant::now() < deadline, "the S3 server did not start in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// A server holding the test's bucket.
    fn with_bucket() -> S3Server {
        let s3 = S3Server::start();
        let (status, _) = s3.request("PUT", &format!("/{BUCKET}"));
        assert!(status.contains("200"), "create bucket: {status}");
        s3
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One unsigned HTTP/1.1 request; returns the status line and body.
    /// Tried again a few times: moto may accept a connection and reset it
    /// while it is still starting.
    fn request(&self, method: &str, target: &str) -> (String, String) {
        let mut attempts = 0;
        loop {
            match self.request_once(method, target) {
                Ok(response) => return response,
                Err(error) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("S3 request failed ({error}); again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => panic!("S3 request {method} {target}: {error}"),
            }
        }
    }

    fn request_once(&self, method: &str, target: &str) -> std::io::Result<(String, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        Ok((head.lines().next().unwrap_or_default().to_string(), body.to_string()))
    }

    /// Keys of the objects under `prefix` in the bucket.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.request("GET", &format!("/{BUCKET}?list-type=2&prefix={prefix}"));
        assert!(status.contains("200"), "{status}: {body}");
        body.split("<Key>").skip(1).filter_map(|s| s.split_once("</Key>")).map(|(key, _)| key.to_string()).collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(s3: &S3Server, data_dir: &std::path::Path, store: &str) -> Result<common::Server, String> {
    let endpoint = s3.endpoint();
    let envs = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    // Small thresholds, so a CHECKPOINT also writes a table snapshot and a view checkpoint.
    common::Server::try_start_with_env(data_dir, &["--store", store, "--snapshot-changes-min", "100"], &envs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_history_lives_in_the_bucket_and_survives_kill_9() {
    let s3 = S3Server::with_bucket();
    let data_dir = common::fresh_data_dir("s3-store");
    let store = format!("s3://{BUCKET}/db1");
    let mut server = start(&s3, &data_dir, &store).unwrap_or_else(|log| panic!("server did not start:\n{log}"));

    let client = server.client().await;
    client
        .batch_execute(
            "CREATE STREAM clicks (user_id BIGINT NOT NULL, url TEXT);
             CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT);
             CREATE MATERIALIZED VIEW per_url AS SELECT url, count(*) AS n FROM clicks GROUP BY url;
             INSERT INTO clicks SELECT g, '/p' || (g % 3) FROM generate_series(1, 3000) g;
             INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 500) g;",
        )
        .await
        .unwrap();
    let before_update = common::text_rows(&client, "SELECT current_offset()").await[0].clone();
    client.batch_execute("UPDATE accounts SET balance = 7 WHERE id <= 10; CHECKPOINT").await.unwrap();
    // After the seal: one more commit that only the local WAL holds.
    client
        .batch_execute("INSERT INTO clicks VALUES (9001, '/late'); DELETE FROM accounts WHERE id = 500")
        .await
        .unwrap();

    let keys = s3.keys("db1/");
    assert!(keys.contains(&"db1/manifest.json".to_string()), "{keys:?}");
    for kind in ["segments", "snapshots", "views"] {
        assert!(keys.iter().any(|k| k.starts_with(&format!("db1/{kind}/"))), "no {kind} in {keys:?}");
    }
    assert!(!data_dir.join("store").exists(), "nothing sealed goes to the local directory");
    assert!(data_dir.join("wal").exists());

    server.kill9();
    let server = start(&s3, &data_dir, &store).unwrap_or_else(|log| panic!("restart failed:\n{log}"));
    let client = server.client().await;
    assert_eq!(common::text_rows(&client, "SELECT count(*), count(DISTINCT user_id) FROM clicks").await, ["3001|3001"]);
    assert_eq!(
        common::text_rows(&client, "SELECT count(*), sum(balance) FROM accounts").await,
        [format!("499|{}", 489 * 100 + 70)]
    );
    assert_eq!(
        common::text_rows(&client, "SELECT url, n FROM per_url ORDER BY url").await,
        ["/late|1", "/p0|1000", "/p1|1000", "/p2|1000"]
    );
    assert_eq!(
        common::text_rows(
            &client,
            &format!("SELECT count(*), sum(balance) FROM accounts VERSION AS OF {before_update}")
        )
        .await,
        ["500|50000"]
    );
    assert_eq!(
        common::text_rows(
            &client,
            "SELECT _diff, balance FROM changes('accounts') WHERE id = 3 ORDER BY _offset, _diff"
        )
        .await,
        ["1|100", "-1|100", "1|7"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_used_stops_the_start() {
    let s3 = S3Server::with_bucket();

    // A missing bucket is found at start, not at the first seal.
    let data_dir = common::fresh_data_dir("s3-no-bucket");
    let error = start(&s3, &data_dir, "s3://no-such-bucket/db").err().expect("start must fail");
    assert!(error.contains("no-such-bucket") || error.contains("NoSuchBucket"), "{error}");
    // The failed start did not pair the directory with the mistyped bucket.
    start(&s3, &data_dir, &format!("s3://{BUCKET}/fixed")).unwrap_or_else(|log| panic!("{log}"));

    // A data directory stays with the store its WAL continues.
    let data_dir = common::fresh_data_dir("s3-paired");
    let mut server = start(&s3, &data_dir, &format!("s3://{BUCKET}/paired")).unwrap();
    server.client().await.batch_execute("CREATE STREAM s (x BIGINT); INSERT INTO s VALUES (1)").await.unwrap();
    assert!(server.stop());
    let error = common::Server::try_start(&data_dir).err().expect("start without --store must fail");
    assert!(error.contains(&format!("s3://{BUCKET}/paired")), "{error}");
    let error = start(&s3, &data_dir, &format!("s3://{BUCKET}/other")).err().expect("another prefix must fail");
    assert!(error.contains("goes with the store"), "{error}");
    let server = start(&s3, &data_dir, &format!("s3://{BUCKET}/paired/")).unwrap();
    assert_eq!(common::text_rows(&server.client().await, "SELECT x FROM s").await, ["1"]);

    // An unsupported URL is named.
    let error = common::Server::try_start_with(&common::fresh_data_dir("s3-bad-url"), &["--store", "ftp://x/y"])
        .err()
        .expect("start must fail");
    assert!(error.contains("unsupported store URL \"ftp://x/y\""), "{error}");
}
