//! psql against a real server: the README quickstart, `\copy` of the sample
//! data in and out, `FETCH_COUNT`, `ON_ERROR_ROLLBACK`, and the catalog meta-commands `\dt`, `\d`, `\di`, `\l`, `\dn`, `\du`, `\df`,
//! `\dT`, `\dp`.

mod common;

use std::path::Path;
use std::process::Command;

fn psql(server: &common::Server, args: &[&str]) -> (bool, String, String) {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "strata",
            "-d",
            "strata",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("psql is installed (apt-get install postgresql-client)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn quickstart_with_psql() {
    let server = common::Server::start(&common::fresh_data_dir("psql"));
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/clicks.csv");
    let sample_rows = std::fs::read_to_string(&sample).unwrap().lines().count() - 1;

    let (ok, _, stderr) =
        psql(&server, &["-c", "CREATE STREAM clicks (user_id BIGINT NOT NULL, url TEXT, at TIMESTAMPTZ)"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\copy clicks FROM 'data/clicks.csv' CSV HEADER"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("COPY {sample_rows}"));
    // Exported as it was imported: the same bytes back, header included.
    let exported = std::env::temp_dir().join(format!("strata-clicks-{}.csv", std::process::id()));
    let copy_to =
        format!("\\copy (SELECT user_id, url, at FROM clicks ORDER BY _offset) TO '{}' CSV HEADER", exported.display());
    let (ok, stdout, stderr) = psql(&server, &["-c", &copy_to]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("COPY {sample_rows}"));
    let written = std::fs::read_to_string(&exported).unwrap();
    let _ = std::fs::remove_file(&exported);
    assert_eq!(written, std::fs::read_to_string(&sample).unwrap());

    // FETCH_COUNT: psql reads through a cursor, a few rows per FETCH, and
    // prints what it prints without one.
    let query = "SELECT user_id, url FROM clicks ORDER BY _offset";
    let (ok, whole, stderr) = psql(&server, &["-c", query]);
    assert!(ok, "{stderr}");
    let (ok, fetched, stderr) = psql(&server, &["-v", "FETCH_COUNT=7", "-A", "-c", query]);
    assert!(ok, "{stderr}");
    let (ok, unaligned, stderr) = psql(&server, &["-A", "-c", query]);
    assert!(ok, "{stderr}");
    assert_eq!(fetched, unaligned);
    assert!(whole.contains(&format!("({sample_rows} rows)")), "{whole}");

    // ON_ERROR_ROLLBACK: psql wraps each statement of a block in a
    // savepoint, so a failed one is undone and the block goes on.
    let script = "\\set ON_ERROR_ROLLBACK on\nCREATE TABLE seen (id INT PRIMARY KEY);\nBEGIN;\n\
                  INSERT INTO seen VALUES (1);\nINSERT INTO seen VALUES (1);\nINSERT INTO seen VALUES (2);\nCOMMIT;\n";
    let script_file = std::env::temp_dir().join(format!("strata-rollback-{}.sql", std::process::id()));
    std::fs::write(&script_file, script).unwrap();
    let (_, stdout, stderr) = psql(&server, &["-v", "ON_ERROR_STOP=0", "-f", &script_file.display().to_string()]);
    let _ = std::fs::remove_file(&script_file);
    assert!(stderr.contains("duplicate key"), "{stdout}{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-At", "-c", "SELECT string_agg(id::text, ',' ORDER BY id) FROM seen"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "1,2");

    let (ok, stdout, stderr) =
        psql(&server, &["-c", "INSERT INTO clicks VALUES (1, '/home', now()), (2, '/cart', now())"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "INSERT 0 2");

    let (ok, stdout, stderr) = psql(&server, &["-At", "-c", "SELECT count(*) FROM clicks"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), (sample_rows + 2).to_string());

    let (ok, stdout, stderr) =
        psql(&server, &["-At", "-c", "SELECT _offset, url FROM clicks ORDER BY _offset DESC LIMIT 1"]);
    assert!(ok, "{stderr}");
    assert!(stdout.trim().ends_with("|/cart"), "{stdout}");

    let (ok, stdout, stderr) = psql(&server, &["-c", "\\dt"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("clicks"), "\\dt lists the stream:\n{stdout}");

    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d clicks"]);
    assert!(ok, "{stderr}");
    for column in ["user_id", "url", "at"] {
        assert!(stdout.contains(column), "\\d shows {column}:\n{stdout}");
    }
    // System columns are there when named, not listed (as PostgreSQL's).
    assert!(!stdout.contains("_offset") && !stdout.contains("_ts"), "\\d lists no system column:\n{stdout}");

    // A continuous view is a materialized view to psql: in \dm, not \dt.
    let sql = "CREATE MATERIALIZED VIEW per_url AS SELECT url, count(*) AS n FROM clicks GROUP BY url";
    let (ok, _, stderr) = psql(&server, &["-c", sql]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\dm"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("per_url") && stdout.contains("materialized view"), "\\dm lists the view:\n{stdout}");
    assert!(!stdout.contains("clicks"), "\\dm lists only views:\n{stdout}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\dt"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("clicks") && !stdout.contains("per_url"), "\\dt lists no view:\n{stdout}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d per_url"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Materialized view") && stdout.contains(" n "), "\\d describes the view:\n{stdout}");

    // The verbose forms: comments (none), storage, a view's definition.
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d+ clicks"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Description") && stdout.contains("user_id"), "\\d+ describes the stream:\n{stdout}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d+ per_url"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("View definition:") && stdout.contains("GROUP BY url"),
        "\\d+ shows the view's query:\n{stdout}"
    );
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\dt+"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("clicks") && stdout.contains("Size"), "\\dt+ lists the stream:\n{stdout}");
    // Sizes: the relation's bytes by the object id psql reads from pg_class.
    let (ok, stdout, stderr) = psql(&server, &["-A", "-t", "-c", "\\dt+ clicks"]);
    assert!(ok, "{stderr}");
    let size = stdout.trim().split('|').nth(6).unwrap_or_default().to_string();
    assert!(size.ends_with(" bytes") || size.ends_with(" kB"), "\\dt+ shows a size: {stdout}");
    let sizes = "SELECT pg_table_size(c.oid) > 0, pg_database_size('strata') >= pg_table_size(c.oid), \
                 pg_table_size(-1) IS NULL FROM pg_class c WHERE c.relname = 'clicks'";
    let (ok, stdout, stderr) = psql(&server, &["-A", "-t", "-c", sizes]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "t|t|t");

    // A table's key and CHECKs, as PostgreSQL's \d shows them; a stream, a
    // keyless table and a view have none.
    let (ok, _, stderr) = psql(
        &server,
        &[
            "-c",
            "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner VARCHAR(20) NOT NULL DEFAULT 'anon', \
             balance NUMERIC(12,2) CHECK (balance >= 0) CHECK (balance < 1000000), \
             opened TIMESTAMPTZ DEFAULT now(), note VARCHAR, flag BOOLEAN DEFAULT false)",
            "-c",
            "CREATE TABLE pairs (a INT, b TEXT, PRIMARY KEY (a, b))",
            "-c",
            "CREATE TABLE notes (body TEXT)",
        ],
    );
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d accounts"]);
    assert!(ok, "{stderr}");
    for line in [
        "Indexes:",
        "\"accounts_pkey\" PRIMARY KEY, btree (id)",
        "Check constraints:",
        "\"accounts_balance_check\" CHECK (balance >= 0)",
        "\"accounts_balance_check1\" CHECK (balance < 1000000)",
    ] {
        assert!(stdout.contains(line), "\\d accounts shows {line}:\n{stdout}");
    }
    // Declared types with their modifiers, and DEFAULTs, as PostgreSQL's \d shows them.
    let (ok, stdout, stderr) = psql(&server, &["-A", "-c", "\\d accounts"]);
    assert!(ok, "{stderr}");
    for line in [
        "id|bigint||not null|",
        "owner|character varying(20)||not null|'anon'",
        "balance|numeric(12,2)|||",
        "opened|timestamp with time zone|||now()",
        "note|character varying|||",
        "flag|boolean|||false",
    ] {
        assert!(stdout.lines().any(|l| l == line), "\\d accounts shows {line}:\n{stdout}");
    }
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d pairs"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"pairs_pkey\" PRIMARY KEY, btree (a, b)"), "\\d pairs:\n{stdout}");
    // Foreign keys, as PostgreSQL's \d shows them on both tables, and a UNIQUE constraint's index.
    let create = "CREATE TABLE entries (id INT PRIMARY KEY, a INT, b TEXT, code TEXT UNIQUE, \
                  FOREIGN KEY (a, b) REFERENCES pairs)";
    let (ok, _, stderr) = psql(&server, &["-c", create]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d entries"]);
    assert!(ok, "{stderr}");
    for line in [
        "\"entries_pkey\" PRIMARY KEY, btree (id)",
        "\"entries_code_key\" UNIQUE CONSTRAINT, btree (code)",
        "Foreign-key constraints:",
        "\"entries_a_b_fkey\" FOREIGN KEY (a, b) REFERENCES pairs(a, b)",
    ] {
        assert!(stdout.contains(line), "\\d entries shows {line}:\n{stdout}");
    }
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d pairs"]);
    assert!(ok, "{stderr}");
    let referenced = "TABLE \"entries\" CONSTRAINT \"entries_a_b_fkey\" FOREIGN KEY (a, b) REFERENCES pairs(a, b)";
    assert!(stdout.contains("Referenced by:") && stdout.contains(referenced), "\\d pairs:\n{stdout}");
    // A table named as one of Strata's system tables is told from it.
    let (ok, _, stderr) = psql(&server, &["-c", "CREATE TABLE views (id BIGINT PRIMARY KEY, v TEXT)"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\d views"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.matches("\"views_pkey\" PRIMARY KEY").count(), 1, "\\d views shows its key once:\n{stdout}");
    for relation in ["notes", "clicks", "per_url"] {
        let (ok, stdout, stderr) = psql(&server, &["-c", &format!("\\d {relation}")]);
        assert!(ok, "{stderr}");
        assert!(!stdout.contains("Indexes:") && !stdout.contains("Check"), "\\d {relation}:\n{stdout}");
    }
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\di"]);
    assert!(ok, "{stderr}");
    for index in ["accounts_pkey", "pairs_pkey", "entries_code_key"] {
        assert!(stdout.contains(index), "\\di lists {index}:\n{stdout}");
    }
    assert!(!stdout.contains("notes"), "\\di lists no keyless table:\n{stdout}");

    for meta in ["\\l", "\\dn", "\\l+", "\\dn+", "\\dm+", "\\d+", "\\db"] {
        let (ok, _, stderr) = psql(&server, &["-c", meta]);
        assert!(ok, "{meta}: {stderr}");
    }
    let (_, stdout, _) = psql(&server, &["-c", "\\db"]);
    assert!(stdout.contains("pg_default"), "\\db:\n{stdout}");
    // Roles, functions, types and privileges: Strata has no CREATE ROLE,
    // FUNCTION or TYPE and no GRANT, so the lists without system objects
    // are empty, as PostgreSQL's are on a fresh cluster (but for its roles).
    for meta in ["\\df", "\\dT", "\\dD", "\\dc"] {
        let (ok, stdout, stderr) = psql(&server, &["-A", "-c", meta]);
        assert!(ok && stdout.contains("(0 rows)"), "{meta}: {stdout}{stderr}");
    }
    // The version psql reads from the startup parameters is `version()`'s.
    let (ok, stdout, stderr) = psql(&server, &["-c", "\\echo :SERVER_VERSION_NAME :SERVER_VERSION_NUM"]);
    assert!(ok && stdout.trim() == "15.0 150000", "server version: {stdout}{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-A", "-c", "\\du"]);
    assert!(ok && stdout.trim_end().ends_with("Role name|Attributes|Member of"), "\\du: {stdout}{stderr}");
    // With a pattern, PostgreSQL's own functions and types.
    let (ok, stdout, stderr) = psql(&server, &["-A", "-c", "\\df jsonb_typeof"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("pg_catalog|jsonb_typeof|text|jsonb|func"), "\\df jsonb_typeof:\n{stdout}");
    let (ok, stdout, stderr) = psql(&server, &["-A", "-c", "\\dT jsonb"]);
    assert!(ok && stdout.contains("pg_catalog|jsonb|"), "\\dT jsonb: {stdout}{stderr}");
    let (ok, stdout, stderr) = psql(&server, &["-A", "-c", "\\dp"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("public|accounts|table|||"), "\\dp:\n{stdout}");

    let (ok, _, stderr) = psql(&server, &["-c", "SELECT * FROM nowhere"]);
    assert!(!ok);
    assert!(stderr.contains("relation \"nowhere\" does not exist"), "{stderr}");

    // A COPY TO STDOUT behind another result that fails is an error, not
    // a message psql cannot read; a COPY FROM STDIN must end its string.
    let (ok, _, stderr) =
        psql(&server, &["-c", "SELECT 1; COPY (SELECT 10 / (n - 2) FROM generate_series(1, 3) AS t(n)) TO STDOUT"]);
    assert!(!ok && stderr.contains("division by zero") && !stderr.contains("unexpected"), "{stderr}");
    let (ok, _, stderr) = psql(&server, &["-c", "COPY accounts FROM STDIN; SELECT 1"]);
    assert!(!ok && stderr.contains("statements after COPY FROM STDIN"), "{stderr}");
}
