//! Plain `std::thread::scope` parallelism over contiguous chunks (no thread pool dependency).
//!
//! Every result is computed by the same code for the same item whatever the number of threads,
//! so outputs do not depend on it.

/// The number of worker threads: `requested`, or the machine's available parallelism when 0.
pub fn thread_count(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// Calls `f(first_item, chunk)` on contiguous chunks of `out`, `unit` values per item (chunks
/// end between items), on up to `threads` threads. Small inputs run on the calling thread.
pub fn par_chunks<T, F>(out: &mut [T], unit: usize, threads: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let unit = unit.max(1);
    let items = out.len() / unit;
    let threads = threads.clamp(1, items.max(1));
    if threads == 1 || items < 64 {
        f(0, out);
        return;
    }
    let per = items.div_ceil(threads);
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(per * unit).enumerate() {
            let f = &f;
            s.spawn(move || f(t * per, chunk));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_item_once() {
        for threads in [1, 2, 3, 7] {
            let mut out = vec![0usize; 3 * 1000];
            par_chunks(&mut out, 3, threads, |first, chunk| {
                for (k, v) in chunk.chunks_exact_mut(3).enumerate() {
                    v.fill(first + k);
                }
            });
            for (i, v) in out.chunks_exact(3).enumerate() {
                assert_eq!(v, [i, i, i]);
            }
        }
        assert!(thread_count(0) >= 1);
        assert_eq!(thread_count(3), 3);
    }
}
