//! Small helpers to spread independent work over threads.

/// Applies `f` to every item on up to `threads` scoped threads; results keep the input order.
pub fn parallel_map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let n = items.len();
    if n <= 1 || threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let queue = parking_lot::Mutex::new(items.into_iter().enumerate());
    let results = parking_lot::Mutex::new((0..n).map(|_| None).collect::<Vec<Option<R>>>());
    std::thread::scope(|s| {
        for _ in 0..threads.min(n) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().next();
                    let Some((i, item)) = next else { break };
                    let r = f(item);
                    results.lock()[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().into_iter().flatten().collect()
}

/// Number of worker threads to use for CPU-bound work.
pub fn cpu_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
