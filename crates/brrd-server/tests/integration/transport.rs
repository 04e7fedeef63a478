//! Transport: TLS versions, security headers, redirect listener, ops listener, error envelope.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{backends, start_server};

#[tokio::test]
async fn headers_errors_and_listeners() {
    let backend = backends().remove(0);
    let t = start_server(&backend, |c| c.max_body_bytes = 4096).await;
    let resp = t
        .client
        .get(format!("{}/api/v1/sites", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert!(
        h["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(h.get("server").is_none(), "no server banner");
    // Errors also carry the headers and the JSON envelope.
    let resp = t
        .client
        .get(format!("{}/nope", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().contains_key("strict-transport-security"));
    let b: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["code"], "not_found");

    // Malformed input is 4xx with the envelope, never 500.
    let raw = |body: &'static str| {
        t.client
            .post(format!("{}/api/v1/auth/register", t.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        "{",
        "[]",
        r#"{"email":"a@b.example"}"#,
        r#"{"email":"a@b.example","password":"x","display_name":"y","evil":1}"#,
    ] {
        let resp = raw(body).await.unwrap();
        assert!(resp.status().is_client_error(), "{body}: {}", resp.status());
        let b: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(b["error"]["code"], "request.invalid", "{body}");
    }
    let big = "x".repeat(10_000);
    let resp = t
        .client
        .post(format!("{}/api/v1/auth/password-reset", t.base))
        .json(&json!({"email": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let admin = {
        t.register_company("ada@a.example", "A", "US-LAX").await;
        t.login("ada@a.example").await
    };
    let (s, b) = t
        .call(
            Method::GET,
            "/api/v1/companies/not-a-uuid",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("request.invalid"))
    );
    let (s, _) = t
        .call(Method::GET, "/api/v1/audit?limit=abc", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .call(
            Method::GET,
            "/api/v1/audit?limit=100000",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .call(Method::GET, "/api/v1/me", Some("garbage.token.here"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The plain listener only redirects.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let addr = t.running.redirect_addr.unwrap();
    let resp = plain
        .get(format!("http://localhost:{}/api/v1/me?x=1", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        resp.headers()["location"],
        format!(
            "https://localhost:{}/api/v1/me?x=1",
            t.running.https_addr.port()
        )
        .as_str()
    );
    // Ops listener: health, readiness, metrics.
    let ops = format!("http://{}", t.running.ops_addr);
    assert_eq!(
        plain
            .get(format!("{ops}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        plain
            .get(format!("{ops}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let m = plain
        .get(format!("{ops}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("brrd_http_responses_total{class=\"2xx\"}"),
        "{m}"
    );
    assert!(
        m.contains("brrd_logins_total{outcome=\"success\"} 2"),
        "{m}"
    );
    // The API is not served on the ops listener, nor the ops endpoints on HTTPS.
    assert_eq!(
        plain
            .get(format!("{ops}/api/v1/sites"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.client
            .get(format!("{}/metrics", t.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // The served OpenAPI document is the committed one.
    let (s, doc) = t
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/auth/login"].is_object());
    t.running.shutdown().await;
}

/// Runs Python's ssl module (a real OpenSSL client that can still offer old versions) against the
/// server with a given maximum protocol version and returns its output.
fn python_handshake(port: u16, version: &str) -> Option<String> {
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    ctx.set_ciphers("ALL:@SECLEVEL=0")
except ssl.SSLError:
    pass
ctx.minimum_version = ssl.TLSVersion.{version} if "{version}" != "TLSv1_2" else ssl.TLSVersion.TLSv1_2
ctx.maximum_version = ssl.TLSVersion.{version}
try:
    with socket.create_connection(("127.0.0.1", {port}), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            print("CONNECTED", t.version(), t.cipher()[0])
except Exception as e:
    print("REFUSED", type(e).__name__, e)
"#
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !out.status.success() && out.stdout.is_empty() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_tls_versions_are_refused() {
    let backend = backends().remove(0);
    let t = start_server(&backend, |_| {}).await;
    let port = t.running.https_addr.port();
    let Some(ok) = python_handshake(port, "TLSv1_2") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is needed for the TLS version test in CI"
        );
        eprintln!("notice: python3 missing, skipping the TLS version test");
        return;
    };
    assert!(
        ok.starts_with("CONNECTED TLSv1.2 ECDHE-"),
        "TLS 1.2 with ECDHE must work: {ok}"
    );
    let ok13 = python_handshake(port, "TLSv1_3").unwrap();
    assert!(ok13.starts_with("CONNECTED TLSv1.3"), "{ok13}");
    for old in ["TLSv1", "TLSv1_1"] {
        let out = python_handshake(port, old).unwrap();
        assert!(out.starts_with("REFUSED"), "{old} must be refused: {out}");
        // An alert sent by the server (protocol_version or handshake_failure), not a client that
        // could not even offer the version.
        assert!(
            out.to_uppercase().contains("ALERT"),
            "{old}: expected an alert from the server, got {out}"
        );
    }
    t.running.shutdown().await;
}
