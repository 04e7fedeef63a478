//! [`LocalBackend`]: a repository in a folder, with plain `std::fs`.
//!
//! Writes go to a temporary file `.<name>.<pid>-<counter>.tmp` in the file's own folder, which is
//! written, `fsync`ed, renamed over the final name and followed by an `fsync` of the folder. A crash leaves
//! at most the temporary file behind; its name starts with `.`, which no valid repository file name does,
//! so [`Backend::list`] skips it and it can never be mistaken for data. [`LocalBackend::remove_temp_files`]
//! deletes such leftovers when no writer can be active.
//!
//! Files of 1 MiB or more (packs) are written past the page cache with `O_DIRECT` where the filesystem
//! allows it (see `direct_write`): a backup writes its repository once and rarely reads it back soon.
//!
//! On Unix, folders are created with mode `0o700` and files with `0o600` (further narrowed by the umask):
//! a repository holds encrypted backups, but its file names and sizes are still nobody else's business.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{
    Backend, CONFIG_NAME, FileInfo, FileKind, StorageError, direct_write, pack_fanout_folders,
    relative_path,
};

/// Counter that makes temporary file names unique within the process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A repository in a local folder. Cheap to share between threads; holds no open files.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// A backend for the repository in folder `path`. Does no I/O: call [`Backend::create`] to set up a
    /// new repository.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalBackend { root: path.into() }
    }

    /// The repository folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, kind: FileKind, name: &str) -> Result<PathBuf, StorageError> {
        let rel = relative_path(kind, name)?;
        Ok(rel
            .split('/')
            .fold(self.root.clone(), |p, part| p.join(part)))
    }

    fn kind_folder(&self, kind: FileKind) -> PathBuf {
        match kind.folder() {
            Some(folder) => self.root.join(folder),
            None => self.root.clone(),
        }
    }

    /// Delete leftover temporary files (names starting with `.`) of interrupted writes, in every folder.
    /// Returns how many were removed.
    ///
    /// Only call this while no other process or thread writes to the repository (for example under the
    /// repository's exclusive lock): it would delete the temporary file of a write in progress, which then
    /// fails. Leftovers are harmless otherwise; they only take space.
    pub fn remove_temp_files(&self) -> Result<usize, StorageError> {
        let mut folders = vec![self.root.clone()];
        for kind in FileKind::FOLDERS {
            let folder = self.kind_folder(kind);
            if kind == FileKind::Pack {
                for entry in read_dir_if_exists(&folder)? {
                    let entry = entry.map_err(|e| StorageError::io("list", &folder, e))?;
                    if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        folders.push(entry.path());
                    }
                }
            }
            folders.push(folder);
        }
        let mut removed = 0;
        for folder in folders {
            for entry in read_dir_if_exists(&folder)? {
                let entry = entry.map_err(|e| StorageError::io("list", &folder, e))?;
                let is_temp = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with('.'));
                let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
                if is_temp && is_file {
                    let path = entry.path();
                    match fs::remove_file(&path) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StorageError::io("remove temporary file", &path, e)),
                    }
                }
            }
        }
        Ok(removed)
    }

    fn list_folder(
        &self,
        kind: FileKind,
        folder: &Path,
        out: &mut Vec<FileInfo>,
    ) -> Result<(), StorageError> {
        for entry in read_dir_if_exists(folder)? {
            let entry = entry.map_err(|e| StorageError::io("list", folder, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // Temporary files and anything else that is not a valid name of this kind are not repository
            // files; a pack must also sit in the folder its name says.
            if crate::validate_name(kind, &name).is_err() {
                continue;
            }
            if kind == FileKind::Pack
                && folder.file_name().and_then(|f| f.to_str()) != Some(&name[..2])
            {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Removed between listing and stat: it is gone, so it is not listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io("stat", &entry.path(), e)),
            };
            if meta.is_file() {
                out.push(FileInfo {
                    name,
                    size: meta.len(),
                });
            }
        }
        Ok(())
    }

    fn open_for_read(&self, kind: FileKind, name: &str) -> Result<(File, PathBuf), StorageError> {
        let path = self.path(kind, name)?;
        match File::open(&path) {
            Ok(file) => Ok((file, path)),
            Err(e) => Err(not_found_or(kind, name, "open", &path, e)),
        }
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<(), StorageError> {
        let config = self.root.join(CONFIG_NAME);
        match fs::symlink_metadata(&config) {
            Ok(_) => {
                return Err(StorageError::AlreadyExists {
                    location: self.location(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("check", &config, e)),
        }
        create_dir_all(&self.root)?;
        for kind in FileKind::FOLDERS {
            let folder = self.kind_folder(kind);
            create_dir(&folder)?;
            if kind == FileKind::Pack {
                for sub in pack_fanout_folders() {
                    create_dir(&folder.join(sub))?;
                }
                sync_dir(&folder)?;
            }
        }
        sync_dir(&self.root)?;
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path(kind, name)?;
        fs::read(&path).map_err(|e| not_found_or(kind, name, "read", &path, e))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StorageError> {
        let (file, path) = self.open_for_read(kind, name)?;
        let size = file
            .metadata()
            .map_err(|e| StorageError::io("stat", &path, e))?
            .len();
        let short = |size: u64| StorageError::ShortRead {
            kind,
            name: name.to_owned(),
            expected: len,
            got: size.saturating_sub(offset).min(len),
        };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(short(size));
        }
        let buf_len = usize::try_from(len).map_err(|_| short(size))?;
        let mut buf = vec![0u8; buf_len];
        match read_exact_at(&file, &mut buf, offset) {
            Ok(()) => Ok(buf),
            // The file shrank after the size check (it is overwritten by rename, so this is rare).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(short(0)),
            Err(e) => Err(StorageError::io("read", &path, e)),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        let path = self.path(kind, name)?;
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(meta.len()),
            Ok(_) => Err(StorageError::NotFound {
                kind,
                name: name.to_owned(),
            }),
            Err(e) => Err(not_found_or(kind, name, "stat", &path, e)),
        }
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path(kind, name)?;
        let Some(folder) = path.parent() else {
            return Err(StorageError::InvalidName {
                name: name.to_owned(),
            });
        };
        let temp = folder.join(format!(
            ".{name}.{}-{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = match create_new_file(&temp) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The folder is missing (a pack fan-out folder, or a repository not made by `create`).
                create_dir_all(folder)?;
                create_new_file(&temp).map_err(|e| StorageError::io("create", &temp, e))?
            }
            Err(e) => return Err(StorageError::io("create", &temp, e)),
        };
        let result = (|| {
            direct_write::write_all(&mut file, data)
                .map_err(|e| StorageError::io("write", &temp, e))?;
            file.sync_all()
                .map_err(|e| StorageError::io("sync", &temp, e))?;
            drop(file);
            fs::rename(&temp, &path).map_err(|e| StorageError::io("rename into place", &path, e))
        })();
        if let Err(e) = result {
            // Best effort: the leftover is harmless (ignored by `list`), so a failure here is not reported.
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        sync_dir(folder)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, StorageError> {
        let mut out = Vec::new();
        match kind {
            FileKind::Config => match fs::metadata(self.root.join(CONFIG_NAME)) {
                Ok(meta) if meta.is_file() => out.push(FileInfo {
                    name: CONFIG_NAME.to_owned(),
                    size: meta.len(),
                }),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("stat", &self.root.join(CONFIG_NAME), e)),
            },
            FileKind::Pack => {
                let data = self.kind_folder(kind);
                for entry in read_dir_if_exists(&data)? {
                    let entry = entry.map_err(|e| StorageError::io("list", &data, e))?;
                    let is_fanout = entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
                        && entry.file_name().len() == 2;
                    if is_fanout {
                        self.list_folder(kind, &entry.path(), &mut out)?;
                    }
                }
            }
            _ => self.list_folder(kind, &self.kind_folder(kind), &mut out)?,
        }
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), StorageError> {
        let path = self.path(kind, name)?;
        fs::remove_file(&path).map_err(|e| not_found_or(kind, name, "remove", &path, e))?;
        match path.parent() {
            Some(folder) => sync_dir(folder),
            None => Ok(()),
        }
    }
}

fn not_found_or(
    kind: FileKind,
    name: &str,
    op: &'static str,
    path: &Path,
    e: io::Error,
) -> StorageError {
    // `NotADirectory` (a file where a folder should be) also means the file is not there.
    if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory {
        StorageError::NotFound {
            kind,
            name: name.to_owned(),
        }
    } else {
        StorageError::io(op, path, e)
    }
}

fn read_dir_if_exists(folder: &Path) -> Result<Vec<io::Result<fs::DirEntry>>, StorageError> {
    match fs::read_dir(folder) {
        Ok(entries) => Ok(entries.collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io("list", folder, e)),
    }
}

fn create_new_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn dir_builder() -> fs::DirBuilder {
    #[allow(unused_mut)]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
}

/// Create one folder (its parent must exist); an existing folder is fine.
fn create_dir(path: &Path) -> Result<(), StorageError> {
    match dir_builder().create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(StorageError::io("create folder", path, e)),
    }
}

/// Create a folder and its missing parents, and make the new entries durable.
fn create_dir_all(path: &Path) -> Result<(), StorageError> {
    if path.is_dir() {
        return Ok(());
    }
    dir_builder()
        .recursive(true)
        .create(path)
        .map_err(|e| StorageError::io("create folder", path, e))?;
    // The new folder's entry lives in its parent: sync that so the folder survives a crash.
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// `fsync` a folder so that renames, creations and deletions in it are durable.
fn sync_dir(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        File::open(path)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| StorageError::io("sync folder", path, e))
    }
    #[cfg(not(unix))]
    {
        // Other systems cannot open folders for syncing; their file systems order renames themselves.
        let _ = path;
        Ok(())
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, LocalBackend) {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("repo"));
        backend.create().unwrap();
        (dir, backend)
    }

    #[test]
    fn leftover_temp_file_is_ignored_and_cleaned() {
        let (_dir, b) = repo();
        b.write(FileKind::Pack, "abcd", b"pack").unwrap();
        b.write(FileKind::Index, "i1", b"index").unwrap();
        // What a crash between creating and renaming the temporary file leaves behind.
        let leftovers = [
            b.root().join("data/ab/.abcd.1-1.tmp"),
            b.root().join("data/ab/.abce.1-2.tmp"),
            b.root().join("index/.i2.1-3.tmp"),
            b.root().join(".config.1-4.tmp"),
        ];
        for p in &leftovers {
            fs::write(p, b"partial").unwrap();
        }
        let names =
            |kind| -> Vec<String> { b.list(kind).unwrap().into_iter().map(|f| f.name).collect() };
        assert_eq!(names(FileKind::Pack), ["abcd"]);
        assert_eq!(names(FileKind::Index), ["i1"]);
        assert!(names(FileKind::Config).is_empty());
        assert_eq!(b.read(FileKind::Pack, "abcd").unwrap(), b"pack");
        // Overwriting works despite the stale temporary file of the same name.
        b.write(FileKind::Pack, "abcd", b"pack2").unwrap();
        assert_eq!(b.read(FileKind::Pack, "abcd").unwrap(), b"pack2");

        assert_eq!(b.remove_temp_files().unwrap(), leftovers.len());
        for p in &leftovers {
            assert!(!p.exists(), "{}", p.display());
        }
        assert_eq!(names(FileKind::Pack), ["abcd"]);
        assert_eq!(b.remove_temp_files().unwrap(), 0);
    }

    #[test]
    fn write_leaves_no_temp_file() {
        let (_dir, b) = repo();
        b.write(FileKind::Snapshot, "s1", b"one").unwrap();
        b.write(FileKind::Snapshot, "s1", b"two").unwrap();
        let entries: Vec<String> = fs::read_dir(b.root().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(entries, ["s1"]);
    }

    #[test]
    fn files_in_wrong_places_are_not_listed() {
        let (_dir, b) = repo();
        fs::write(b.root().join("data/ab/cdef"), b"misplaced").unwrap();
        fs::write(b.root().join("data/stray"), b"not in a fan-out folder").unwrap();
        fs::write(b.root().join("keys/UPPER"), b"invalid name").unwrap();
        fs::create_dir(b.root().join("keys/subdir")).unwrap();
        assert!(b.list(FileKind::Pack).unwrap().is_empty());
        assert!(b.list(FileKind::Key).unwrap().is_empty());
    }

    #[test]
    fn missing_folders_are_created_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("not-created"));
        b.write(FileKind::Pack, "ff00", b"x").unwrap();
        assert_eq!(b.read(FileKind::Pack, "ff00").unwrap(), b"x");
        assert!(b.list(FileKind::Index).unwrap().is_empty());
    }

    #[test]
    fn create_makes_all_folders() {
        let (_dir, b) = repo();
        for folder in [
            "keys",
            "index",
            "snapshots",
            "locks",
            "gc",
            "data/00",
            "data/7f",
            "data/ff",
        ] {
            assert!(b.root().join(folder).is_dir(), "{folder}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, b) = repo();
        b.write(FileKind::Key, "k1", b"secret").unwrap();
        b.write(FileKind::Pack, "0123", b"data").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&b.root().join("keys/k1")) & 0o077, 0);
        assert_eq!(mode(&b.root().join("data/01/0123")) & 0o077, 0);
        assert_eq!(mode(b.root()) & 0o077, 0);
        assert_eq!(mode(&b.root().join("data/01")) & 0o077, 0);
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // The "repository" is a regular file, so nothing below it can be created.
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        let b = LocalBackend::new(&file);
        let err = b.write(FileKind::Key, "k", b"x").unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        assert!(b.read(FileKind::Key, "k").unwrap_err().is_not_found());
    }
}
