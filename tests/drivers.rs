//! Real drivers against a real server: psycopg 3, asyncpg and SQLAlchemy
//! (Python) and node-postgres run `tests/drivers/*` as applications use
//! them, each script checking its results against what PostgreSQL 15
//! returns. `.ci/run` installs the drivers (`pip install psycopg[binary]
//! asyncpg sqlalchemy`, `npm install --prefix tests/drivers pg`).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than a script takes on a loaded machine; a server that stops
/// answering fails the test instead of hanging it.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(180);

fn run_script(program: &str, script: &str, name: &str) {
    let server = common::Server::start(&common::fresh_data_dir(name));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/drivers").join(script);
    // Output goes to files: a pipe could fill and stall the script.
    let out = common::fresh_data_dir(&format!("{name}-out")).join("output");
    let stdout = std::fs::File::create(out.with_extension("stdout")).expect("stdout file");
    let stderr = std::fs::File::create(out.with_extension("stderr")).expect("stderr file");
    let mut child = Command::new(program)
        .arg(&path)
        .arg(server.port.to_string())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap_or_else(|e| panic!("run {program} {}: {e}", path.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break status;
        }
        if started.elapsed() > SCRIPT_DEADLINE {
            let _ = child.kill();
            panic!("{script} did not finish in {SCRIPT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |extension: &str| std::fs::read_to_string(out.with_extension(extension)).unwrap_or_default();
    assert!(status.success(), "{script} failed:\n{}\n{}", read("stdout"), read("stderr"));
}

#[test]
fn psycopg_and_asyncpg_work_as_with_postgresql() {
    run_script("python3", "python_drivers.py", "drivers-python");
}

#[test]
fn node_postgres_works_as_with_postgresql() {
    run_script("node", "node_pg.js", "drivers-node");
}
