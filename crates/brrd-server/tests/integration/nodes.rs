//! Several brrd nodes on one PostgreSQL database: the repository's sweep exclusion (snapshot checks
//! against GC sweeps, docs/server-repositories.md §4) holds across nodes, not only within one.

use std::time::Duration;

use crate::common::{Backend, backends, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_exclusion_spans_nodes_sharing_a_database() {
    for backend in backends() {
        if !matches!(backend, Backend::Postgres(_)) {
            continue; // SQLite is one node's file: the in-process exclusion is the whole story there.
        }
        let a = start_server(&backend, |_| {}).await;
        let shared = a.database_url.clone();
        let b = start_server(&backend, move |c| c.database = Some(shared)).await;

        let held = a.running.service.sweep_exclusion("repo-one").await.unwrap();
        let node_b = b.running.service.clone();
        let mut waiter =
            tokio::spawn(async move { node_b.sweep_exclusion("repo-one").await.map(drop) });

        // Another repository is not held up by it.
        let other = tokio::time::timeout(
            Duration::from_secs(30),
            b.running.service.sweep_exclusion("repo-two"),
        )
        .await
        .expect("node B waited for a different repository's exclusion")
        .unwrap();
        drop(other);

        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut waiter)
                .await
                .is_err(),
            "node B took repo-one's exclusion while node A held it"
        );
        drop(held);
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("node B never got the exclusion after node A released it")
            .unwrap()
            .unwrap();

        // Released on drop again: node A can take it once more.
        let again = tokio::time::timeout(
            Duration::from_secs(30),
            a.running.service.sweep_exclusion("repo-one"),
        )
        .await
        .expect("the exclusion was not released by node B's guard")
        .unwrap();
        drop(again);
    }
}
