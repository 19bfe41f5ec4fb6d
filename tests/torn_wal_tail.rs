//! Recovery against a damaged WAL, through the real server: a torn final
//! write (file cut anywhere in its last record) is dropped and the server
//! starts with every earlier commit, whether the file grew with the write or
//! the write went into zeros filled ahead of it; damage in the middle of the
//! log stops the start with an error naming the file and byte position.

mod common;

use std::path::{Path, PathBuf};

fn wal_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Where the frames of a WAL file end (`[len u32][crc u32][payload]` after
/// an 8-byte header; zeros follow when space was filled ahead).
fn data_end(wal: &[u8]) -> usize {
    let mut position = 8;
    while let Some(len) = wal.get(position..position + 4) {
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        position += 8 + len;
    }
    position
}

/// Writes `commits` single-row commits and returns the WAL's data end after each.
async fn write_commits(data_dir: &Path, commits: i64) -> Vec<usize> {
    let mut server = common::Server::start(data_dir);
    let client = server.client().await;
    client.batch_execute("CREATE STREAM t (n BIGINT)").await.unwrap();
    let wal = wal_files(data_dir).pop().unwrap();
    let mut sizes = Vec::new();
    for n in 0..commits {
        client.execute("INSERT INTO t VALUES ($1)", &[&n]).await.unwrap();
        sizes.push(data_end(&std::fs::read(&wal).unwrap()));
    }
    assert!(server.stop(), "clean shutdown");
    sizes
}

async fn count_rows(server: &common::Server) -> i64 {
    server.client().await.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_dropped_at_every_cut() {
    let data_dir = common::fresh_data_dir("torn-tail");
    let sizes = write_commits(&data_dir, 5).await;
    let wal = wal_files(&data_dir).pop().unwrap();
    let full = std::fs::read(&wal).unwrap();
    let (last_start, last_end) = (sizes[3], sizes[4]);
    // Every cut inside the last record, sampled so the test stays short.
    let cuts: Vec<usize> = (last_start + 1..last_end).step_by(((last_end - last_start) / 12).max(1)).collect();
    for cut in cuts {
        // The file ends inside the record (it grew with the write)...
        std::fs::write(&wal, &full[..cut]).unwrap();
        let server = common::Server::start(&data_dir);
        assert_eq!(count_rows(&server).await, 4, "cut at byte {cut}");
        drop(server);
        assert_eq!(std::fs::metadata(&wal).unwrap().len() as usize, last_start, "torn bytes cut off");
        // ...or zeros filled ahead follow the part that reached the disk.
        let mut torn = full.clone();
        torn[cut..last_end].fill(0);
        std::fs::write(&wal, &torn).unwrap();
        let server = common::Server::start(&data_dir);
        assert_eq!(count_rows(&server).await, 4, "zeros from byte {cut}");
        drop(server);
        assert_eq!(data_end(&std::fs::read(&wal).unwrap()), last_start, "torn bytes dropped");
        std::fs::write(&wal, &full).unwrap();
    }
    let server = common::Server::start(&data_dir);
    assert_eq!(count_rows(&server).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_in_the_middle_stops_the_start() {
    let data_dir = common::fresh_data_dir("wal-corruption");
    let sizes = write_commits(&data_dir, 5).await;
    let wal = wal_files(&data_dir).pop().unwrap();
    let full = std::fs::read(&wal).unwrap();
    // Flip bytes throughout the second commit's record; later records are intact.
    let (start, end) = (sizes[0], sizes[1]);
    for position in (start..end).step_by(((end - start) / 10).max(1)) {
        let mut damaged = full.clone();
        damaged[position] ^= 0x5a;
        std::fs::write(&wal, &damaged).unwrap();
        let error = match common::Server::try_start(&data_dir) {
            Ok(_) => panic!("server started on a WAL corrupted at byte {position}"),
            Err(log) => log,
        };
        let file_name = wal.file_name().unwrap().to_string_lossy().to_string();
        assert!(error.contains(&file_name), "error names the file: {error}");
        assert!(error.contains(&format!("byte {start}")), "error names the record position {start}: {error}");
        assert_eq!(std::fs::read(&wal).unwrap(), damaged, "a corrupt log is left as it was");
    }
    std::fs::write(&wal, &full).unwrap();
    let server = common::Server::start(&data_dir);
    assert_eq!(count_rows(&server).await, 5);
}
