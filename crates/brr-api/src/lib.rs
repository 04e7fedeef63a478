//! Request and response types of the `brrd` HTTP API (`/api/v1`), shared by the `brr` client and the
//! `brrd` server.
//!
//! This crate is a leaf: serde types and their OpenAPI schemas, no HTTP and no I/O. Every request type
//! rejects unknown fields, so a typo in a client is a `400`, never a silently ignored setting.
//!
//! ```
//! let body = r#"{"email":"ana@example.com","password":"x"}"#;
//! let req: brr_api::auth::LoginRequest = serde_json::from_str(body).unwrap();
//! assert_eq!(req.email, "ana@example.com");
//! assert!(serde_json::from_str::<brr_api::auth::LoginRequest>(r#"{"email":"a","password":"b","x":1}"#).is_err());
//! ```

pub mod audit;
pub mod auth;
pub mod error;
pub mod identity;
pub mod maintenance;
pub mod repos;
pub mod sites;

pub use error::{ApiError, ErrorBody};

/// The version prefix every API path starts with.
pub const API_PREFIX: &str = "/api/v1";
