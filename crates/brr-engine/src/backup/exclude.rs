//! Exclude patterns.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{EngineError, Result};

/// Compiled exclude patterns: a pattern with a `/` matches the whole absolute path (`/home/*/.cache`),
/// one without matches any single name (`*.tmp`, `node_modules`).
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    by_name: Option<GlobSet>,
    by_path: Option<GlobSet>,
}

impl Excludes {
    /// Compiles patterns; a bad pattern is an error naming it.
    pub fn new(patterns: &[String]) -> Result<Self> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let (mut any_name, mut any_path) = (false, false);
        for p in patterns {
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                return Err(EngineError::invalid("exclude pattern", "empty pattern"));
            }
            let bad =
                |e: globset::Error| EngineError::invalid("exclude pattern", format!("{p:?}: {e}"));
            if p.contains('/') {
                paths.add(
                    GlobBuilder::new(p)
                        .literal_separator(true)
                        .build()
                        .map_err(bad)?,
                );
                any_path = true;
            } else {
                names.add(Glob::new(p).map_err(bad)?);
                any_name = true;
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| EngineError::invalid("exclude pattern", e.to_string()))
        };
        Ok(Excludes {
            by_name: if any_name { Some(build(names)?) } else { None },
            by_path: if any_path { Some(build(paths)?) } else { None },
        })
    }

    /// Whether `path` (with last component `name`) is excluded.
    pub fn is_excluded(&self, path: &Path, name: &[u8]) -> bool {
        if let Some(set) = &self.by_name
            && set.is_match(Path::new(std::ffi::OsStr::from_bytes(name)))
        {
            return true;
        }
        self.by_path.as_ref().is_some_and(|set| set.is_match(path))
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
