//! Glob patterns that match either a single name or a whole path, shared by backup excludes and
//! restore includes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{EngineError, Result};

/// Compiled patterns: one with a `/` matches the whole path (`*` stays within one component), one
/// without matches any single name (`*.tmp`, `node_modules`).
#[derive(Debug, Clone, Default)]
pub(crate) struct NameOrPathGlobs {
    by_name: Option<GlobSet>,
    by_path: Option<GlobSet>,
}

impl NameOrPathGlobs {
    /// Compiles non-empty, already trimmed patterns; a bad one is an error naming it, as a `what`
    /// (e.g. "exclude pattern").
    pub(crate) fn new(patterns: &[&str], what: &'static str) -> Result<Self> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let (mut any_name, mut any_path) = (false, false);
        for p in patterns {
            let bad = |e: globset::Error| EngineError::invalid(what, format!("{p:?}: {e}"));
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
                .map_err(|e| EngineError::invalid(what, e.to_string()))
        };
        Ok(NameOrPathGlobs {
            by_name: if any_name { Some(build(names)?) } else { None },
            by_path: if any_path { Some(build(paths)?) } else { None },
        })
    }

    /// Whether there are no patterns at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_none() && self.by_path.is_none()
    }

    /// Whether `name` matches a name pattern or `path` a path pattern.
    pub(crate) fn matches(&self, path: &Path, name: &[u8]) -> bool {
        self.by_name
            .as_ref()
            .is_some_and(|s| s.is_match(Path::new(OsStr::from_bytes(name))))
            || self.by_path.as_ref().is_some_and(|s| s.is_match(path))
    }
}
