//! Redirecting functions at their entry in this process (Linux x86-64).
//!
//! A 5-byte `jmp rel32` written over a function's first bytes sends every later call
//! of it — direct calls from code that was never rebuilt, `fn` pointers, vtables — to
//! the new copy. Writing those bytes while other threads run is what needs care: a
//! thread interrupted inside a multi-instruction prologue would resume in the middle
//! of the jump, and a core may execute stale bytes it already fetched. A prototype
//! that wrote plain 5-byte stores over prologues crashed 8 calling threads within two
//! million writes (DESIGN-NOTES §7).
//!
//! The technique, as Live++ does it: stop every other thread of the process with a
//! signal; in the handler each records the instruction pointer it was interrupted at
//! and waits; when all have arrived and none was interrupted strictly inside the first
//! five bytes of a function being rewritten, the bytes are written through
//! `/proc/self/mem` (so no page is ever made writable, let alone writable and
//! executable); then the threads are released, and each executes `cpuid`, a
//! serialising instruction, before it returns to the code (Intel SDM, "cross-modifying
//! code"). When a thread stands inside a site, all are released and the stop is tried
//! again a moment later. Chosen over `int3`-first patching (the kernel's
//! `text_poke_bp`) because one stop rewrites any number of functions at once and needs
//! no trap handler emulating instructions in the program.
//!
//! Between the first signal and the release nothing here allocates or takes a lock
//! another thread could hold (a stopped thread may hold the allocator's): threads are
//! listed with `getdents64` into a buffer on the stack, bookkeeping uses arrays
//! allocated before the stop.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most threads one stop can hold; a process with more is refused.
const MAX_THREADS: usize = 4096;

/// Attempts before giving up on a site that some thread keeps standing in.
const MAX_ATTEMPTS: u32 = 200;

/// How long threads may take to answer the stop signal.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

/// Bytes a redirect writes: `jmp rel32`.
pub(crate) const JUMP_LEN: u64 = 5;

/// Bytes to write at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Site {
    /// The first byte written: a function's entry.
    pub(crate) at: u64,
    /// What it gets.
    pub(crate) bytes: [u8; JUMP_LEN as usize],
}

impl Site {
    /// `jmp to` written at `from`; `None` when `to` is out of a `rel32`'s reach.
    pub(crate) fn jump(from: u64, to: u64) -> Option<Site> {
        let rel = i32::try_from(to as i64 - (from as i64 + JUMP_LEN as i64)).ok()?;
        let mut bytes = [0xe9, 0, 0, 0, 0];
        bytes[1..].copy_from_slice(&rel.to_le_bytes());
        Some(Site { at: from, bytes })
    }

    /// Whether an interrupted thread at `ip` would resume inside the bytes written:
    /// strictly after the first (a thread at the first executes the new jump whole).
    fn holds(&self, ip: u64) -> bool {
        ip > self.at && ip < self.at + JUMP_LEN
    }
}

/// What a stop took.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Other threads stopped.
    pub(crate) threads: usize,
    /// Stops made: more than one when a thread stood inside a site.
    pub(crate) attempts: u32,
    /// Time the threads were held in the last stop, in microseconds.
    pub(crate) held_micros: u64,
    /// For each range given to [`write_sites`], whether a thread was running code in
    /// it when the sites were written.
    pub(crate) running: Vec<bool>,
}

/// Why a stop or a write failed, made while the other threads are stopped: it holds
/// no allocation, since a stopped thread may hold the allocator's lock. Described
/// once they run again.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// More threads than a stop can hold.
    TooManyThreads,
    /// A thread did not answer the signal (it blocks it, most likely).
    NoAnswer(i32),
    /// `/proc/self/task` could not be read.
    List,
    /// A site could not be written: its address and the error number.
    Write(u64, i32),
}

impl Failure {
    fn describe(self, signal: i32) -> String {
        match self {
            Failure::TooManyThreads => format!("the process has more than {MAX_THREADS} threads"),
            Failure::NoAnswer(tid) => format!(
                "thread {tid} did not answer the stop signal within {} ms (it blocks signal {signal}?)",
                ANSWER_TIMEOUT.as_millis()
            ),
            Failure::List => "cannot list the process's threads".into(),
            Failure::Write(at, errno) => format!(
                "cannot write code at {at:#x} through /proc/self/mem: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        }
    }
}

/// One stopped thread: its id (0 until written), where it was interrupted, and its
/// stack pointer there.
struct Arrival {
    tid: AtomicI32,
    ip: AtomicU64,
    sp: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const NO_ARRIVAL: Arrival = Arrival { tid: AtomicI32::new(0), ip: AtomicU64::new(0), sp: AtomicU64::new(0) };

/// The stop in progress (0: none), and the one released last.
static STOP: AtomicU64 = AtomicU64::new(0);
static RELEASE: AtomicU64 = AtomicU64::new(0);
/// Threads that entered the handler in this stop, and what each recorded.
static ARRIVED: AtomicUsize = AtomicUsize::new(0);
static ARRIVALS: [Arrival; MAX_THREADS] = [NO_ARRIVAL; MAX_THREADS];
/// The signal the handler is installed for (0: none yet).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// One stop at a time.
static LOCK: Mutex<()> = Mutex::new(());
/// Futex words: bumped at each release (stopped threads sleep on it), and at each
/// arrival (the stopping thread sleeps on it). Sleeping, not spinning: on 2 cores the
/// threads still to be stopped need the CPU.
static RELEASED_WORD: AtomicU32 = AtomicU32::new(0);
static ARRIVED_WORD: AtomicU32 = AtomicU32::new(0);

/// Sleeps while `word` holds `seen`, at most `micros`.
fn futex_wait(word: &AtomicU32, seen: u32, micros: u64) {
    let timeout = libc::timespec { tv_sec: 0, tv_nsec: (micros * 1000) as libc::c_long };
    // SAFETY: a private futex wait on a live atomic, with a relative timeout; async-signal-safe.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            &timeout as *const libc::timespec,
        )
    };
}

/// Wakes every thread sleeping on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: a private futex wake on a live atomic; async-signal-safe.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX) };
}

/// Writes every site while all other threads of the process are stopped outside of
/// every site; the whole set or nothing. While the threads are stopped, each one's
/// interrupted instruction pointer and the words of its stack (this thread's too) are
/// looked up in `running`, ranges of code (the old copies) that hold the words
/// `start < word < end` (a return address is never a function's entry). A return
/// address inside one means a frame that will go on in that code ([`Stats::running`]). A word that merely looks like one counts too: the answer is
/// "may be running", for a warning, never for a decision about memory.
///
/// # Safety
/// Each site's address must be the entry of a function (or other code) in an
/// executable mapping of this process whose first [`JUMP_LEN`] bytes belong to it
/// alone, no code may branch into those bytes but to their first, and the bytes
/// written must be valid code there (a `jmp` to the entry of a function with the same
/// signature and ABI). Code that has not finished initialising must not be reached by
/// them.
pub(crate) unsafe fn write_sites(sites: &[Site], running: &[(u64, u64)]) -> Result<Stats, String> {
    if sites.is_empty() {
        return Ok(Stats::default());
    }
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let signal = stop_signal()?;
    let files = Files::open()?;
    let mut stacks = Stacks::read();
    // Sorted, for a binary search per stack word while the threads wait.
    let mut ranges: Vec<(u64, u64, usize)> = running.iter().enumerate().map(|(i, &(s, e))| (s, e, i)).collect();
    ranges.sort_unstable();
    let mut running_now = vec![false; running.len()];
    // SAFETY: the caller vouched that each site is mapped code of this process, and
    // code between two sites of one span is the code of the functions in between.
    let spans = unsafe { Span::cover(sites) };
    let mut stopped = Stopped::with_capacity(MAX_THREADS);
    let mut stats = Stats::default();
    for attempt in 1..=MAX_ATTEMPTS {
        stats.attempts = attempt;
        let started = Instant::now();
        let gen = STOP.load(Ordering::Relaxed).max(RELEASE.load(Ordering::Relaxed)) + 1;
        let outcome = stop_all(gen, signal, &files, &mut stopped);
        let clear = outcome.is_ok() && !stopped.ips().any(|ip| sites.iter().any(|s| s.holds(ip)));
        let written = if clear { Some(write_all(&files, &spans)) } else { None };
        if let Some(Ok(())) = written {
            if !ranges.is_empty() {
                stacks.find_running(&files, &ranges, &mut running_now);
            }
        }
        stats.held_micros = started.elapsed().as_micros() as u64;
        release(gen);
        match (outcome, written) {
            (Err(failure), _) | (Ok(()), Some(Err(failure))) => return Err(failure.describe(signal)),
            (Ok(()), Some(Ok(()))) => {
                stats.threads = stopped.len;
                stats.running = running_now;
                serialise();
                return Ok(stats);
            }
            // A thread stands inside a site: let it run on, and try again.
            (Ok(()), None) => std::thread::sleep(Duration::from_micros(200 * u64::from(attempt.min(20)))),
        }
    }
    Err(format!("a thread stayed inside a function's first bytes through {MAX_ATTEMPTS} attempts"))
}

/// Where threads' stacks may be: the process's readable, writable, private mappings,
/// read from `/proc/self/maps` before a stop (reading allocates), and a buffer their
/// words are read into during it.
struct Stacks {
    /// `[start, end)`, sorted.
    mappings: Vec<(u64, u64)>,
    /// Words read from `/proc/self/mem`, [`SCAN_CHUNK`] at a time.
    buffer: Vec<u64>,
}

/// The most of one stack that is looked through.
const STACK_SCAN: u64 = 8 << 20;

/// Words read per `pread` of a stack: 64 KiB.
const SCAN_CHUNK: usize = 8 << 10;

impl Stacks {
    fn read() -> Stacks {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let mut mappings: Vec<(u64, u64)> = maps
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let (range, perms) = (fields.next()?, fields.next()?);
                let (start, end) = range.split_once('-')?;
                perms.starts_with("rw").then_some(())?;
                perms.ends_with('p').then_some(())?;
                Some((u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?))
            })
            .collect();
        mappings.sort_unstable();
        Stacks { mappings, buffer: vec![0; SCAN_CHUNK] }
    }

    /// Marks `found[i]` for each range `(start, end, i)` of `ranges` (sorted, not
    /// overlapping) that a stopped thread's instruction pointer, or a word of its stack
    /// or of this thread's, lies in (`start < word < end`). Allocates nothing. Meant
    /// for while every other thread is stopped, so that their stacks hold still; words
    /// are read through `files.mem`, so a mapping unmapped since [`Stacks::read`] (a
    /// thread that exited meanwhile, its stack freed) ends the scan rather than the
    /// process.
    fn find_running(&mut self, files: &Files, ranges: &[(u64, u64, usize)], found: &mut [bool]) {
        let mut mark = |word: u64| {
            let at = ranges.partition_point(|&(start, _, _)| start < word);
            if let Some(&(_, end, i)) = at.checked_sub(1).map(|i| &ranges[i]) {
                if word < end {
                    found[i] = true;
                }
            }
        };
        let here = 0u64;
        let own = std::ptr::addr_of!(here) as u64;
        self.scan(files, own, &mut mark);
        let arrived = ARRIVED.load(Ordering::Acquire).min(MAX_THREADS);
        for arrival in &ARRIVALS[..arrived] {
            mark(arrival.ip.load(Ordering::Acquire));
            // The thread waits in the handler, below the frames it was interrupted in.
            self.scan(files, arrival.sp.load(Ordering::Acquire), &mut mark);
        }
    }

    /// Calls `f` with each word from `sp` to the end of the mapping that held it when
    /// the mappings were read, as far as it is still mapped.
    fn scan(&mut self, files: &Files, sp: u64, f: &mut impl FnMut(u64)) {
        let at = self.mappings.partition_point(|&(start, _)| start <= sp);
        let Some(&(_, end)) = at.checked_sub(1).and_then(|i| self.mappings.get(i)).filter(|m| sp < m.1) else {
            return;
        };
        let end = end.min(sp.saturating_add(STACK_SCAN));
        let mut word = sp.next_multiple_of(8);
        while word + 8 <= end {
            let want = (((end - word) / 8) as usize).min(self.buffer.len());
            // SAFETY: `pread` writes at most `want * 8` bytes into the buffer, which holds
            // `want` words; the kernel reads this process's memory and fails on an
            // unmapped page instead of faulting.
            let n = unsafe {
                libc::pread(files.mem.as_raw_fd(), self.buffer.as_mut_ptr().cast(), want * 8, word as libc::off_t)
            };
            let words = if n > 0 { n as usize / 8 } else { 0 };
            if words == 0 {
                return;
            }
            self.buffer[..words].iter().for_each(|w| f(*w));
            word += words as u64 * 8;
        }
    }
}

/// The files a stop uses, opened before it (opening may allocate).
struct Files {
    /// `/proc/self/task`, listed with `getdents64`.
    task: OwnedFd,
    /// `/proc/self/mem`, written with `pwrite`, and stacks read with `pread`.
    mem: OwnedFd,
}

impl Files {
    fn open() -> Result<Files, String> {
        let open = |path: &str, flags: i32| -> Result<OwnedFd, String> {
            let c = std::ffi::CString::new(path).expect("no NUL");
            // SAFETY: a valid C string; the descriptor is owned by the returned value.
            let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(format!("cannot open {path}: {}", std::io::Error::last_os_error()));
            }
            // SAFETY: `fd` was just opened and is owned by nothing else.
            Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
        };
        Ok(Files {
            task: open("/proc/self/task", libc::O_RDONLY | libc::O_DIRECTORY)?,
            mem: open("/proc/self/mem", libc::O_RDWR)?,
        })
    }
}

/// Thread ids signalled in one stop, in memory allocated before it.
struct Stopped {
    tids: Vec<i32>,
    len: usize,
}

impl Stopped {
    fn with_capacity(n: usize) -> Stopped {
        Stopped { tids: vec![0; n], len: 0 }
    }

    fn contains(&self, tid: i32) -> bool {
        self.tids[..self.len].contains(&tid)
    }

    /// Where each arrived thread was interrupted.
    fn ips(&self) -> impl Iterator<Item = u64> + '_ {
        let arrived = ARRIVED.load(Ordering::Acquire).min(MAX_THREADS);
        ARRIVALS[..arrived].iter().map(|a| a.ip.load(Ordering::Acquire))
    }
}

/// Signals every other thread until all of them, including any started meanwhile,
/// wait in the handler. Allocates nothing.
fn stop_all(gen: u64, signal: i32, files: &Files, stopped: &mut Stopped) -> Result<(), Failure> {
    stopped.len = 0;
    for arrival in &ARRIVALS {
        arrival.tid.store(0, Ordering::Relaxed);
    }
    ARRIVED.store(0, Ordering::Release);
    STOP.store(gen, Ordering::Release);
    // SAFETY: no arguments; always succeeds.
    let (pid, me) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid) as i32) };
    loop {
        let mut new = 0;
        let mut full = false;
        for_each_thread(files, |tid| {
            if tid == me || stopped.contains(tid) {
                return;
            }
            if stopped.len == stopped.tids.len() {
                full = true;
                return;
            }
            // SAFETY: signalling a thread of this process with the stop signal, whose
            // handler is installed.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) } == 0 {
                stopped.tids[stopped.len] = tid;
                stopped.len += 1;
                new += 1;
            }
        })?;
        if full {
            return Err(Failure::TooManyThreads);
        }
        wait_for_arrivals(pid, stopped)?;
        if new == 0 {
            return Ok(());
        }
    }
}

/// Waits until every signalled thread that still exists has arrived.
fn wait_for_arrivals(pid: i32, stopped: &mut Stopped) -> Result<(), Failure> {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        let seen = ARRIVED_WORD.load(Ordering::Acquire);
        if arrived_all(stopped) {
            return Ok(());
        }
        if Instant::now() > deadline {
            // Threads that exited since they were signalled never arrive.
            let mut i = 0;
            while i < stopped.len {
                let tid = stopped.tids[i];
                // SAFETY: signal 0 only checks that the thread exists.
                let exists = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) } == 0;
                if !exists {
                    stopped.len -= 1;
                    stopped.tids[i] = stopped.tids[stopped.len];
                } else {
                    i += 1;
                }
            }
            if arrived_all(stopped) {
                return Ok(());
            }
            let late = stopped.tids[..stopped.len].iter().find(|tid| !has_arrived(**tid)).copied().unwrap_or(0);
            return Err(Failure::NoAnswer(late));
        }
        futex_wait(&ARRIVED_WORD, seen, 1000);
    }
}

fn has_arrived(tid: i32) -> bool {
    let arrived = ARRIVED.load(Ordering::Acquire).min(MAX_THREADS);
    ARRIVALS[..arrived].iter().any(|a| a.tid.load(Ordering::Acquire) == tid)
}

fn arrived_all(stopped: &Stopped) -> bool {
    stopped.tids[..stopped.len].iter().all(|tid| has_arrived(*tid))
}

/// Calls `f` with each thread id of the process, read with `getdents64` into a buffer
/// on the stack.
fn for_each_thread(files: &Files, mut f: impl FnMut(i32)) -> Result<(), Failure> {
    let fd = files.task.as_raw_fd();
    // SAFETY: rewinding a directory descriptor this value owns.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } < 0 {
        return Err(Failure::List);
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(Failure::List);
        }
        if n == 0 {
            return Ok(());
        }
        let mut at = 0usize;
        while at < n as usize {
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            let name = &buf[at + 19..at + reclen];
            let digits = name.iter().take_while(|b| b.is_ascii_digit());
            let tid = digits.fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
            if tid > 0 && name[0].is_ascii_digit() {
                f(tid as i32);
            }
            at += reclen;
        }
    }
}

/// Bytes written with one `pwrite`: sites closer together than a page, and the code
/// between them as it is (rewriting a byte with its own value changes nothing while
/// every other thread is stopped). Made before a stop, with what they replace.
struct Span {
    at: u64,
    new: Vec<u8>,
    /// Each site's bytes before the write: all a failed write has to put back (the
    /// code between sites is written with its own value).
    old: Vec<(u64, [u8; JUMP_LEN as usize])>,
}

impl Span {
    /// The spans covering `sites`.
    ///
    /// # Safety
    /// Every site must be in mapped code of this process, and the bytes between two
    /// sites less than a page apart must be mapped too (code of one image).
    unsafe fn cover(sites: &[Site]) -> Vec<Span> {
        let mut sorted: Vec<&Site> = sites.iter().collect();
        sorted.sort_by_key(|s| s.at);
        let mut groups: Vec<Vec<&Site>> = Vec::new();
        for site in sorted {
            match groups.last_mut() {
                Some(group) if site.at < group[group.len() - 1].at + JUMP_LEN + PAGE => group.push(site),
                _ => groups.push(vec![site]),
            }
        }
        groups
            .into_iter()
            .map(|group| {
                let at = group[0].at;
                let len = (group[group.len() - 1].at + JUMP_LEN - at) as usize;
                // SAFETY: mapped bytes, by the contract above, not written while this
                // reads them (one stop at a time, under `LOCK`).
                let mut new = unsafe { std::slice::from_raw_parts(at as *const u8, len) }.to_vec();
                let mut old = Vec::with_capacity(group.len());
                for site in group {
                    let offset = (site.at - at) as usize;
                    let bytes = &mut new[offset..offset + JUMP_LEN as usize];
                    old.push((site.at, (&*bytes).try_into().expect("a jump's length")));
                    bytes.copy_from_slice(&site.bytes);
                }
                Span { at, new, old }
            })
            .collect()
    }
}

/// Bytes within which sites share one write.
const PAGE: u64 = 4096;

/// Writes each span through `/proc/self/mem`; if one cannot be written, those before
/// it get their old bytes back, so the sites are written all or none.
fn write_all(files: &Files, spans: &[Span]) -> Result<(), Failure> {
    let write = |at: u64, bytes: &[u8]| {
        // SAFETY: writing initialised bytes at an address of this process; the caller
        // of `write_sites` vouched for what is written where.
        let n = unsafe { libc::pwrite(files.mem.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), at as libc::off_t) };
        n == bytes.len() as isize
    };
    for (i, span) in spans.iter().enumerate() {
        if !write(span.at, &span.new) {
            // SAFETY: this thread's `errno`, just set by `pwrite`.
            let errno = unsafe { *libc::__errno_location() };
            for (at, bytes) in spans[..i].iter().flat_map(|span| &span.old) {
                write(*at, bytes);
            }
            return Err(Failure::Write(span.at, errno));
        }
    }
    Ok(())
}

/// Lets the stopped threads go.
fn release(gen: u64) {
    RELEASE.store(gen, Ordering::Release);
    STOP.store(0, Ordering::Release);
    RELEASED_WORD.fetch_add(1, Ordering::AcqRel);
    futex_wake(&RELEASED_WORD);
}

/// `cpuid`: a serialising instruction, so this core executes the bytes as written.
fn serialise() {
    let _ = std::arch::x86_64::__cpuid(0);
}

/// The signal that stops threads: a real-time signal the program does not handle
/// itself (checked at every stop, since the program may install a handler later).
fn stop_signal() -> Result<i32, String> {
    let current = SIGNAL.load(Ordering::Relaxed);
    if current != 0 && handler_of(current) == Some(on_stop as *const () as usize) {
        return Ok(current);
    }
    // From the top of the range down: programs and libraries that take real-time
    // signals usually take the first ones.
    for signal in (libc::SIGRTMIN() + 2..=libc::SIGRTMAX()).rev() {
        if handler_of(signal) != Some(libc::SIG_DFL) {
            continue;
        }
        // SAFETY: a zeroed `sigaction` is valid; the handler is async-signal-safe
        // (atomics, `futex`, `gettid`, `cpuid`) and saves `errno`.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) == 0 {
                SIGNAL.store(signal, Ordering::Relaxed);
                return Ok(signal);
            }
        }
    }
    Err("every real-time signal has a handler in this program: none is free to stop threads with".into())
}

/// The handler installed for `signal`, if it can be read.
fn handler_of(signal: i32) -> Option<usize> {
    // SAFETY: reading the current action into a zeroed struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(signal, std::ptr::null(), &mut old) == 0).then_some(old.sa_sigaction)
    }
}

/// The stop signal's handler: records where this thread was, waits for the release,
/// and serialises before it returns.
extern "C" fn on_stop(_: libc::c_int, _: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: `errno` is this thread's; saved and restored around the syscalls below.
    let errno = unsafe { *libc::__errno_location() };
    let gen = STOP.load(Ordering::Acquire);
    if gen != 0 {
        // SAFETY: with SA_SIGINFO the third argument is the interrupted context.
        let gregs = unsafe { (*(context as *const libc::ucontext_t)).uc_mcontext.gregs };
        let (ip, sp) = (gregs[libc::REG_RIP as usize] as u64, gregs[libc::REG_RSP as usize] as u64);
        // SAFETY: no arguments.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        let slot = ARRIVED.fetch_add(1, Ordering::AcqRel);
        if let Some(arrival) = ARRIVALS.get(slot) {
            arrival.ip.store(ip, Ordering::Release);
            arrival.sp.store(sp, Ordering::Release);
            arrival.tid.store(tid, Ordering::Release);
        }
        ARRIVED_WORD.fetch_add(1, Ordering::AcqRel);
        futex_wake(&ARRIVED_WORD);
        loop {
            let seen = RELEASED_WORD.load(Ordering::Acquire);
            if RELEASE.load(Ordering::Acquire) >= gen {
                break;
            }
            futex_wait(&RELEASED_WORD, seen, 10_000);
        }
        serialise();
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Two functions whose first instruction is shorter than a jump (`sub $imm8,
    /// %rsp`, 4 bytes, then a store of the argument), so that a thread interrupted
    /// inside the first five bytes is common: the case a plain write tears.
    #[inline(never)]
    extern "C" fn old_code(x: u64) -> u64 {
        let frame = std::hint::black_box([x; 2]);
        frame[1] + 1
    }

    #[inline(never)]
    extern "C" fn new_code(x: u64) -> u64 {
        let frame = std::hint::black_box([x; 2]);
        frame[1] + 2
    }

    /// Stops involve every thread of the test binary: tests that stop run one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    #[test]
    fn sites_within_a_page_share_a_write_with_the_code_between_kept() {
        let code = [0x90u8; 64];
        let base = code.as_ptr() as u64;
        let site = |offset: u64, byte: u8| Site { at: base + offset, bytes: [byte; 5] };
        // SAFETY: every site and the bytes between lie in `code`.
        let spans = unsafe { Span::cover(&[site(40, 2), site(0, 1), site(20, 3)]) };
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].at, spans[0].new.len()), (base, 45));
        assert_eq!(&spans[0].new[..6], &[1, 1, 1, 1, 1, 0x90]);
        assert_eq!(&spans[0].new[20..26], &[3, 3, 3, 3, 3, 0x90]);
        // What a failed write puts back: each site's own bytes.
        assert!(spans[0].old.iter().all(|(_, bytes)| bytes == &[0x90; 5]));
        let sites: Vec<u64> = spans[0].old.iter().map(|(at, _)| at - base).collect();
        assert_eq!(sites, [0, 20, 40]);
        // SAFETY: two single sites, far apart: each lies in its own array.
        let far = [0u8; 5];
        let spans = unsafe { Span::cover(&[site(0, 1), Site { at: far.as_ptr() as u64, bytes: [4; 5] }]) };
        let far_apart = (far.as_ptr() as u64).abs_diff(base) >= 4096 + 5;
        assert_eq!(spans.len(), if far_apart { 2 } else { 1 });
    }

    #[test]
    fn a_jump_reaches_within_rel32_only() {
        let site = Site::jump(0x1000, 0x2000).unwrap();
        assert_eq!(site.bytes, [0xe9, 0xfb, 0x0f, 0, 0]);
        assert!(Site::jump(0x1000, 0x1_0000_1000).is_none());
        assert!(site.holds(0x1001) && site.holds(0x1004) && !site.holds(0x1000) && !site.holds(0x1005));
    }

    /// A loop that runs until told to stop, sleeping between turns: interrupted, its
    /// thread is inside it or has a return address into it on its stack.
    #[inline(never)]
    fn running_loop(stop: &AtomicBool) -> u64 {
        let mut turns = 0;
        while !stop.load(Ordering::Relaxed) {
            turns = std::hint::black_box(turns + 1);
            std::thread::sleep(Duration::from_millis(1));
        }
        turns
    }

    /// A write names the old code a thread is running (a loop that never returns), and
    /// not code no thread is in.
    #[test]
    fn a_function_a_thread_is_running_is_found_on_its_stack() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let entry = old_code as *const () as u64;
        let mut bytes = [0u8; 5];
        // SAFETY: reading the first bytes of a function of this binary.
        unsafe { std::ptr::copy_nonoverlapping(entry as *const u8, bytes.as_mut_ptr(), 5) };
        let stop = Arc::new(AtomicBool::new(false));
        let looping = {
            let stop = stop.clone();
            std::thread::spawn(move || running_loop(&stop))
        };
        std::thread::sleep(Duration::from_millis(20));
        let at = running_loop as *const () as u64;
        // The loop's code lies within 4 KiB of its entry; no thread is in `old_code`'s
        // first 8 bytes (it calls nothing).
        let ranges = [(at, at + 4096), (entry, entry + 8)];
        // SAFETY: `old_code`'s entry gets its own bytes back: nothing changes.
        let stats = unsafe { write_sites(&[Site { at: entry, bytes }], &ranges) }.expect("written");
        stop.store(true, Ordering::Relaxed);
        assert!(looping.join().unwrap() > 0);
        assert_eq!(stats.running, [true, false]);
    }

    /// A stack scanned after its mapping went away (a thread that exited between the
    /// reading of the mappings and the stop; threads started and joined in a loop
    /// crashed the process about once in ten runs): the scan ends where the memory
    /// does, and reads what is still there.
    #[test]
    fn a_stack_unmapped_since_the_mappings_were_read_ends_the_scan() {
        let files = Files::open().unwrap();
        let len = 4 * SCAN_CHUNK * 8;
        // SAFETY: a fresh anonymous mapping, written and unmapped by this test only.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let start = base as u64;
        // SAFETY: inside the mapping just made.
        unsafe { *(base as *mut u64) = 0x1234 };
        let mut stacks = Stacks { mappings: vec![(start, start + len as u64)], buffer: vec![0; SCAN_CHUNK] };
        let mut seen = Vec::new();
        stacks.scan(&files, start, &mut |w| seen.push(w));
        assert_eq!((seen.len(), seen[0]), (len / 8, 0x1234));
        // The last half goes away, then all of it.
        // SAFETY: unmapping pages of the mapping made above.
        unsafe { libc::munmap((start + len as u64 / 2) as *mut libc::c_void, len / 2) };
        seen.clear();
        stacks.scan(&files, start, &mut |w| seen.push(w));
        assert_eq!(seen.len(), len / 16);
        // SAFETY: as above.
        unsafe { libc::munmap(base, len / 2) };
        seen.clear();
        stacks.scan(&files, start, &mut |w| seen.push(w));
        assert!(seen.is_empty());
    }

    /// 8 threads call the function through a `fn` pointer in tight loops while its
    /// entry is rewritten 1,000 times, half of them over the original prologue: every
    /// result is the old or the new value, and nothing crashes. (Plain writes instead
    /// of stops crashed this within 1,500 to 15,000 writes when measured.)
    #[test]
    fn threads_calling_a_function_see_old_or_new_code_while_its_entry_is_rewritten() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let entry = old_code as *const () as u64;
        let original = {
            let mut bytes = [0u8; 5];
            // SAFETY: reading the first bytes of a function of this binary.
            unsafe { std::ptr::copy_nonoverlapping(entry as *const u8, bytes.as_mut_ptr(), 5) };
            Site { at: entry, bytes }
        };
        let jump = Site::jump(entry, new_code as *const () as u64).expect("same binary: within reach");
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (stop, calls) = (stop.clone(), calls.clone());
                std::thread::spawn(move || {
                    let f = std::hint::black_box(old_code as extern "C" fn(u64) -> u64);
                    while !stop.load(Ordering::Relaxed) {
                        let got = f(std::hint::black_box(40));
                        assert!(got == 41 || got == 42, "a torn redirect returned {got}");
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut retried = 0;
        let mut held = 0u64;
        for i in 0..1000 {
            let site = if i % 2 == 0 { jump } else { original };
            // SAFETY: the entry of `old_code`, which nothing branches into; the bytes
            // are a jump to a function of the same signature, or its own first bytes.
            let stats = unsafe { write_sites(&[site], &[]) }.expect("written");
            assert!(stats.threads >= 8, "{stats:?}");
            retried += stats.attempts - 1;
            held += stats.held_micros;
            // Let the callers run between rewrites, through the code just written.
            let until = calls.load(Ordering::Relaxed) + 1;
            while calls.load(Ordering::Relaxed) < until {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("no caller saw torn code");
        }
        // SAFETY: as above, back to the original code.
        unsafe { write_sites(&[original], &[]) }.unwrap();
        assert_eq!(old_code(1), 2);
        assert!(calls.load(Ordering::Relaxed) >= 1000, "the callers ran");
        eprintln!("{retried} retries, {held} µs held in all");
    }

    /// Code whose first five bytes a thread stays inside: `xor eax, eax; syscall; ret`,
    /// a `read` that blocks with its instruction pointer on the `syscall` (2) or after
    /// it (4). Mapped read+execute; never unmapped (a test's few bytes).
    fn blocking_read_code() -> u64 {
        const CODE: [u8; 5] = [0x31, 0xc0, 0x0f, 0x05, 0xc3];
        // SAFETY: a fresh anonymous mapping, written, then made read+execute.
        unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(page, libc::MAP_FAILED);
            std::ptr::copy_nonoverlapping(CODE.as_ptr(), page.cast::<u8>(), CODE.len());
            assert_eq!(libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC), 0);
            page as u64
        }
    }

    #[test]
    fn no_write_while_a_thread_stands_inside_the_bytes() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let code = blocking_read_code();
        let mut fds = [0; 2];
        // SAFETY: a pipe for the blocked reader.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (read_end, write_end) = (fds[0], fds[1]);
        let reader = std::thread::spawn(move || {
            // SAFETY: the code above follows the C ABI of `read(fd, buf, len)`.
            let read: extern "C" fn(i32, *mut u8, usize) -> isize = unsafe { std::mem::transmute(code) };
            let mut byte = 0u8;
            read(read_end, &mut byte, 1)
        });
        std::thread::sleep(Duration::from_millis(50));
        // The reader is blocked inside the first five bytes: never written over.
        let site = Site { at: code, bytes: [0x90; 5] };
        // SAFETY: nothing branches into the code but to its start, and the test
        // expects nothing to be written while the reader is inside.
        let err = unsafe { write_sites(&[site], &[]) }.unwrap_err();
        assert!(err.contains("stayed inside"), "{err}");
        // SAFETY: reading the code's first bytes: unchanged.
        assert_eq!(unsafe { *(code as *const [u8; 5]) }, [0x31, 0xc0, 0x0f, 0x05, 0xc3]);
        // SAFETY: waking the reader with one byte.
        assert_eq!(unsafe { libc::write(write_end, [7u8].as_ptr().cast(), 1) }, 1);
        assert_eq!(reader.join().unwrap(), 1, "the reader read through its own code");
    }

    #[test]
    fn threads_started_and_finished_during_stops_do_not_hold_them_up() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let stop = Arc::new(AtomicBool::new(false));
        let spawner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::thread::spawn(|| std::hint::black_box(1)).join();
                }
            })
        };
        let entry = new_code as *const () as u64;
        let mut bytes = [0u8; 5];
        // SAFETY: reading the first bytes of a function of this binary.
        unsafe { std::ptr::copy_nonoverlapping(entry as *const u8, bytes.as_mut_ptr(), 5) };
        for _ in 0..50 {
            // SAFETY: the function's own bytes written back: nothing changes.
            unsafe { write_sites(&[Site { at: entry, bytes }], &[]) }.expect("stopped");
        }
        stop.store(true, Ordering::Relaxed);
        spawner.join().unwrap();
    }

    #[test]
    fn a_thread_that_blocks_the_signal_is_named_and_nothing_is_written() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let blocker = {
            let done = done.clone();
            std::thread::spawn(move || {
                // SAFETY: blocking every signal for this thread only.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                }
                ready_tx.send(()).unwrap();
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        ready_rx.recv().unwrap();
        let entry = new_code as *const () as u64;
        let jump = Site::jump(entry, old_code as *const () as u64).unwrap();
        // SAFETY: as in the tests above; it must not be written.
        let err = unsafe { write_sites(&[jump], &[]) }.unwrap_err();
        assert!(err.contains("did not answer the stop signal"), "{err}");
        assert_eq!(new_code(1), 3, "nothing was written");
        done.store(true, Ordering::Relaxed);
        blocker.join().unwrap();
        // The blocked signal stays pending in that thread until it exits: harmless.
    }

    extern "C" fn programs_own_handler(_: i32) {}

    /// The program takes the signal the agent stops threads with: the next stop leaves
    /// the program's handler in place and picks another signal, and stops still work.
    #[test]
    fn a_signal_the_program_takes_for_itself_is_left_to_it() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let first = stop_signal().unwrap();
        // SAFETY: installing a handler that does nothing, as a program would.
        unsafe { libc::signal(first, programs_own_handler as *const () as libc::sighandler_t) };
        let second = stop_signal().unwrap();
        assert_ne!(second, first);
        assert_eq!(handler_of(first), Some(programs_own_handler as *const () as usize), "the program's handler");
        let entry = old_code as *const () as u64;
        let mut original = Site { at: entry, bytes: [0; 5] };
        // SAFETY: reading the first bytes of a function of this binary.
        unsafe { std::ptr::copy_nonoverlapping(entry as *const u8, original.bytes.as_mut_ptr(), 5) };
        let jump = Site::jump(entry, new_code as *const () as u64).unwrap();
        // SAFETY: as in the tests above: a jump to a function of the same signature,
        // then its own first bytes back.
        unsafe { write_sites(&[jump], &[]) }.unwrap();
        assert_eq!(std::hint::black_box(old_code as extern "C" fn(u64) -> u64)(40), 42, "the jump was written");
        // SAFETY: as above.
        unsafe { write_sites(&[original], &[]) }.unwrap();
        assert_eq!(SIGNAL.load(Ordering::Relaxed), second);
        // SAFETY: the signal's default action again, as before the test.
        unsafe { libc::signal(first, libc::SIG_DFL) };
    }
}
