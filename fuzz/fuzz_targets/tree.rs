//! `Tree::decode`: the plaintext of a tree blob (postcard).
#![no_main]

use brr_core::tree::{Tree, validate_name};
use brr_fuzz::show;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = Tree::decode(data);
    show("Tree::decode", &r);
    if let Ok(t) = r {
        for n in &t.nodes {
            assert!(validate_name(&n.name).is_ok());
        }
        let again = t.encode().expect("an accepted tree encodes");
        let back = Tree::decode(&again).expect("a re-encoded tree decodes");
        assert_eq!(back, t);
    }
});
