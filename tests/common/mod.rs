//! Test harness: runs the real `strata` binary on a fresh data directory and
//! loopback port, and connects real clients to it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
}

/// A fresh, empty directory under cargo's per-target temp dir.
pub fn fresh_data_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create data dir");
    dir
}

/// The port a server's log says it listens on, once it is ready.
fn listening_port(log_path: &Path) -> Option<u16> {
    let log = std::fs::read_to_string(log_path).ok()?;
    let line = log.lines().find(|line| line.contains("ready for connections"))?;
    let (_, after) = line.split_once("127.0.0.1:")?;
    after.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Server {
    /// Starts a server on `data_dir` and waits until it accepts connections.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    /// Starts a server with extra `strata serve` arguments.
    pub fn start_with(data_dir: &Path, args: &[&str]) -> Server {
        Self::try_start_with(data_dir, args).unwrap_or_else(|log| panic!("server did not start; its log:\n{log}"))
    }

    /// Starts a server; on failure returns what it printed.
    pub fn try_start(data_dir: &Path) -> Result<Server, String> {
        Self::try_start_with(data_dir, &[])
    }

    pub fn try_start_with(data_dir: &Path, args: &[&str]) -> Result<Server, String> {
        Self::try_start_with_env(data_dir, args, &[])
    }

    /// Starts a server with extra arguments and environment variables.
    pub fn try_start_with_env(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
        // Port 0: the server binds a port of its own choosing and logs it. A
        // port picked here and freed again could be taken meanwhile (as a
        // client's ephemeral port, by another test's connection).
        let log_path = data_dir.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("create log");
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--data"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("STRATA_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn strata");
        let mut server = Server { child: Some(child), port: 0, data_dir: data_dir.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(port) = listening_port(&log_path) {
                server.port = port;
                return Ok(server);
            }
            if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                server.child = None;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("exited with {status}\n{log}"));
            }
            if Instant::now() > deadline {
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connection_string(&self) -> String {
        format!("host=127.0.0.1 port={} user=strata dbname=strata", self.port)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.connection_string(), tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// A client whose NOTICEs and WARNINGs arrive on the receiver.
    pub async fn client_with_notices(
        &self,
    ) -> (tokio_postgres::Client, tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::error::DbError>) {
        let (client, mut connection) =
            tokio_postgres::connect(&self.connection_string(), tokio_postgres::NoTls).await.expect("connect");
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
                if let tokio_postgres::AsyncMessage::Notice(notice) = message {
                    let _ = sender.send(notice);
                }
            }
        });
        (client, receiver)
    }

    /// SIGKILL: the process gets no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The rows of `sql` over the simple protocol, in the server's own text:
/// each row's values joined by `|`, NULL as `NULL`.
pub async fn text_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|i| row.get(i).unwrap_or("NULL")).collect::<Vec<_>>().join("|"))
            }
            _ => None,
        })
        .collect()
}

/// xorshift64*: deterministic per seed, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// A client that writes protocol messages itself, for what drivers' APIs
/// do not send as wanted (several Executes before one Sync, a Flush).
pub mod raw {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub struct Client {
        socket: TcpStream,
        port: u16,
        /// BackendKeyData: what a cancel request names.
        key: Vec<u8>,
    }

    impl Client {
        /// Connects and waits for the first ReadyForQuery.
        pub fn connect(port: u16) -> Client {
            let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let params = b"user\0strata\0database\0strata\0\0";
            let mut startup = ((params.len() + 8) as u32).to_be_bytes().to_vec();
            startup.extend_from_slice(&196608u32.to_be_bytes());
            startup.extend_from_slice(params);
            socket.write_all(&startup).unwrap();
            let mut client = Client { socket, port, key: Vec::new() };
            client.key = client.read_until(b'K').1;
            client.read_until(b'Z');
            client
        }

        /// Sends a cancel request for this connection and waits until the
        /// server has handled it (it closes the request's connection).
        pub fn cancel(&self) {
            let mut socket = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut request = 16u32.to_be_bytes().to_vec();
            request.extend_from_slice(&80877102u32.to_be_bytes());
            request.extend_from_slice(&self.key);
            socket.write_all(&request).unwrap();
            let _ = socket.read_to_end(&mut Vec::new());
        }

        pub fn send(&mut self, messages: &[Vec<u8>]) {
            self.socket.write_all(&messages.concat()).unwrap();
        }

        /// Reads backend messages up to one of type `last`: their types,
        /// and the body of the last.
        pub fn read_until(&mut self, last: u8) -> (Vec<u8>, Vec<u8>) {
            let mut types = Vec::new();
            loop {
                let mut header = [0u8; 5];
                self.socket.read_exact(&mut header).expect("a message before the timeout");
                let len = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
                let mut body = vec![0u8; len - 4];
                self.socket.read_exact(&mut body).unwrap();
                types.push(header[0]);
                if header[0] == last {
                    return (types, body);
                }
            }
        }
    }

    pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Parse of the unnamed statement, its parameter types left to the server.
    pub fn parse(sql: &str) -> Vec<u8> {
        let mut body = format!("\0{sql}\0").into_bytes();
        body.extend_from_slice(&0u16.to_be_bytes());
        message(b'P', &body)
    }

    /// Bind of the unnamed portal to the unnamed statement, parameters in text.
    pub fn bind(params: &[&str]) -> Vec<u8> {
        let mut body = b"\0\0".to_vec();
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&(params.len() as u16).to_be_bytes());
        for param in params {
            body.extend_from_slice(&(param.len() as u32).to_be_bytes());
            body.extend_from_slice(param.as_bytes());
        }
        body.extend_from_slice(&0u16.to_be_bytes());
        message(b'B', &body)
    }

    /// Execute of the unnamed portal, every row.
    pub fn execute() -> Vec<u8> {
        execute_rows(0)
    }

    /// Execute of the unnamed portal, at most `max_rows` rows (0: all).
    pub fn execute_rows(max_rows: u32) -> Vec<u8> {
        let mut body = b"\0".to_vec();
        body.extend_from_slice(&max_rows.to_be_bytes());
        message(b'E', &body)
    }

    /// A simple Query message.
    pub fn query(sql: &str) -> Vec<u8> {
        message(b'Q', format!("{sql}\0").as_bytes())
    }

    pub fn describe_statement() -> Vec<u8> {
        message(b'D', b"S\0")
    }

    pub fn describe_portal() -> Vec<u8> {
        message(b'D', b"P\0")
    }

    pub fn flush() -> Vec<u8> {
        message(b'H', b"")
    }

    pub fn sync() -> Vec<u8> {
        message(b'S', b"")
    }

    pub fn copy_data(data: &[u8]) -> Vec<u8> {
        message(b'd', data)
    }

    pub fn copy_done() -> Vec<u8> {
        message(b'c', b"")
    }
}
