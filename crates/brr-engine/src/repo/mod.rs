//! An open repository: backend, config and master key; reading blobs, trees and snapshots; key slots.

mod snapshots;

use std::sync::Arc;

use brr_core::blob::{BlobType, Compression, open_blob};
use brr_core::chunker::{Chunker, ChunkerParams};
use brr_core::config::{ConfigBody, REPOSITORY_VERSION, RepoConfig};
use brr_core::crypto::MasterKey;
use brr_core::id::{BlobId, Id, KeySlotId};
use brr_core::keyslot::{KdfParams, KeySlot, SlotOrigin, Unlock};
use brr_core::tree::Tree;
use brr_storage::{Backend, FileKind};
use chrono::{DateTime, FixedOffset, Local};
use rand::RngCore;

use crate::error::{EngineError, Result};
use crate::index::{Index, IndexEntry};
use crate::parallel::parallel_map;

/// Settings chosen at `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Argon2id parameters of the first password slot.
    pub kdf: KdfParams,
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Default compression.
    pub compression: Compression,
    /// Label of the first key slot.
    pub label: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default(),
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
            compression: Compression::Zstd(2),
            label: "initial password".into(),
        }
    }
}

/// An opened (unlocked) repository. Cheap to share by reference between threads.
pub struct Repository {
    backend: Arc<dyn Backend>,
    config: RepoConfig,
    key: MasterKey,
    chunker: Chunker,
    compression: Compression,
    opened_with: KeySlotId,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.backend.location())
    }
}

/// Current time with the local UTC offset.
pub fn now() -> DateTime<FixedOffset> {
    Local::now().fixed_offset()
}

/// Host and user of this process, for key slots, locks and snapshots.
pub fn host_and_user() -> (String, String) {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into());
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    (host, user)
}

fn origin(label: &str) -> SlotOrigin {
    let (hostname, username) = host_and_user();
    SlotOrigin {
        label: label.to_string(),
        created: now(),
        hostname,
        username,
    }
}

/// A key slot as listed by `brr key list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeySlotInfo {
    /// Slot ID.
    pub id: KeySlotId,
    /// The slot.
    pub slot: KeySlot,
    /// Whether this process opened the repository with it.
    pub current: bool,
}

impl Repository {
    /// Creates a repository with one password slot.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        opts: &InitOptions,
    ) -> Result<Repository> {
        opts.chunker.validate()?;
        opts.kdf.validate()?;
        if !(1 << 20..=1 << 30).contains(&opts.pack_size) {
            return Err(EngineError::invalid(
                "pack size",
                "must be between 1 MiB and 1 GiB",
            ));
        }
        match backend.read(FileKind::Config, "config") {
            Ok(_) => {
                return Err(EngineError::AlreadyExists {
                    location: backend.location(),
                });
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        backend.create().map_err(|e| match e {
            brr_storage::StorageError::AlreadyExists { .. } => EngineError::AlreadyExists {
                location: backend.location(),
            },
            other => other.into(),
        })?;
        let key = MasterKey::generate();
        let mut rid = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut rid);
        let body = ConfigBody {
            version: REPOSITORY_VERSION,
            id: hex::encode(rid),
            created: now(),
            chunker: opts.chunker,
            pack_size: opts.pack_size,
            compression: opts.compression.to_string(),
        };
        let config = RepoConfig::new(&key, body)?;
        let slot = KeySlot::for_password(
            &key,
            &config.body.id,
            password,
            opts.kdf,
            &origin(&opts.label),
        )?;
        let (slot_id, slot_bytes) = slot.encode()?;
        // The key slot first, the config last: a repository is visible (config exists) only when complete.
        backend.write(FileKind::Key, &slot_id.to_hex(), &slot_bytes)?;
        backend.write(FileKind::Config, "config", &config.encode()?)?;
        Self::assemble(backend, config, key, slot_id)
    }

    /// Opens a repository with a password, recovery key or RSA private key.
    pub fn open(backend: Arc<dyn Backend>, secret: &Unlock<'_>) -> Result<Repository> {
        // The config and the key slot list do not depend on each other: asked for at once (one round
        // trip to a server instead of two).
        let (config_read, listed) = std::thread::scope(|s| {
            let listing = s.spawn(|| backend.list(FileKind::Key));
            let config = backend.read(FileKind::Config, "config");
            (config, listing.join())
        });
        let listed = listed.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let config_bytes = match config_read {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(EngineError::RepositoryNotFound {
                    location: backend.location(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let config = RepoConfig::decode(&config_bytes)?;
        let mut slots = listed?;
        slots.sort_by(|a, b| a.name.cmp(&b.name));
        // Slot files are small: all read at once, then tried in name order.
        let names: Vec<String> = slots.iter().map(|f| f.name.clone()).collect();
        let contents = parallel_map(names, 4, |name| backend.read(FileKind::Key, &name));
        let mut damaged = Vec::new();
        for (f, bytes) in slots.into_iter().zip(contents) {
            let bytes = bytes?;
            let slot = match KeySlot::decode(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    damaged.push(format!("{}: {e}", f.name));
                    continue;
                }
            };
            if slot.repository != config.body.id {
                continue;
            }
            let opened = match slot.open(secret) {
                Ok(k) => k,
                Err(e) => {
                    // A damaged slot must not lock the owner of another slot out.
                    damaged.push(format!("{}: {e}", f.name));
                    None
                }
            };
            if let Some(key) = opened {
                config.verify(&key)?;
                let id = KeySlotId::from_hex(&f.name)
                    .map_err(|e| EngineError::Damaged(format!("key slot name {}: {e}", f.name)))?;
                return Self::assemble(backend, config, key, id);
            }
        }
        if !damaged.is_empty() {
            tracing::warn!(slots = ?damaged, "some key slots could not be parsed");
        }
        Err(EngineError::WrongPassword {
            location: backend.location(),
        })
    }

    fn assemble(
        backend: Arc<dyn Backend>,
        config: RepoConfig,
        key: MasterKey,
        opened_with: KeySlotId,
    ) -> Result<Repository> {
        let chunker = Chunker::new(key.chunker_key(), config.body.chunker)?;
        let compression = Compression::parse(&config.body.compression)?;
        Ok(Repository {
            backend,
            config,
            key,
            chunker,
            compression,
            opened_with,
        })
    }

    /// The storage backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// A shared handle to the backend.
    pub fn backend_arc(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    /// The verified config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The master key.
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// The keyed chunker.
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    /// Default compression of new blobs.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Loads the master index for reading snapshots: every live index file, plus packs condemned by a
    /// pending GC record that still exist (see [`Index::load_with_condemned`]). Backups use
    /// [`Index::load`], which leaves condemned packs out.
    pub fn load_index(&self) -> Result<Index> {
        Index::load_with_condemned(self.backend())
    }

    /// Reads, verifies and decrypts one blob at a known location.
    pub fn read_blob_at(&self, index: &Index, entry: &IndexEntry) -> Result<Vec<u8>> {
        let pack = index.pack(entry);
        let stored = self.backend.read_range(
            FileKind::Pack,
            &pack.id.to_hex(),
            u64::from(entry.offset),
            u64::from(entry.length),
        )?;
        self.open_stored_blob(
            pack.key_ids.get(entry.key_index as usize).copied(),
            entry.blob_type,
            &entry.id,
            &stored,
        )
    }

    /// Verifies and decrypts stored blob bytes.
    pub fn open_stored_blob(
        &self,
        key_id: Option<brr_core::crypto::KeyId>,
        blob_type: BlobType,
        id: &BlobId,
        stored: &[u8],
    ) -> Result<Vec<u8>> {
        if key_id != Some(self.key.data_key().id()) {
            return Err(EngineError::Damaged(format!(
                "{blob_type} blob {} is sealed with a key this repository key does not hold",
                id.short()
            )));
        }
        Ok(open_blob(
            self.key.data_key(),
            blob_type,
            id,
            stored,
            &|d| self.key.blob_id(d),
        )?)
    }

    /// Reads a blob by ID, trying every stored copy before giving up.
    pub fn read_blob(&self, index: &Index, blob_type: BlobType, id: &BlobId) -> Result<Vec<u8>> {
        let locations = index.all_locations(id);
        if locations.is_empty() {
            return Err(EngineError::Damaged(format!(
                "{blob_type} blob {} is not in the index",
                id.short()
            )));
        }
        let mut last = None;
        for loc in locations {
            match self.read_blob_at(index, loc) {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| EngineError::Damaged(format!("blob {} unreadable", id.short()))))
    }

    /// Reads and decodes a tree blob.
    pub fn load_tree(&self, index: &Index, id: &BlobId) -> Result<Tree> {
        let bytes = self.read_blob(index, BlobType::Tree, id)?;
        Ok(Tree::decode(&bytes)?)
    }

    /// All key slots.
    pub fn list_keys(&self) -> Result<Vec<KeySlotInfo>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Key)? {
            let bytes = self.backend.read(FileKind::Key, &f.name)?;
            let id = KeySlotId::from_hex(&f.name)
                .map_err(|e| EngineError::Damaged(format!("key slot name {}: {e}", f.name)))?;
            if KeySlotId(Id::hash_of(&bytes)) != id {
                return Err(EngineError::Damaged(format!(
                    "key slot {}: content does not match its name",
                    f.name
                )));
            }
            out.push(KeySlotInfo {
                id,
                slot: KeySlot::decode(&bytes)?,
                current: id == self.opened_with,
            });
        }
        out.sort_by_key(|k| k.slot.created);
        Ok(out)
    }

    fn store_slot(&self, slot: KeySlot) -> Result<KeySlotId> {
        let (id, bytes) = slot.encode()?;
        self.backend.write(FileKind::Key, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    /// Adds a password slot.
    pub fn add_password(&self, password: &[u8], kdf: KdfParams, label: &str) -> Result<KeySlotId> {
        self.store_slot(KeySlot::for_password(
            &self.key,
            &self.config.body.id,
            password,
            kdf,
            &origin(label),
        )?)
    }

    /// Adds a recovery-key slot; returns the slot and the printable key (show it once).
    pub fn add_recovery_key(&self, label: &str) -> Result<(KeySlotId, zeroize::Zeroizing<String>)> {
        let (key, printable) = brr_core::keyslot::generate_recovery_key();
        let id = self.store_slot(KeySlot::for_recovery_key(
            &self.key,
            &self.config.body.id,
            &key,
            &origin(label),
        )?)?;
        Ok((id, printable))
    }

    /// Adds an RSA escrow slot for a PEM public key.
    pub fn add_rsa_key(&self, public_pem: &str, label: &str) -> Result<KeySlotId> {
        self.store_slot(KeySlot::for_rsa_public_key(
            &self.key,
            &self.config.body.id,
            public_pem,
            &origin(label),
        )?)
    }

    /// Removes a slot by ID or unique prefix. Refuses to remove the slot in use or the last slot.
    pub fn remove_key(&self, query: &str) -> Result<KeySlotId> {
        let keys = self.list_keys()?;
        let q = query.to_ascii_lowercase();
        let matches: Vec<&KeySlotInfo> = keys
            .iter()
            .filter(|k| k.id.to_hex().starts_with(&q))
            .collect();
        let target = match matches.as_slice() {
            [] => {
                return Err(EngineError::invalid(
                    "key",
                    format!("no key slot matches {query:?} (see `brr key list`)"),
                ));
            }
            [one] => *one,
            _ => {
                return Err(EngineError::invalid(
                    "key",
                    format!("{query:?} matches several key slots; give more characters"),
                ));
            }
        };
        if target.current {
            return Err(EngineError::invalid(
                "key",
                "refusing to remove the key slot you opened the repository with; open it with another key first",
            ));
        }
        if keys.len() <= 1 {
            return Err(EngineError::invalid(
                "key",
                "refusing to remove the last key slot: the repository would become unreadable",
            ));
        }
        self.backend.remove(FileKind::Key, &target.id.to_hex())?;
        Ok(target.id)
    }

    /// Replaces the slot in use with a new password slot (add first, then remove: never zero slots).
    pub fn change_password(&mut self, new_password: &[u8], kdf: KdfParams) -> Result<KeySlotId> {
        let old = self.opened_with;
        let label = self
            .list_keys()?
            .into_iter()
            .find(|k| k.current)
            .map(|k| k.slot.label)
            .unwrap_or_else(|| "password".into());
        let id = self.add_password(new_password, kdf, &label)?;
        self.opened_with = id;
        if old != id {
            self.backend.remove(FileKind::Key, &old.to_hex())?;
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use brr_storage::{CountingBackend, LocalBackend};

    fn options() -> InitOptions {
        InitOptions {
            kdf: KdfParams {
                memory_kib: 19 * 1024,
                iterations: 2,
                parallelism: 1,
            },
            pack_size: 1 << 20,
            ..Default::default()
        }
    }

    /// Storage calls are requests on a server: opening and an empty backup keep to a fixed few.
    #[test]
    fn opening_and_a_backup_make_a_fixed_number_of_storage_calls() {
        let tmp = tempfile::tempdir().unwrap();
        let counting = Arc::new(CountingBackend::new(LocalBackend::new(
            tmp.path().join("r"),
        )));
        let backend: Arc<dyn Backend> = counting.clone();
        Repository::init(backend.clone(), b"pw", &options()).unwrap();
        counting.reset();
        let repo = Arc::new(Repository::open(backend, &Unlock::Password(b"pw")).unwrap());
        let c = counting.counts();
        // The config and the one key slot; the slot list.
        assert_eq!(
            (c.reads, c.lists, c.range_reads, c.writes),
            (2, 1, 0, 0),
            "{c:?}"
        );

        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        counting.reset();
        let opts = crate::backup::BackupOptions {
            paths: vec![src],
            ..Default::default()
        };
        crate::backup::backup(&repo, &opts, &crate::NoProgress).unwrap();
        let c = counting.counts();
        // Nothing to read in an empty repository: the new snapshot is not read back.
        assert_eq!((c.reads, c.range_reads), (0, 0), "{c:?}");
    }
}
