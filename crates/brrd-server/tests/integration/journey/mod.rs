//! Sign-up → PIN → login → refresh → logout, lockout, password reset, disabling, API keys, TOTP.

mod accounts;
mod login;
mod totp;
