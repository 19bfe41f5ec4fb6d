//! Real drivers against a real server: psycopg 3 and asyncpg (Python) and
//! node-postgres run `tests/drivers/*` as applications use them, each script
//! checking its results against what PostgreSQL 15 returns. `.ci/run`
//! installs the drivers (`pip install psycopg[binary] asyncpg`, `npm install
//! --prefix tests/drivers pg`).

mod common;

use std::path::PathBuf;
use std::process::Command;

fn run_script(program: &str, script: &str, name: &str) {
    let server = common::Server::start(&common::fresh_data_dir(name));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/drivers").join(script);
    let output = Command::new(program)
        .arg(&path)
        .arg(server.port.to_string())
        .output()
        .unwrap_or_else(|e| panic!("run {program} {}: {e}", path.display()));
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn psycopg_and_asyncpg_work_as_with_postgresql() {
    run_script("python3", "python_drivers.py", "drivers-python");
}

#[test]
fn node_postgres_works_as_with_postgresql() {
    run_script("node", "node_pg.js", "drivers-node");
}
