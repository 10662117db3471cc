//! Work a session does beside its critical path, at the lowest CPU priority.

use std::thread::JoinHandle;

/// Spawns `work` on a thread that runs at nice 19, as do the processes it starts: on a
/// machine with few cores the program's build and cargo's reading of the workspace get
/// the cores first (on 2 cores, the source scan and `rustc --print cfg` beside them
/// slowed mini-redis's fresh build from 62 to 90–110 ms).
pub fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::spawn(move || {
        // SAFETY: `gettid` has no preconditions. On Linux the nice value is per thread
        // (setpriority(2), BUGS), so this lowers only this thread and what it forks. A
        // failure leaves the priority as it was, which is only slower.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
        }
        work()
    })
}
