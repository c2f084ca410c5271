//! Password hashing, and a worker pool that keeps it off the event loop.
//!
//! Passwords are hashed with **argon2id**, version 19 (0x13), with the
//! `argon2` crate's default cost — `m=19456` KiB (19 MiB) of memory, `t=2`
//! passes, `p=1` lane, the OWASP recommendation — and a fresh random 16-byte
//! salt from the operating system for every hash. The result is a PHC string
//! such as `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, which carries its
//! own parameters, so hashes made with other costs still verify.
//!
//! One hash costs tens of milliseconds of CPU in an optimized build, which is
//! far too long for a network event loop. [`PasswordWorkers`] runs the work
//! on a few threads: the loop [`submit`](PasswordWorkers::submit)s a [`Job`]
//! without ever blocking, and later receives the [`JobResult`] on the
//! [`results`](PasswordWorkers::results) channel, for instance in a
//! `crossbeam_channel::select!` beside its socket.
//!
//! # Scheduling priority
//!
//! Each worker thread lowers its own scheduling priority when it starts, so
//! that on a machine with few cores the datagram loop and the other threads
//! of normal priority take the CPU from it as soon as they have work: a burst
//! of logins delays logins, not chat traffic. On Linux a worker sets its nice
//! value to 19, the lowest priority of the normal policy. Not `SCHED_IDLE`:
//! it would preempt the worker hardly sooner, but under sustained load it gives
//! the worker a fifth of the CPU share nice 19 gives, so logins would all but
//! starve rather than slow down. On macOS a worker takes the lowest priority
//! of its policy, on Windows `THREAD_PRIORITY_LOWEST`.
//! A platform that refuses the change is logged at debug level and the
//! worker runs on at the priority it had: that is not an error.
//!
//! # Memory
//!
//! argon2 fills `m` KiB of working memory for every hash (19 MiB by
//! default). Allocating and freeing that for each job made glibc keep the
//! freed blocks in per-thread arenas (its mmap threshold rises after the
//! first free), and a busy server's resident memory grew far beyond what the
//! hashes in progress needed. So each worker keeps one buffer of argon2
//! blocks from job to job: allocated at its first job, at the size that job
//! needs (19 MiB for the default parameters), grown only for a stored hash
//! that asks for more memory (at most [`MAX_VERIFY_M_COST`]), and shrunk back
//! to the default size as soon as such a job is done. A pool therefore holds
//! about 19 MiB per worker that has run a job, and never much more. The
//! plain functions [`hash_password`], [`verify_password`] and [`Job::run`],
//! called outside a pool, allocate their memory for the call as before.

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use thread_priority::ThreadPriority;

/// Largest memory cost, in KiB, that [`verify_password`] accepts from a hash
/// (256 MiB). A stored hash asking for more is treated as malformed rather
/// than allowed to exhaust memory.
pub const MAX_VERIFY_M_COST: u32 = 256 * 1024;
/// Largest time cost (passes) that [`verify_password`] accepts from a hash.
pub const MAX_VERIFY_T_COST: u32 = 16;
/// Largest parallelism (lanes) that [`verify_password`] accepts from a hash.
pub const MAX_VERIFY_P_COST: u32 = 16;

/// Default bound of the [`PasswordWorkers`] job queue: jobs accepted but not
/// yet started. Beyond it [`PasswordWorkers::submit`] answers [`Full`].
pub const DEFAULT_QUEUE_BOUND: usize = 1024;

/// Hashing a password failed.
///
/// With the default parameters this only happens if the operating system
/// cannot provide random bytes for the salt, or the password is longer than
/// argon2 allows (4 GiB).
#[derive(Debug)]
pub struct PasswordError(password_hash::Error);

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "password hashing failed: {}", self.0)
    }
}

impl std::error::Error for PasswordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Hashes `password` with argon2id (v19, m=19456 KiB, t=2, p=1) and a random
/// salt, returning the PHC string.
///
/// Slow on purpose (tens of milliseconds, far more in a debug build): call it
/// from a [`PasswordWorkers`] pool, not from an event loop.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_in(password, &mut Memory::new())
}

/// Whether `password` matches the PHC string `phc`.
///
/// Returns `false` — never panics — when `phc` is not a well-formed argon2
/// hash, or asks for more than [`MAX_VERIFY_M_COST`], [`MAX_VERIFY_T_COST`]
/// or [`MAX_VERIFY_P_COST`]. The comparison of the hashes is constant-time.
/// Slow on purpose, like [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_in(password, phc, &mut Memory::new())
}

/// [`hash_password`] with its working memory in `memory`.
fn hash_in(password: &str, memory: &mut Memory) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    let argon2 = Argon2::new(algorithm, version, Params::DEFAULT);
    let output_len = Params::DEFAULT
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output =
        compute(&argon2, password, salt.as_salt(), output_len, memory).map_err(PasswordError)?;
    let hash = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&Params::DEFAULT).map_err(PasswordError)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// [`verify_password`] with its working memory in `memory`.
fn verify_in(password: &str, phc: &str, memory: &mut Memory) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST
        || params.t_cost() > MAX_VERIFY_T_COST
        || params.p_cost() > MAX_VERIFY_P_COST
    {
        return false;
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    // The hash's own algorithm (any argon2 variant), version and parameters
    // are used; a hash without a version is version 19.
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let argon2 = Argon2::new(algorithm, version, params);
    match compute(&argon2, password, salt, expected.len(), memory) {
        // `Output` compares in constant time.
        Ok(output) => output == expected,
        Err(_) => false,
    }
}

/// The argon2 hash of `password` with `salt` and `argon2`'s algorithm,
/// version and parameters, `output_len` bytes long, computed in `memory`.
fn compute(
    argon2: &Argon2<'_>,
    password: &str,
    salt: Salt<'_>,
    output_len: usize,
    memory: &mut Memory,
) -> password_hash::Result<Output> {
    let mut salt_bytes = [0; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let blocks = memory.blocks(argon2.params());
    Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
            .map_err(password_hash::Error::from)
    })
}

/// argon2's working memory, which a pool worker keeps from one job to the
/// next (see the [module documentation](self#memory)).
///
/// Reusing blocks without clearing them is sound: argon2 writes every block
/// of the memory it uses in its first pass before reading it.
struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// The blocks (of 1 KiB) that the default parameters need: 19456.
    const DEFAULT_BLOCKS: usize = Params::DEFAULT.block_count();

    /// No memory yet: the first job allocates it.
    const fn new() -> Self {
        Memory { blocks: Vec::new() }
    }

    /// The blocks for a hash with `params`, the buffer grown if it is too
    /// small.
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            // The old buffer is freed first: nothing to copy, a lower peak.
            self.blocks = Vec::new();
            self.blocks.resize(needed, Block::new());
        }
        &mut self.blocks[..needed]
    }

    /// Shrinks the buffer back to the default size after a job that needed
    /// more.
    fn settle(&mut self) {
        if self.blocks.capacity() > Self::DEFAULT_BLOCKS {
            self.blocks.truncate(Self::DEFAULT_BLOCKS);
            self.blocks.shrink_to_fit();
        }
    }
}

/// Work for a [`PasswordWorkers`] pool. The `id` is the caller's, echoed in
/// the [`JobResult`] so it can match answers to requests.
#[derive(Clone, PartialEq, Eq)]
pub enum Job {
    /// Hash a new password (registration).
    Hash {
        /// The caller's identifier for this job.
        id: u64,
        /// The password in clear.
        password: String,
    },
    /// Check a password against a stored hash (login).
    Verify {
        /// The caller's identifier for this job.
        id: u64,
        /// The password in clear.
        password: String,
        /// The stored PHC string.
        phc: String,
    },
}

impl Job {
    /// The caller's identifier for this job.
    pub fn id(&self) -> u64 {
        match self {
            Job::Hash { id, .. } | Job::Verify { id, .. } => *id,
        }
    }

    /// Does the work on the calling thread. This is what a pool worker runs,
    /// except that a worker reuses its working memory from job to job.
    pub fn run(self) -> JobResult {
        self.run_in(&mut Memory::new())
    }

    /// [`run`](Self::run) with its working memory in `memory`.
    fn run_in(self, memory: &mut Memory) -> JobResult {
        match self {
            Job::Hash { id, password } => JobResult::Hashed {
                id,
                result: hash_in(&password, memory).map_err(|e| e.to_string()),
            },
            Job::Verify { id, password, phc } => JobResult::Verified {
                id,
                ok: verify_in(&password, &phc, memory),
            },
        }
    }

    /// The answer given for this job when its work failed unexpectedly
    /// (a panic): an error for a hash, a mismatch for a check.
    fn failed(id: u64, is_hash: bool) -> JobResult {
        if is_hash {
            JobResult::Hashed {
                id,
                result: Err("internal error while hashing the password".to_owned()),
            }
        } else {
            JobResult::Verified { id, ok: false }
        }
    }
}

impl fmt::Debug for Job {
    // Passwords never reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Job::Hash { id, .. } => f
                .debug_struct("Hash")
                .field("id", id)
                .field("password", &"<redacted>")
                .finish(),
            Job::Verify { id, .. } => f
                .debug_struct("Verify")
                .field("id", id)
                .field("password", &"<redacted>")
                .field("phc", &"<redacted>")
                .finish(),
        }
    }
}

/// The answer to a [`Job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// Answer to [`Job::Hash`].
    Hashed {
        /// The job's identifier.
        id: u64,
        /// The PHC string, or why hashing failed.
        result: Result<String, String>,
    },
    /// Answer to [`Job::Verify`].
    Verified {
        /// The job's identifier.
        id: u64,
        /// Whether the password matches the hash (`false` for a malformed
        /// hash).
        ok: bool,
    },
}

impl JobResult {
    /// The identifier of the job this answers.
    pub fn id(&self) -> u64 {
        match self {
            JobResult::Hashed { id, .. } | JobResult::Verified { id, .. } => *id,
        }
    }
}

/// [`PasswordWorkers::submit`] refused a job because the queue is full; the
/// job is handed back. The caller should answer "busy, try again later"
/// rather than wait.
#[derive(Debug)]
pub struct Full(pub Job);

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "password worker queue is full (job {})", self.0.id())
    }
}

impl std::error::Error for Full {}

/// The function a worker applies to each job, with the worker's memory
/// ([`Job::run_in`], or a stand-in in tests).
type Handler = Arc<dyn Fn(Job, &mut Memory) -> JobResult + Send + Sync>;

/// A pool of threads that hash and verify passwords.
///
/// Each worker runs at the lowest scheduling priority it may take and keeps
/// one buffer of working memory (see the [module documentation](self)).
///
/// Jobs wait in a bounded queue ([`DEFAULT_QUEUE_BOUND`] by default);
/// [`submit`](Self::submit) never blocks and reports [`Full`] instead, so the
/// network loop cannot stall behind a burst of logins. Each accepted job gets
/// exactly one [`JobResult`] on [`results`](Self::results), in completion
/// order (not submission order), unless the pool is shut down before a worker
/// starts it. The results channel is unbounded: the caller keeps it drained.
///
/// Dropping the pool, or calling [`shutdown`](Self::shutdown), discards the
/// jobs still waiting in the queue, lets the workers finish the jobs they are
/// running, and joins them.
pub struct PasswordWorkers {
    /// `None` once stopping.
    jobs: Option<Sender<Job>>,
    /// A receiving end kept by the pool, so that the queue never reports
    /// "disconnected" while the pool lives, and to discard waiting jobs at
    /// shutdown.
    waiting: Receiver<Job>,
    results: Receiver<JobResult>,
    threads: Vec<JoinHandle<()>>,
    queue_bound: usize,
}

impl fmt::Debug for PasswordWorkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordWorkers")
            .field("workers", &self.threads.len())
            .field("queue_bound", &self.queue_bound)
            .field("queued", &self.waiting.len())
            .finish()
    }
}

impl PasswordWorkers {
    /// The default number of workers: the available parallelism, at least 1.
    pub fn default_workers() -> NonZeroUsize {
        thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
    }

    /// Starts a pool of [`default_workers`](Self::default_workers) threads
    /// with a queue of [`DEFAULT_QUEUE_BOUND`] jobs.
    ///
    /// Fails only if a thread cannot be spawned.
    pub fn new() -> io::Result<Self> {
        Self::with_config(Self::default_workers(), DEFAULT_QUEUE_BOUND)
    }

    /// Starts a pool of `workers` threads with a queue of at most
    /// `queue_bound` waiting jobs. With a bound of 0, a job is accepted only
    /// when a worker is idle and waiting for it.
    ///
    /// Fails only if a thread cannot be spawned; the threads already started
    /// are then stopped.
    pub fn with_config(workers: NonZeroUsize, queue_bound: usize) -> io::Result<Self> {
        Self::start(workers, queue_bound, Arc::new(Job::run_in))
    }

    fn start(workers: NonZeroUsize, queue_bound: usize, handler: Handler) -> io::Result<Self> {
        let (jobs, waiting) = crossbeam_channel::bounded::<Job>(queue_bound);
        let (results_tx, results) = crossbeam_channel::unbounded();
        let mut pool = PasswordWorkers {
            jobs: Some(jobs),
            waiting: waiting.clone(),
            results,
            threads: Vec::with_capacity(workers.get()),
            queue_bound,
        };
        for i in 0..workers.get() {
            let jobs = waiting.clone();
            let results = results_tx.clone();
            let handler = Arc::clone(&handler);
            // On error, dropping `pool` stops the workers already spawned.
            let thread = thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || work(&jobs, &results, &*handler))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Queues `job` without blocking; hands it back in [`Full`] when the
    /// queue is at its bound.
    pub fn submit(&self, job: Job) -> Result<(), Full> {
        let Some(jobs) = &self.jobs else {
            return Err(Full(job));
        };
        jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => Full(job),
        })
    }

    /// The channel on which results arrive, for `recv` or `select!`. Clone
    /// it to keep it beyond the pool; it disconnects once the pool has shut
    /// down and every result has been received.
    pub fn results(&self) -> &Receiver<JobResult> {
        &self.results
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// The bound of the job queue.
    pub fn queue_bound(&self) -> usize {
        self.queue_bound
    }

    /// The number of jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.waiting.len()
    }

    /// Stops the pool: discards waiting jobs, waits for the running ones to
    /// finish (their results are still delivered) and joins the threads.
    /// Dropping the pool does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Workers leave their loop once the queue is empty and has no sender.
        drop(self.jobs.take());
        // Do not make shutdown wait for a full queue of slow hashes.
        while self.waiting.try_recv().is_ok() {}
        for thread in self.threads.drain(..) {
            // A worker only ends by panicking outside a job, and then it has
            // nothing left to clean up.
            let _ = thread.join();
        }
    }
}

impl Drop for PasswordWorkers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A worker thread's loop.
fn work(
    jobs: &Receiver<Job>,
    results: &Sender<JobResult>,
    handler: &dyn Fn(Job, &mut Memory) -> JobResult,
) {
    lower_own_priority();
    let mut memory = Memory::new();
    for job in jobs.iter() {
        let result = serve(job, &mut memory, handler);
        // The pool holds the results receiver, so this fails only when the
        // caller has dropped every clone after the pool: nobody is listening.
        if results.send(result).is_err() {
            return;
        }
    }
}

/// Runs one job for a worker whose memory is `memory`.
fn serve(
    job: Job,
    memory: &mut Memory,
    handler: &dyn Fn(Job, &mut Memory) -> JobResult,
) -> JobResult {
    let id = job.id();
    let is_hash = matches!(job, Job::Hash { .. });
    // A job that panics still gets an answer, so no caller waits forever,
    // and the worker stays alive. Its memory is overwritten by the next job.
    let result = panic::catch_unwind(AssertUnwindSafe(|| handler(job, memory)))
        .unwrap_or_else(|_| Job::failed(id, is_hash));
    // A stored hash that asked for more than the default memory does not
    // leave that much behind.
    memory.settle();
    result
}

/// Lowers the calling thread's scheduling priority as far as an unprivileged
/// thread may, within its scheduling policy: nice 19 on Linux, the policy's
/// minimum on macOS, `THREAD_PRIORITY_LOWEST` on Windows. A failure is logged
/// at debug level and otherwise ignored.
///
/// Why nice 19 rather than `SCHED_IDLE` on Linux: with either, a thread of
/// the normal policy that wakes up (the datagram loop, when a datagram
/// arrives) preempts the worker at once in practice. But under sustained
/// load their CPU shares differ: against one busy nice-0 thread, a nice-19
/// thread weighs 15 against 1024 (about 1.4 % of a core) and a `SCHED_IDLE`
/// one 3 (0.3 %), so while the cores stay busy a 20 ms hash takes some 1.4 s
/// at nice 19 but about 7 s under `SCHED_IDLE`: logins would all but starve
/// and their queue fill up. Nice 19 keeps logins making progress, and is what
/// the same portable call gives on every platform.
fn lower_own_priority() {
    if let Err(e) = thread_priority::set_current_thread_priority(ThreadPriority::Min) {
        tracing::debug!("password worker keeps its scheduling priority: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    const TIMEOUT: Duration = Duration::from_secs(120);

    #[test]
    fn hash_then_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("", &phc));
        // A fresh salt each time.
        assert_ne!(phc, hash_password("correct horse").unwrap());
    }

    #[test]
    fn malformed_hash_is_false() {
        let phc = hash_password("pw").unwrap();
        let huge_memory = phc.replace("m=19456", "m=4194304");
        let many_passes = phc.replace("t=2", "t=1000");
        for bad in [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$!!!!$!!!!",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            &phc[..phc.len() - 5],
            &huge_memory,
            &many_passes,
        ] {
            assert!(!verify_password("pw", bad), "{bad}");
        }
    }

    #[test]
    fn job_debug_hides_passwords() {
        let job = Job::Verify {
            id: 7,
            password: "hunter2".into(),
            phc: "$argon2id$secret".into(),
        };
        let text = format!("{job:?}");
        assert!(text.contains('7'));
        assert!(
            !text.contains("hunter2") && !text.contains("secret"),
            "{text}"
        );
    }

    #[test]
    fn pool_answers_mixed_jobs_with_their_ids() {
        let phc = hash_password("right").unwrap();
        let pool = PasswordWorkers::with_config(NonZeroUsize::new(2).unwrap(), 64).unwrap();
        assert_eq!(pool.workers(), 2);
        for id in 0..20u64 {
            let job = match id % 3 {
                0 => Job::Hash {
                    id,
                    password: format!("pw{id}"),
                },
                1 => Job::Verify {
                    id,
                    password: "right".into(),
                    phc: phc.clone(),
                },
                _ => Job::Verify {
                    id,
                    password: "wrong".into(),
                    phc: phc.clone(),
                },
            };
            pool.submit(job).unwrap();
        }
        let mut answers = HashMap::new();
        for _ in 0..20 {
            let result = pool.results().recv_timeout(TIMEOUT).unwrap();
            assert!(answers.insert(result.id(), result).is_none());
        }
        for id in 0..20u64 {
            match (id % 3, &answers[&id]) {
                (
                    0,
                    JobResult::Hashed {
                        result: Ok(hash), ..
                    },
                ) => {
                    assert!(verify_password(&format!("pw{id}"), hash));
                }
                (1, JobResult::Verified { ok, .. }) => assert!(ok),
                (2, JobResult::Verified { ok, .. }) => assert!(!ok),
                (_, other) => panic!("job {id}: unexpected {other:?}"),
            }
        }
        let results = pool.results().clone();
        pool.shutdown();
        assert!(results.recv_timeout(TIMEOUT).is_err(), "disconnected");
    }

    /// A handler that reports each job's start, then waits for the gate
    /// (released by a send, or for good by dropping the gate's sender).
    fn gated() -> (Handler, Receiver<u64>, Sender<()>) {
        let (started_tx, started) = crossbeam_channel::unbounded();
        let (gate, gate_rx) = crossbeam_channel::unbounded::<()>();
        let handler: Handler = Arc::new(move |job: Job, _: &mut Memory| {
            let _ = started_tx.send(job.id());
            let _ = gate_rx.recv();
            match job {
                Job::Hash { id, .. } => JobResult::Hashed {
                    id,
                    result: Ok(String::new()),
                },
                Job::Verify { id, .. } => JobResult::Verified { id, ok: true },
            }
        });
        (handler, started, gate)
    }

    fn hash_job(id: u64) -> Job {
        Job::Hash {
            id,
            password: "pw".into(),
        }
    }

    #[test]
    fn submit_on_full_queue_returns_full() {
        let (handler, started, gate) = gated();
        let pool = PasswordWorkers::start(NonZeroUsize::MIN, 1, handler).unwrap();
        pool.submit(hash_job(1)).unwrap();
        assert_eq!(started.recv_timeout(TIMEOUT).unwrap(), 1); // the worker is busy
        pool.submit(hash_job(2)).unwrap(); // the queue holds one
        assert_eq!(pool.queued(), 1);
        let begun = Instant::now();
        match pool.submit(hash_job(3)) {
            Err(Full(job)) => assert_eq!(job.id(), 3),
            Ok(()) => panic!("a full queue accepted a job"),
        }
        assert!(begun.elapsed() < Duration::from_secs(5), "submit blocked");

        drop(gate); // let everything through
        let mut ids: Vec<_> = (0..2)
            .map(|_| pool.results().recv_timeout(TIMEOUT).unwrap().id())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn shutdown_discards_waiting_jobs_and_joins() {
        let (handler, started, gate) = gated();
        let pool = PasswordWorkers::start(NonZeroUsize::MIN, 4, handler).unwrap();
        pool.submit(hash_job(1)).unwrap();
        assert_eq!(started.recv_timeout(TIMEOUT).unwrap(), 1);
        pool.submit(hash_job(2)).unwrap();
        let results = pool.results().clone();
        let waiting = pool.waiting.clone();
        // Release the running job only once shutdown has emptied the queue.
        let releaser = thread::spawn(move || {
            let deadline = Instant::now() + TIMEOUT;
            while !waiting.is_empty() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            drop(gate);
        });
        pool.shutdown();
        releaser.join().unwrap();
        assert_eq!(results.recv_timeout(TIMEOUT).unwrap().id(), 1);
        assert!(
            results.recv_timeout(TIMEOUT).is_err(),
            "job 2 was discarded"
        );
        assert!(started.try_recv().is_err(), "job 2 never started");
    }

    /// The PHC string of `password` made by the plain argon2 crate with
    /// argon2id v19 and these costs.
    fn plain_hash(password: &str, m: u32, t: u32, p: u32) -> String {
        let params = Params::new(m, t, p, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    }

    fn plain_verify(password: &str, phc: &str) -> bool {
        Argon2::default()
            .verify_password(password.as_bytes(), &PasswordHash::new(phc).unwrap())
            .is_ok()
    }

    #[test]
    fn reused_memory_agrees_with_plain_argon2() {
        let mut memory = Memory::new();
        assert_eq!(memory.blocks.capacity(), 0, "allocated at the first job");
        // Several rounds, so that later ones run in memory left dirty by the
        // earlier ones.
        for round in 0..3 {
            let mine = hash_in("correct horse", &mut memory).unwrap();
            assert!(
                mine.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
                "{mine}"
            );
            assert!(plain_verify("correct horse", &mine), "round {round}");
            assert!(!plain_verify("correct horsE", &mine), "round {round}");

            let plain = plain_hash("battery staple", 19456, 2, 1);
            assert!(verify_in("battery staple", &plain, &mut memory));
            assert!(!verify_in("battery stapler", &plain, &mut memory));
            assert!(!verify_in("correct horse", &plain, &mut memory));
            assert!(verify_in("correct horse", &mine, &mut memory));
            assert_eq!(memory.blocks.len(), Memory::DEFAULT_BLOCKS);
        }
        assert_eq!(Memory::DEFAULT_BLOCKS, 19456);
    }

    #[test]
    fn other_costs_verify_and_memory_returns_to_default() {
        // The size of the buffer during the last job, after its work.
        let during = std::cell::Cell::new(0);
        let run = |memory: &mut Memory, job: Job| {
            let handler = |job: Job, memory: &mut Memory| {
                let result = job.run_in(memory);
                during.set(memory.blocks.len());
                result
            };
            serve(job, memory, &handler)
        };
        let verify = |id, password: &str, phc: &str| Job::Verify {
            id,
            password: password.into(),
            phc: phc.into(),
        };
        let mut memory = Memory::new();
        let JobResult::Hashed {
            result: Ok(mine), ..
        } = run(&mut memory, hash_job(1))
        else {
            panic!("hashing failed");
        };
        assert!(plain_verify("pw", &mine));
        assert_eq!(memory.blocks.capacity(), Memory::DEFAULT_BLOCKS);

        // More memory than the default: grown for the job, shrunk after it.
        let big = plain_hash("big", 32768, 1, 1);
        assert!(big.contains("$m=32768,t=1,p=1$"), "{big}");
        assert_eq!(
            run(&mut memory, verify(2, "big", &big)),
            JobResult::Verified { id: 2, ok: true }
        );
        assert_eq!(during.get(), 32768);
        assert_eq!(memory.blocks.capacity(), Memory::DEFAULT_BLOCKS);
        assert_eq!(
            run(&mut memory, verify(3, "bog", &big)),
            JobResult::Verified { id: 3, ok: false }
        );
        assert_eq!(memory.blocks.capacity(), Memory::DEFAULT_BLOCKS);

        // Less memory than the buffer holds, and several lanes.
        let small = plain_hash("small", 64, 3, 4);
        assert_eq!(
            run(&mut memory, verify(4, "small", &small)),
            JobResult::Verified { id: 4, ok: true }
        );
        assert_eq!(
            run(&mut memory, verify(5, "smell", &small)),
            JobResult::Verified { id: 5, ok: false }
        );
        assert_eq!(memory.blocks.capacity(), Memory::DEFAULT_BLOCKS);

        // The caps still apply, and a hash made afterwards still verifies.
        let over = plain_hash("x", 8, 17, 1);
        assert_eq!(
            run(&mut memory, verify(6, "x", &over)),
            JobResult::Verified { id: 6, ok: false }
        );
        let JobResult::Hashed {
            result: Ok(again), ..
        } = run(&mut memory, hash_job(7))
        else {
            panic!("hashing failed");
        };
        assert!(plain_verify("pw", &again));
        assert!(verify_in("pw", &mine, &mut memory));
        assert_eq!(memory.blocks.capacity(), Memory::DEFAULT_BLOCKS);
    }

    /// The nice value of the calling thread.
    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name, which ends with the last ')': the
        // state is field 3, the nice value field 19.
        let (_, fields) = stat.rsplit_once(')').unwrap();
        fields.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn workers_run_at_nice_19() {
        let (nice_tx, nice) = crossbeam_channel::unbounded();
        let handler: Handler = Arc::new(move |job: Job, _: &mut Memory| {
            let _ = nice_tx.send(own_nice());
            JobResult::Verified {
                id: job.id(),
                ok: true,
            }
        });
        let pool = PasswordWorkers::start(NonZeroUsize::new(2).unwrap(), 4, handler).unwrap();
        let before = own_nice();
        pool.submit(hash_job(1)).unwrap();
        assert_eq!(nice.recv_timeout(TIMEOUT).unwrap(), 19);
        assert_eq!(own_nice(), before, "the caller's priority is its own");
    }

    /// The figures `measure` prints, from `/proc/self/status` (Linux only).
    fn status_kib(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|line| line.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Runs verify jobs through a pool with `handler` and prints the
    /// process's resident memory before and after, and the rate. The number
    /// of workers and jobs come from `PASSWORD_MEASURE_WORKERS` (1) and
    /// `PASSWORD_MEASURE_JOBS` (200).
    fn measure(label: &str, handler: Handler) {
        let from_env = |name, default| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let workers = NonZeroUsize::new(from_env("PASSWORD_MEASURE_WORKERS", 1)).unwrap();
        let jobs: u64 = from_env("PASSWORD_MEASURE_JOBS", 200) as u64;
        let phc = hash_password("pw").unwrap();
        let pool = PasswordWorkers::start(workers, jobs as usize, handler).unwrap();
        let rss_before = status_kib("VmRSS:");
        let begun = Instant::now();
        for id in 0..jobs {
            pool.submit(Job::Verify {
                id,
                password: if id % 2 == 0 { "pw" } else { "wrong" }.into(),
                phc: phc.clone(),
            })
            .unwrap();
        }
        for _ in 0..jobs {
            let result = pool.results().recv_timeout(TIMEOUT).unwrap();
            let JobResult::Verified { id, ok } = result else {
                panic!("unexpected {result:?}");
            };
            assert_eq!(ok, id % 2 == 0);
        }
        let elapsed = begun.elapsed();
        let rss_after = status_kib("VmRSS:");
        pool.shutdown();
        println!(
            "{label}: {jobs} verifications on {workers} worker(s) in {elapsed:.2?}, \
             {:.1}/s; VmRSS before {rss_before:?} KiB, after {rss_after:?} KiB, \
             VmHWM {:?} KiB",
            jobs as f64 / elapsed.as_secs_f64(),
            status_kib("VmHWM:"),
        );
    }

    /// Measures the pool as it is. Run alone (the figures are the
    /// process's), in a release build:
    /// `cargo test --release -p udpchat-native --lib
    /// passwords::tests::measure_reused_memory -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn measure_reused_memory() {
        measure("memory reused", Arc::new(Job::run_in));
    }

    /// Measures the former way, memory allocated and freed for each job, to
    /// compare with [`measure_reused_memory`] (run alone, likewise).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn measure_memory_per_job() {
        measure(
            "memory allocated per job",
            Arc::new(|job: Job, _: &mut Memory| match job {
                Job::Hash { .. } => unreachable!("only verifications are measured"),
                Job::Verify { id, password, phc } => JobResult::Verified {
                    id,
                    ok: plain_verify(&password, &phc),
                },
            }),
        );
    }

    #[test]
    fn panicking_job_still_answers() {
        let handler: Handler =
            Arc::new(|job: Job, _: &mut Memory| panic!("job {} exploded", job.id()));
        let pool = PasswordWorkers::start(NonZeroUsize::MIN, 4, handler).unwrap();
        pool.submit(hash_job(1)).unwrap();
        pool.submit(Job::Verify {
            id: 2,
            password: "pw".into(),
            phc: "x".into(),
        })
        .unwrap();
        let first = pool.results().recv_timeout(TIMEOUT).unwrap();
        let second = pool.results().recv_timeout(TIMEOUT).unwrap();
        assert!(matches!(
            first,
            JobResult::Hashed {
                id: 1,
                result: Err(_)
            }
        ));
        assert_eq!(second, JobResult::Verified { id: 2, ok: false });
    }
}
