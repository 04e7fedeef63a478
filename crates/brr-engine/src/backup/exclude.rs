//! Exclude patterns.

use std::path::Path;

use crate::error::{EngineError, Result};
use crate::globs::NameOrPathGlobs;

/// Compiled exclude patterns: a pattern with a `/` matches the whole absolute path (`/home/*/.cache`),
/// one without matches any single name (`*.tmp`, `node_modules`).
#[derive(Debug, Clone, Default)]
pub struct Excludes(NameOrPathGlobs);

impl Excludes {
    /// Compiles patterns; a bad pattern is an error naming it.
    pub fn new(patterns: &[String]) -> Result<Self> {
        let mut trimmed = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                return Err(EngineError::invalid("exclude pattern", "empty pattern"));
            }
            trimmed.push(p);
        }
        Ok(Excludes(NameOrPathGlobs::new(&trimmed, "exclude pattern")?))
    }

    /// Whether `path` (with last component `name`) is excluded.
    pub fn is_excluded(&self, path: &Path, name: &[u8]) -> bool {
        self.0.matches(path, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let e = Excludes::new(&["*.tmp".into(), "/home/*/.cache".into()]).unwrap();
        assert!(e.is_excluded(Path::new("/a/b.tmp"), b"b.tmp"));
        assert!(!e.is_excluded(Path::new("/a/b.txt"), b"b.txt"));
        assert!(e.is_excluded(Path::new("/home/me/.cache"), b".cache"));
        assert!(!e.is_excluded(Path::new("/home/me/x/.cache"), b".cache"));
        assert!(Excludes::new(&["[".into()]).is_err());
        assert!(Excludes::new(&["".into()]).is_err());
    }
}
