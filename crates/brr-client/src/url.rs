//! [`ServerUrl`]: a normalised server address, the key of the credentials store.

use crate::ClientError;

/// `https://HOST[:PORT]` (lower-case scheme and host, no path, no trailing slash). Plain `http://` is
/// accepted only for loopback hosts (`localhost`, `127.0.0.1`, `[::1]`), where nothing crosses a
/// network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerUrl(String);

impl ServerUrl {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<ServerUrl, ClientError> {
        let bad = |reason: &str| ClientError::InvalidUrl {
            url: without_userinfo(s),
            reason: reason.to_owned(),
        };
        let trimmed = s.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(trimmed)
            .map_err(|e| bad(&format!("{e}; expected https://HOST[:PORT]")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host; expected https://HOST[:PORT]"))?
            .to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in the URL; use brr login"));
        }
        if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
            return Err(bad("give only https://HOST[:PORT], without a path"));
        }
        let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(bad("plain http is refused: use https://")),
            other => return Err(bad(&format!("unknown scheme {other:?}: use https://"))),
        }
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(ServerUrl(format!("{}://{host}{port}", url.scheme())))
    }

    /// The URL as a string, e.g. `https://backup.example.net:8443`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `s` with anything between `://` and an `@` of the authority replaced, so a password typed into a URL
/// never reaches a message.
fn without_userinfo(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => s.to_owned(),
    }
}

/// Checks a repository name on the server: `[a-z0-9][a-z0-9-]{0,62}`.
pub fn validate_repo_name(name: &str) -> Result<(), ClientError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ClientError::InvalidRepoName {
            name: name.chars().take(80).flat_map(char::escape_debug).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        for (given, want) in [
            ("https://Backup.Example.NET/", "https://backup.example.net"),
            ("https://h:8443", "https://h:8443"),
            ("https://h:443", "https://h"),
            ("  https://h// ", "https://h"),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
            ("http://localhost:1", "http://localhost:1"),
            ("https://[::1]:8443", "https://[::1]:8443"),
        ] {
            assert_eq!(ServerUrl::parse(given).unwrap().as_str(), want, "{given}");
        }
    }

    #[test]
    fn refuses() {
        for bad in [
            "",
            "backup.example.net",
            "http://backup.example.net",
            "ftp://h",
            "https://user:pw@h",
            "https://h/api/v1",
            "https://h/?x=1",
        ] {
            let e = ServerUrl::parse(bad).unwrap_err();
            assert_eq!(e.code(), "BRR-N001", "{bad}");
            assert_eq!(e.exit_code(), 2);
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }

    #[test]
    fn repo_names() {
        for good in ["a", "docs", "db-1", &"a".repeat(63)] {
            assert!(validate_repo_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a/b", "..", &"a".repeat(64)] {
            assert!(validate_repo_name(bad).is_err(), "{bad}");
        }
    }
}
