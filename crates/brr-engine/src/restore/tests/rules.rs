//! Unit rules restore relies on: merging damaged ranges, which owners and xattrs an unprivileged
//! process may set.

use super::*;

#[test]
fn merge_ranges() {
    assert_eq!(
        merge(vec![(0, 5), (5, 5), (20, 1), (20, 3)]),
        vec![(0, 10), (20, 3)]
    );
    assert_eq!(merge(vec![]), vec![]);
}

#[test]
fn unprivileged_owner_and_xattr_rules() {
    let me = Privileges {
        root: false,
        euid: 1000,
    };
    let mut node = brr_core::tree::Node {
        name: b"x".to_vec(),
        kind: NodeKind::Fifo,
        mode: 0o644,
        uid: 1000,
        gid: 50,
        user: None,
        group: None,
        mtime: Default::default(),
        atime: Default::default(),
        ctime: Default::default(),
        device: 0,
        inode: 0,
        links: 1,
        xattrs: Vec::new(),
    };
    // Own files: only the group is tried; others' files: nothing.
    assert_eq!(
        fsops::wants_owner(&node, me),
        Some((None, Some(nix::unistd::Gid::from_raw(50))))
    );
    node.uid = 0;
    assert_eq!(fsops::wants_owner(&node, me), None);
    assert!(
        fsops::wants_owner(
            &node,
            Privileges {
                root: true,
                euid: 0
            }
        )
        .is_some()
    );
    assert!(fsops::settable_xattr(b"user.a", me));
    assert!(!fsops::settable_xattr(b"security.selinux", me));
    assert!(!fsops::settable_xattr(b"trusted.x", me));
    assert!(fsops::settable_xattr(
        b"trusted.x",
        Privileges {
            root: true,
            euid: 0
        }
    ));
}
