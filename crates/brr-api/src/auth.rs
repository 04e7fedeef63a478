//! Authentication: login, tokens, registration, PIN verification and password reset.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/login`: e-mail and password (HTTP Basic is accepted instead of a body).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account e-mail address.
    pub email: String,
    /// Account password.
    pub password: String,
    /// Current TOTP code, required once a second factor is enabled (with HTTP Basic: the
    /// `X-Brr-Totp` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
}

/// Tokens returned by login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenResponse {
    /// Short-lived signed JWT (EdDSA) for the `Authorization: Bearer` header.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// Opaque refresh token; rotates on every use.
    pub refresh_token: String,
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token last issued.
    pub refresh_token: String,
}

/// `POST /auth/register`: sign-up for an invitation or, when open registration is enabled, a new company.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// E-mail address to prove.
    pub email: String,
    /// Password (checked against the policy).
    pub password: String,
    /// Name shown in the directory.
    pub display_name: String,
    /// For open registration only: the new company's name.
    #[serde(default)]
    pub company_name: Option<String>,
    /// For open registration only: the new company's home site code (e.g. `DE-FRA`).
    #[serde(default)]
    pub site: Option<String>,
}

/// `POST /auth/register/verify`: the 6-digit PIN mailed to the address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPinRequest {
    /// The address the PIN was sent to.
    pub email: String,
    /// The 6-digit PIN.
    pub pin: String,
}

/// `POST /auth/password-reset`: ask for a PIN.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The account's e-mail address.
    pub email: String,
}

/// `POST /auth/password-reset/confirm`: PIN and new password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The account's e-mail address.
    pub email: String,
    /// The 6-digit PIN from the e-mail.
    pub pin: String,
    /// The new password.
    pub new_password: String,
}

/// `POST /auth/setup`: the bootstrap administrator sets a password with the one-time setup code.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The address given to `brrd admin bootstrap`.
    pub email: String,
    /// The setup code printed by `brrd admin bootstrap`.
    pub code: String,
    /// The administrator's password.
    pub password: String,
}

/// `PUT /me/password`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

/// A neutral acknowledgement (used where details would enable enumeration).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// Human-readable status.
    pub message: String,
}

/// `POST /me/totp`: a new, not yet enabled, TOTP secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrollment {
    /// The secret, base32 (for manual entry).
    pub secret: String,
    /// `otpauth://` URI (for a QR code).
    pub otpauth_uri: String,
}

/// `POST /me/totp/confirm` and `POST /me/totp/disable`: a current code.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// The 6-digit code shown by the authenticator.
    pub code: String,
}
