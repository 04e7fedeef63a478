//! `brr_storage::validate_name` and `relative_path`: file names listed by, or asked of, a backend.
#![no_main]

use brr_storage::{FileKind, MAX_NAME_LEN, relative_path, validate_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    for kind in FileKind::ALL {
        let ok = validate_name(kind, name).is_ok();
        let path = relative_path(kind, name);
        assert_eq!(ok, path.is_ok());
        if let Ok(path) = path {
            // A valid name never leaves its folder: no empty, `.` or `..` component, nothing absolute.
            assert!(!path.starts_with('/'));
            for c in path.split('/') {
                assert!(!c.is_empty() && c != "." && c != "..", "{path:?}");
            }
            assert!(name.len() <= MAX_NAME_LEN);
            match kind.folder() {
                None => assert_eq!(path, "config"),
                Some(folder) => {
                    assert!(path.starts_with(&format!("{folder}/")));
                    assert!(path.ends_with(&format!("/{name}")));
                }
            }
        }
    }
});
