//! The embedding API: open a database on a directory, run SQL, get Arrow
//! batches; and Strata's relations inside an application's own DataFusion
//! `SessionContext`, including sealed segments.

use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use strata::{Config, Database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_database_and_foreign_session_context() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("embedding-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Database::open(Config::default().with_data_dir(&dir)).await.unwrap();
    db.execute("CREATE STREAM readings (sensor BIGINT NOT NULL, value DOUBLE PRECISION)").await.unwrap();
    db.execute("INSERT INTO readings VALUES (1, 0.5), (2, 1.5)").await.unwrap();
    db.checkpoint().await.unwrap();
    db.execute("INSERT INTO readings VALUES (3, 2.5)").await.unwrap();

    // The sum of BIGINTs is NUMERIC, as in PostgreSQL: Decimal128 with no places.
    let batches = db.execute("SELECT sum(sensor) AS total FROM readings").await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<datafusion::arrow::datatypes::Decimal128Type>().value(0), 6);
    // Columns are named as a PostgreSQL client would see them, twice if need be.
    let batches = db.execute("SELECT sensor, * FROM readings WHERE sensor = 1").await.unwrap();
    let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["sensor", "sensor", "value"]);

    // The same relations from an application's own context: segment + tail.
    let context = SessionContext::new();
    db.register_catalog(&context, "events_db").unwrap();
    let batches = context
        .sql("SELECT sensor, _offset FROM events_db.public.readings ORDER BY sensor")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let sensors: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    assert_eq!(sensors, vec![1, 2, 3]);
    let offsets = batches[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    assert!(offsets.value(0) > 0);

    // Pinned, the context keeps reading as of one offset while commits go on.
    let pinned = db.pin_reads(&context);
    db.execute("INSERT INTO readings VALUES (4, 3.5)").await.unwrap();
    let count = |context: SessionContext| async move {
        let batches =
            context.sql("SELECT count(*) FROM events_db.public.readings").await.unwrap().collect().await.unwrap();
        batches[0].column(0).as_primitive::<Int64Type>().value(0)
    };
    assert_eq!(count(context.clone()).await, 3, "pinned at offset {pinned:?}");
    db.pin_reads(&context);
    assert_eq!(count(context.clone()).await, 4);
    db.shutdown().await;

    // Reopened: everything is still there.
    let db = Database::open(Config::default().with_data_dir(&dir)).await.unwrap();
    let batches = db.execute("SELECT count(*) FROM readings").await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 4);
    db.shutdown().await;
}
