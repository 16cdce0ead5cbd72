//! Plain `std::thread::scope` parallelism (no thread pool dependency).
//!
//! Work is cut into many small tasks that threads take from a shared queue, so a thread the
//! operating system pauses (the machine may be busy) does not hold the others up. Every result
//! is computed by the same code for the same item whatever the number of threads, so outputs do
//! not depend on it.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The number of worker threads: `requested`, or the machine's available parallelism when 0.
pub fn thread_count(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// Calls `f` on every item, on up to `threads` threads (the calling thread is one of them),
/// each taking the next unprocessed item from a queue.
pub fn par_each<T, F>(items: &mut [T], threads: usize, f: F)
where
    T: Send,
    F: Fn(&mut T) + Sync,
{
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        items.iter_mut().for_each(f);
        return;
    }
    let queue = Mutex::new(items.iter_mut());
    let work = || loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
        match next {
            Some(item) => f(item),
            None => break,
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
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
    if threads <= 1 || items < 64 {
        f(0, out);
        return;
    }
    // About eight tasks per thread, at least 16 items each.
    let per = items.div_ceil(threads * 8).max(16);
    let mut tasks: Vec<(usize, &mut [T])> = out
        .chunks_mut(per * unit)
        .enumerate()
        .map(|(t, chunk)| (t * per, chunk))
        .collect();
    par_each(&mut tasks, threads, |(first, chunk)| f(*first, chunk));
}

/// The task queue shared by a [`Runner`] and its helper threads.
struct Queue {
    /// Incremented for every job; helpers wait for a change.
    generation: u64,
    /// Next task to hand out, and the number of tasks of the current job.
    next: usize,
    total: usize,
    /// Tasks handed out and not finished.
    running: usize,
    /// A task panicked (its message).
    panic: Option<String>,
    stop: bool,
}

/// Runs jobs of numbered tasks on the calling thread and `threads − 1` helper threads that live
/// as long as the [`with_runner`] call, so an iteration loop pays no thread start per step.
///
/// The caller works through the tasks too and then waits only for tasks a helper has already
/// started: a helper the operating system wakes late (the machine may be busy) finds the queue
/// empty and holds nobody up. Tasks read their inputs through shared state (locks) and write
/// their own outputs, so results do not depend on which thread ran them.
pub struct Runner<'a> {
    queue: &'a Mutex<Queue>,
    wake: &'a Condvar,
    idle: &'a Condvar,
    job: &'a (dyn Fn(usize) + Sync),
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a worker task panicked".to_owned())
}

impl Runner<'_> {
    /// Runs `job(0..total)` and returns when every task is done. Re-raises a task's panic.
    pub fn run(&self, total: usize) {
        {
            let mut q = lock(self.queue);
            q.generation += 1;
            q.next = 0;
            q.total = total;
            q.panic = None;
        }
        self.wake.notify_all();
        work_through(self.queue, self.job);
        let mut q = lock(self.queue);
        while q.running > 0 {
            q = self.idle.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(message) = q.panic.take() {
            drop(q);
            panic!("{message}");
        }
    }
}

/// Takes and runs tasks until the current job has none left.
fn work_through(queue: &Mutex<Queue>, job: &(dyn Fn(usize) + Sync)) {
    loop {
        let task = {
            let mut q = lock(queue);
            if q.next >= q.total {
                return;
            }
            q.next += 1;
            q.running += 1;
            q.next - 1
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(task)));
        let mut q = lock(queue);
        q.running -= 1;
        if let Err(p) = outcome {
            q.panic.get_or_insert(panic_message(&*p));
            q.next = q.total;
        }
    }
}

/// Calls `body` with a [`Runner`] for `job` on `threads` threads (0: every core).
pub fn with_runner<J, B, R>(threads: usize, job: J, body: B) -> R
where
    J: Fn(usize) + Sync,
    B: FnOnce(&Runner<'_>) -> R,
{
    let threads = thread_count(threads);
    let queue = Mutex::new(Queue {
        generation: 0,
        next: 0,
        total: 0,
        running: 0,
        panic: None,
        stop: false,
    });
    let (wake, idle) = (Condvar::new(), Condvar::new());
    let runner = Runner {
        queue: &queue,
        wake: &wake,
        idle: &idle,
        job: &job,
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(|| {
                let mut seen = 0;
                loop {
                    {
                        let mut q = lock(&queue);
                        while q.generation == seen && !q.stop {
                            q = wake.wait(q).unwrap_or_else(|e| e.into_inner());
                        }
                        if q.stop {
                            return;
                        }
                        seen = q.generation;
                    }
                    work_through(&queue, &job);
                    let q = lock(&queue);
                    if q.running == 0 {
                        idle.notify_all();
                    }
                }
            });
        }
        // Stop the helpers however `body` ends.
        struct Stop<'q>(&'q Mutex<Queue>, &'q Condvar);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                lock(self.0).stop = true;
                self.1.notify_all();
            }
        }
        let _stop = Stop(&queue, &wake);
        body(&runner)
    })
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
            let mut items: Vec<usize> = (0..100).collect();
            par_each(&mut items, threads, |v| *v *= 2);
            assert!(items.iter().enumerate().all(|(i, &v)| v == 2 * i));
        }
        assert!(thread_count(0) >= 1);
        assert_eq!(thread_count(3), 3);
    }

    #[test]
    fn runner_runs_every_task_once_per_job() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for threads in [1, 2, 4] {
            let counts: Vec<AtomicUsize> = (0..50).map(|_| AtomicUsize::new(0)).collect();
            with_runner(
                threads,
                |t| {
                    counts[t].fetch_add(1, Ordering::SeqCst);
                },
                |runner| {
                    for _ in 0..100 {
                        runner.run(50);
                    }
                    runner.run(0);
                    runner.run(7);
                },
            );
            for (t, c) in counts.iter().enumerate() {
                let want = if t < 7 { 101 } else { 100 };
                assert_eq!(
                    c.load(Ordering::SeqCst),
                    want,
                    "task {t}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn runner_passes_panics_on() {
        let caught = std::panic::catch_unwind(|| {
            with_runner(
                2,
                |t| {
                    if t == 3 {
                        panic!("task three failed");
                    }
                },
                |runner| runner.run(10),
            )
        });
        let message = caught.expect_err("the panic reaches the caller");
        assert_eq!(panic_message(&*message), "task three failed");
    }
}
