//! What only an object store does: an S3 endpoint that does not answer is a retryable `503`, and a
//! repository whose store could not be created is not recorded; the repository-store tests themselves
//! run on S3 through `common::store_setups`.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Store, backends, s3_store, start_server};

#[tokio::test]
async fn an_unreachable_s3_store_answers_503_and_records_nothing() {
    // Needs the AWS_* credentials the S3 runs use (brrd refuses an S3 store without them).
    let Some(Store::S3(_)) = s3_store() else {
        return;
    };
    for db in backends() {
        // Port 1 on the loopback: nothing listens, the connection is refused at once.
        let t = start_server(&db, |c| {
            c.store.url = Some("s3:http://127.0.0.1:1/brr-test/unreachable".into());
        })
        .await;
        t.register_company("admin@a.example", "Company a", "DE-FRA")
            .await;
        let admin = t.login("admin@a.example").await;
        // Creating a repository creates it in the store first: refused as retryable, nothing recorded.
        let (s, e) = t
            .post("/api/v1/repos", Some(&admin), json!({"name": "main"}))
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
        assert_eq!(e["error"]["code"], "store_unavailable", "{e}");
        assert!(
            !e.to_string().contains("127.0.0.1"),
            "the store location leaked: {e}"
        );
        let (s, list) = t.get("/api/v1/repos", &admin).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list, json!([]), "a repository without a store was recorded");
        // The name is free again: a retry meets the store again (503), not a name conflict (409).
        let (s, e) = t
            .post("/api/v1/repos", Some(&admin), json!({"name": "main"}))
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
        t.running.shutdown().await;
    }
}
