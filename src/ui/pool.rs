//! The window's own threads for parallel work it asks for and waits on
//! (the scatter view's spatial sort and raster of a million points) or
//! starts from a frame (thumbnail decodes).
//!
//! rayon's global pool is the scan's: a frame that called a parallel
//! iterator from the UI thread queued its work behind the scan's and
//! waited until a worker came back to the global queue — once for 33 s of
//! a 1,000,000-sample scan before the first picture was drawn (session
//! 21's `bench_first_picture`), and again whenever a detector's colours
//! changed the raster mid-scan. Work run here shares the cores with the
//! scan through the operating system instead, so a frame's wait is its
//! own work's length.

use std::sync::OnceLock;

/// The pool (as many threads as rayon's global pool), made on first use;
/// None if its threads could not be started.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads().max(1))
            .thread_name(|i| format!("poisonlens-window-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Runs `f` — and every parallel iterator inside it — on the window's
/// threads, and returns its result (on rayon's global pool if the
/// window's threads could not be started).
pub fn on_window_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Starts `f` on the window's threads without waiting for it.
pub fn spawn_on_window_threads(f: impl FnOnce() + Send + 'static) {
    match pool() {
        Some(p) => p.spawn(f),
        None => rayon::spawn(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    #[test]
    fn window_work_does_not_wait_for_a_busy_global_pool() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        // Every thread of rayon's global pool held (as a scan holds them)
        // until released — or, should the window's work wait for them, for
        // 20 s, after which they give up and say so.
        let released = Arc::new((Mutex::new(false), Condvar::new()));
        let held = Arc::new(AtomicUsize::new(0));
        let gave_up = Arc::new(AtomicBool::new(false));
        let threads = rayon::current_num_threads();
        for _ in 0..threads {
            let (released, held, gave_up) = (
                Arc::clone(&released),
                Arc::clone(&held),
                Arc::clone(&gave_up),
            );
            rayon::spawn(move || {
                held.fetch_add(1, SeqCst);
                let (lock, cv) = &*released;
                let guard = lock.lock().unwrap();
                let (_guard, waited) = cv
                    .wait_timeout_while(guard, Duration::from_secs(20), |r| !*r)
                    .unwrap();
                if waited.timed_out() {
                    gave_up.store(true, SeqCst);
                }
            });
        }
        while held.load(SeqCst) < threads {
            std::thread::yield_now();
        }
        // A parallel sum on the window's threads finishes while the global
        // pool is still held: it never waited for it.
        let sum: u64 = on_window_threads(|| {
            use rayon::prelude::*;
            (0..1_000_000u64).into_par_iter().sum()
        });
        let waited_for_the_pool = gave_up.load(SeqCst);
        {
            let (lock, cv) = &*released;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        assert_eq!(sum, 499_999_500_000);
        assert!(
            !waited_for_the_pool,
            "the window's work waited for the global pool"
        );
    }
}
