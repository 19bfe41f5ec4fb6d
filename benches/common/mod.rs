//! What the over-the-wire benchmarks share: a release Strata server in a
//! throwaway directory, client connections and COPY.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::SinkExt;
use tokio_postgres::{Client, NoTls};

pub struct Server {
    child: Child,
    port: u16,
    pub data_dir: PathBuf,
}

impl Server {
    pub fn start(name: &str) -> Server {
        let data_dir = std::env::temp_dir().join(format!("strata-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--data"])
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("STRATA_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start strata");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "strata did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port, data_dir }
    }

    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user=strata dbname=strata", self.port)
    }

    /// Peak resident memory of the server process so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }

    /// CPU time (user + system) the server process has used so far, all its
    /// threads together: utime + stime of `/proc/<pid>/stat`, in clock ticks
    /// (`getconf CLK_TCK`, 100 almost everywhere, so 10 ms resolution).
    #[allow(dead_code)] // only nexmark.rs reads it
    pub fn cpu_time(&self) -> Duration {
        static TICKS_PER_SECOND: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
        let ticks_per_second = *TICKS_PER_SECOND.get_or_init(|| {
            Command::new("getconf")
                .arg("CLK_TCK")
                .output()
                .ok()
                .and_then(|out| String::from_utf8(out.stdout).ok())
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(100.0)
        });
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("read the server's stat");
        // The command name is in parentheses and may hold spaces; after it
        // come the fields from 3 (state) on: utime is field 14, stime 15.
        let after_name = stat.rfind(')').expect("stat has a command name") + 1;
        let fields: Vec<&str> = stat[after_name..].split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_secs_f64(ticks as f64 / ticks_per_second)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub async fn connect(conninfo: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

pub async fn copy_in(client: &Client, table: &str, csv: bytes::Bytes) -> u64 {
    let sink = client.copy_in(&format!("COPY {table} FROM STDIN WITH (FORMAT csv)")).await.expect("copy");
    let mut sink = std::pin::pin!(sink);
    // 1 MiB CopyData messages, as psql's \copy sends pieces.
    let mut rest = csv;
    while !rest.is_empty() {
        let piece = rest.split_to(rest.len().min(1 << 20));
        sink.send(piece).await.expect("copy data");
    }
    sink.finish().await.expect("copy finish")
}

/// Every client prepares `sql` and runs it `per_client` times at once with
/// the others; `params(client, n)` gives the BIGINT parameters of run `n`.
pub async fn run_clients(
    clients: &Arc<Vec<Client>>,
    sql: &str,
    per_client: usize,
    params: Arc<dyn Fn(usize, usize) -> Vec<i64> + Send + Sync>,
) {
    let mut tasks = Vec::new();
    for index in 0..clients.len() {
        let (clients, sql, params) = (clients.clone(), sql.to_string(), params.clone());
        tasks.push(tokio::spawn(async move {
            let client = &clients[index];
            let statement = client.prepare(&sql).await.unwrap();
            for n in 0..per_client {
                let values = params(index, n);
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    values.iter().map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                client.execute(&statement, &refs).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// A connection that writes protocol messages itself: a batch of Executes
/// before one Sync, as asyncpg's `executemany` and JDBC batches send it
/// (tokio-postgres sends a Sync after each).
pub struct BatchClient {
    socket: std::net::TcpStream,
}

impl BatchClient {
    /// Connects to the `host`, `port`, `user` and `dbname` of `conninfo`,
    /// which must not ask for a password.
    pub fn connect(conninfo: &str) -> BatchClient {
        let field = |name: &str| {
            conninfo.split_whitespace().find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')).expect(name)
        };
        let socket = std::net::TcpStream::connect((field("host"), field("port").parse::<u16>().unwrap())).unwrap();
        socket.set_nodelay(true).unwrap();
        let mut client = BatchClient { socket };
        let params = format!("user\0{}\0database\0{}\0\0", field("user"), field("dbname"));
        let mut startup = ((params.len() + 8) as u32).to_be_bytes().to_vec();
        startup.extend_from_slice(&196608u32.to_be_bytes());
        startup.extend_from_slice(params.as_bytes());
        std::io::Write::write_all(&mut client.socket, &startup).unwrap();
        client.until_ready();
        client
    }

    /// Parses `sql`, runs it once per row of `rows` (text parameters), all
    /// before one Sync, and waits for the answer; panics on an error.
    pub fn run_batch(&mut self, sql: &str, rows: &[Vec<String>]) {
        let mut out = Vec::new();
        let mut parse = format!("\0{sql}\0").into_bytes();
        parse.extend_from_slice(&0u16.to_be_bytes());
        message(&mut out, b'P', &parse);
        for row in rows {
            let mut bind = b"\0\0".to_vec();
            bind.extend_from_slice(&0u16.to_be_bytes());
            bind.extend_from_slice(&(row.len() as u16).to_be_bytes());
            for value in row {
                bind.extend_from_slice(&(value.len() as u32).to_be_bytes());
                bind.extend_from_slice(value.as_bytes());
            }
            bind.extend_from_slice(&0u16.to_be_bytes());
            message(&mut out, b'B', &bind);
            message(&mut out, b'E', b"\0\0\0\0\0");
        }
        message(&mut out, b'S', b"");
        std::io::Write::write_all(&mut self.socket, &out).unwrap();
        self.until_ready();
    }

    /// Reads up to ReadyForQuery; panics on an ErrorResponse.
    fn until_ready(&mut self) {
        let mut reader = std::io::BufReader::new(&self.socket);
        loop {
            let mut header = [0u8; 5];
            std::io::Read::read_exact(&mut reader, &mut header).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize - 4];
            std::io::Read::read_exact(&mut reader, &mut body).unwrap();
            match header[0] {
                b'E' => panic!("batch failed: {}", String::from_utf8_lossy(&body)),
                b'Z' => return,
                _ => {}
            }
        }
    }
}

fn message(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
}
