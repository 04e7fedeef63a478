//! Input validation: password policy, e-mail addresses, names and site codes.
//!
//! Pure functions, property-tested in `tests/` and below.

use crate::error::{Error, Result};

/// Frequently used and breached passwords (lower-case), rejected whatever their composition.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty",
    "qwerty123",
    "qwertyuiop",
    "abc123",
    "letmein",
    "welcome",
    "welcome1",
    "welcome123",
    "iloveyou",
    "admin",
    "admin123",
    "administrator",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "trustno1",
    "master",
    "shadow",
    "superman",
    "changeme",
    "secret",
    "summer2024",
    "winter2024",
    "spring2025",
    "autumn2025",
    "summer2025",
    "winter2025",
    "summer2026",
    "winter2026",
    "1q2w3e4r",
    "1qaz2wsx",
    "zaq12wsx",
    "asdfghjkl",
    "letmein123",
    "default",
    "backup",
    "backup123",
];

/// Checks a new password: length, four character classes, not common, not containing the e-mail.
pub fn check_password(password: &str, email: &str, min_len: usize) -> Result<()> {
    let n = password.chars().count();
    if n < min_len {
        return Err(Error::WeakPassword(format!(
            "use at least {min_len} characters"
        )));
    }
    if n > 256 {
        return Err(Error::WeakPassword("use at most 256 characters".into()));
    }
    let lower = password.chars().any(|c| c.is_lowercase());
    let upper = password.chars().any(|c| c.is_uppercase());
    let digit = password.chars().any(|c| c.is_ascii_digit());
    let special = password
        .chars()
        .any(|c| !c.is_alphanumeric() && !c.is_whitespace());
    if !(lower && upper && digit && special) {
        return Err(Error::WeakPassword(
            "use lower-case and upper-case letters, a digit and a special character".into(),
        ));
    }
    let folded = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if folded.contains(&email) || (local.len() >= 3 && folded.contains(local)) {
        return Err(Error::WeakPassword("do not use your e-mail address".into()));
    }
    if is_common(&folded) {
        return Err(Error::WeakPassword("this password is too common".into()));
    }
    Ok(())
}

/// True when the password, stripped of leading/trailing digits and symbols and with common
/// substitutions undone (`@`→a, `0`→o …), is on the list of common passwords.
fn is_common(folded: &str) -> bool {
    let core = folded.trim_matches(|c: char| !c.is_alphabetic() && c != '@' && c != '$');
    let core = core.trim_end_matches(|c: char| !c.is_alphabetic());
    let unleet: String = core
        .chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '3' => 'e',
            '1' | '!' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            c => c,
        })
        .collect();
    [folded, core, unleet.as_str()]
        .iter()
        .any(|c| COMMON.contains(c))
}

/// Normalises and validates an e-mail address (trimmed, lower-cased, one `@`, a dotted domain).
pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let bad = || Error::invalid("invalid e-mail address");
    if e.len() > 254 || e.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    {
        return Err(bad());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(bad());
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    {
        return Err(bad());
    }
    Ok(e)
}

/// Validates a display or company name: 1–100 characters, no control characters.
pub fn check_name(what: &str, name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} must be 1 to 100 characters without control characters"
        )));
    }
    Ok(n.to_string())
}

/// Validates a home site code against the catalogue.
pub fn check_site(code: &str) -> Result<()> {
    if brr_api::sites::is_known_site(code) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "unknown site code; known: {}",
            site_list()
        )))
    }
}

fn site_list() -> String {
    brr_api::sites::CATALOGUE
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn policy_examples() {
        let e = "ana@example.com";
        assert!(check_password("Tr0ub4dor&3xyz", e, 12).is_ok());
        assert!(check_password("Sh0rt!a", e, 12).is_err());
        assert!(check_password("alllowercase1!", e, 12).is_err());
        assert!(check_password("NoDigitsHere!!", e, 12).is_err());
        assert!(check_password("NoSpecials1234", e, 12).is_err());
        assert!(
            check_password("P@ssw0rd123!", e, 8).is_err(),
            "common with suffix"
        );
        assert!(check_password("Password123!", e, 8).is_err());
        assert!(
            check_password("Ana@Example.com1", e, 12).is_err(),
            "contains the e-mail"
        );
        assert!(
            check_password("xx-ANA-Rules-9!", e, 12).is_err(),
            "contains the local part"
        );
    }

    #[test]
    fn email_examples() {
        assert_eq!(
            normalize_email(" Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.c",
            "a@@b.c",
            "a b@c.d",
            "a@-b.c",
            "a..b@c.d",
            "a@b..c",
            "a@b.c\u{0}",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn accepted_passwords_meet_every_rule(p in "\\PC{0,40}") {
            if check_password(&p, "zed@example.org", 12).is_ok() {
                prop_assert!(p.chars().count() >= 12);
                prop_assert!(p.chars().any(|c| c.is_lowercase()));
                prop_assert!(p.chars().any(|c| c.is_uppercase()));
                prop_assert!(p.chars().any(|c| c.is_ascii_digit()));
                prop_assert!(!p.to_lowercase().contains("zed@example.org"));
            }
        }

        #[test]
        fn strong_generated_passwords_pass(a in "[a-z]{4,8}", b in "[A-Z]{4,8}", d in "[0-9]{2,4}", s in "[!#%&*+=?~]{1,3}") {
            let p = format!("{a}{s}{b}{d}");
            prop_assume!(p.len() >= 12);
            // The local part cannot occur in a generated password (it has a hyphen).
            prop_assert!(check_password(&p, "no-such-part@example.org", 12).is_ok());
        }

        #[test]
        fn normalized_emails_are_stable(e in "\\PC{0,60}") {
            if let Ok(n) = normalize_email(&e) {
                prop_assert_eq!(normalize_email(&n).unwrap(), n.clone());
                prop_assert_eq!(n.matches('@').count(), 1);
                prop_assert!(!n.chars().any(|c| c.is_whitespace() || c.is_control()));
            }
        }

        #[test]
        fn only_catalogue_sites_pass(code in "[A-Z0-9-]{0,10}") {
            prop_assert_eq!(check_site(&code).is_ok(), brr_api::sites::CATALOGUE.iter().any(|(c, _)| *c == code));
        }

        #[test]
        fn names_never_keep_control_characters(n in "\\PC{0,120}|[\\x00-\\x1f]{1,3}") {
            if let Ok(v) = check_name("name", &n) {
                prop_assert!(!v.chars().any(char::is_control));
                prop_assert!(!v.is_empty() && v.chars().count() <= 100);
            }
        }
    }
}
