//! The repository `config` file: `RepoConfig::decode`, then what opening a repository does with it
//! (MAC check with a fixed key, chunker parameters, compression setting).
#![no_main]

use brr_core::blob::{BlobSealer, Compression};
use brr_core::chunker::Chunker;
use brr_core::config::RepoConfig;
use brr_fuzz::{fixed_key, show};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = RepoConfig::decode(data);
    show("RepoConfig::decode", &r);
    let Ok(c) = r else {
        return;
    };
    let bytes = c.encode().expect("an accepted config encodes");
    assert_eq!(
        RepoConfig::decode(&bytes).expect("a re-encoded config decodes"),
        c
    );
    let key = fixed_key();
    show("RepoConfig::verify", &c.verify(&key).map(|()| "MAC verified"));
    if c.body.chunker.validate().is_ok() {
        let chunker = Chunker::new(key.chunker_key(), c.body.chunker).expect("valid params build");
        let sample = [0x5au8; 1000];
        assert_eq!(
            chunker.chunk_lengths(&sample).iter().sum::<usize>(),
            sample.len()
        );
    }
    if let Ok(comp) = Compression::parse(&c.body.compression) {
        let _ = BlobSealer::new(comp);
    }
});
