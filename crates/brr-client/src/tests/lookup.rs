//! `RemoteBackend::lookup_blobs`: batching, order, retries and refusals.

use std::sync::atomic::Ordering;

use brr_storage::{Backend, StorageError};

use super::{backend, client, server};
use crate::RemoteBackend;

fn id(n: usize) -> String {
    format!("{n:064x}")
}

#[test]
fn look_ups_are_split_into_requests_of_at_most_the_limit_and_keep_their_order() {
    let srv = server::start();
    let ids: Vec<String> = (0..brr_api::repos::MAX_LOOKUP_IDS * 2 + 5)
        .map(id)
        .collect();
    srv.knobs
        .present_blobs
        .lock()
        .unwrap()
        .extend(ids.iter().step_by(3).cloned());
    let b = backend(&srv.url);
    let present = b.lookup_blobs(&ids).unwrap().unwrap();
    assert_eq!(present.len(), ids.len());
    for (i, p) in present.iter().enumerate() {
        assert_eq!(*p, i % 3 == 0, "blob {i}");
    }
    let max = brr_api::repos::MAX_LOOKUP_IDS;
    assert_eq!(*srv.knobs.lookup_sizes.lock().unwrap(), vec![max, max, 5]);
    // No IDs: supported, and no request.
    assert_eq!(b.lookup_blobs(&[]).unwrap(), Some(Vec::new()));
    assert_eq!(srv.knobs.lookup_sizes.lock().unwrap().len(), 3);
}

#[test]
fn look_ups_are_retried_and_refusals_kept() {
    let srv = server::start();
    srv.knobs.present_blobs.lock().unwrap().insert(id(1));
    let (c, slept) = client(&srv.url, "good");
    let b = RemoteBackend::new(c, "r1").unwrap();
    srv.knobs.fail_next.store(2, Ordering::SeqCst);
    assert_eq!(
        b.lookup_blobs(&[id(1), id(2)]).unwrap(),
        Some(vec![true, false])
    );
    assert_eq!(slept.lock().unwrap().len(), 2, "two retries");
    // Past the attempts: unavailable for the engine.
    srv.knobs.fail_next.store(10, Ordering::SeqCst);
    let e = b.lookup_blobs(&[id(1)]).unwrap_err();
    assert!(matches!(e, StorageError::Unavailable { .. }), "{e:?}");
    srv.knobs.fail_next.store(0, Ordering::SeqCst);
    // Another company's (or no) repository: the refusal is kept for the command line.
    let other = RemoteBackend::new(client(&srv.url, "good").0, "elsewhere").unwrap();
    assert!(other.lookup_blobs(&[id(1)]).is_err());
    assert!(matches!(
        other.refusal(),
        Some(crate::ClientError::NotFound { .. })
    ));
}
