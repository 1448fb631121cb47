//! Several replicas on one database: migrations started at once by every replica, and the
//! readiness check (`/readyz`) that says whether the database answers and is migrated.

use exogate_store::{PoolSettings, Readiness};

use crate::support::*;

/// Migration versions this build knows (the same for both backends).
fn known_migrations() -> usize {
    Db::migration_versions().1.len()
}

async fn applied(db: &Db) -> i64 {
    let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
    let (n,): (i64,) = match db {
        Db::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await,
        Db::Postgres(p) => sqlx::query_as(sql).fetch_one(p).await,
    }
    .expect("count migrations");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_migrating_one_fresh_postgres_database_at_once_all_succeed() {
    let Some((admin_url, name, url)) = empty_postgres().await else {
        return;
    };

    // Three replicas, each with its own pool, start on the empty database together.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            Db::connect_pool(&url, &PoolSettings::default())
                .await
                .expect("connect"),
        );
    }
    assert_eq!(
        replicas[0].readiness().await,
        Readiness::MigrationsPending {
            missing: known_migrations()
        },
        "an empty database is not ready"
    );
    let results =
        futures::future::join_all(replicas.iter().map(|db| async move { db.migrate().await }))
            .await;
    for r in &results {
        assert!(r.is_ok(), "every replica's migration succeeds: {r:?}");
    }
    // One set of migrations, applied once each; every replica sees a ready database.
    assert_eq!(applied(&replicas[0]).await, known_migrations() as i64);
    for db in &replicas {
        assert_eq!(db.readiness().await, Readiness::Ready);
    }

    // A migration missing (a replica of a newer build migrated, or an old backup restored):
    // not ready.
    exec(
        &replicas[0],
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)"
            .to_owned(),
    )
    .await;
    assert_eq!(
        replicas[1].readiness().await,
        Readiness::MigrationsPending { missing: 1 }
    );

    for db in &replicas {
        db.close().await;
    }
    drop_pg(&admin_url, &name).await;
}

#[tokio::test]
async fn sqlite_is_ready_once_migrated_and_unreachable_once_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("exogate.db").display());
    let db = Db::connect(&url).await.expect("open");
    assert_eq!(
        db.readiness().await,
        Readiness::MigrationsPending {
            missing: known_migrations()
        }
    );
    db.migrate().await.expect("migrate");
    db.migrate().await.expect("migrating twice changes nothing");
    assert_eq!(db.readiness().await, Readiness::Ready);
    db.close().await;
    assert!(matches!(db.readiness().await, Readiness::Unreachable(_)));
}
