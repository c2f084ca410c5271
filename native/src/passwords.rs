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

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use crossbeam_channel::{Receiver, Sender, TrySendError};

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
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError)
}

/// Whether `password` matches the PHC string `phc`.
///
/// Returns `false` — never panics — when `phc` is not a well-formed argon2
/// hash, or asks for more than [`MAX_VERIFY_M_COST`], [`MAX_VERIFY_T_COST`]
/// or [`MAX_VERIFY_P_COST`]. The comparison of the hashes is constant-time.
/// Slow on purpose, like [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
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
    // The hash's own algorithm, version and parameters are used, not the
    // defaults of this `Argon2` value.
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
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

    /// Does the work on the calling thread. This is what a pool worker runs.
    pub fn run(self) -> JobResult {
        match self {
            Job::Hash { id, password } => JobResult::Hashed {
                id,
                result: hash_password(&password).map_err(|e| e.to_string()),
            },
            Job::Verify { id, password, phc } => JobResult::Verified {
                id,
                ok: verify_password(&password, &phc),
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

/// The function a worker applies to each job ([`Job::run`], or a stand-in in
/// tests).
type Handler = Arc<dyn Fn(Job) -> JobResult + Send + Sync>;

/// A pool of threads that hash and verify passwords.
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
        Self::start(workers, queue_bound, Arc::new(Job::run))
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
fn work(jobs: &Receiver<Job>, results: &Sender<JobResult>, handler: &dyn Fn(Job) -> JobResult) {
    for job in jobs.iter() {
        let id = job.id();
        let is_hash = matches!(job, Job::Hash { .. });
        // A job that panics still gets an answer, so no caller waits forever,
        // and the worker stays alive.
        let result = panic::catch_unwind(AssertUnwindSafe(|| handler(job)))
            .unwrap_or_else(|_| Job::failed(id, is_hash));
        // The pool holds the results receiver, so this fails only when the
        // caller has dropped every clone after the pool: nobody is listening.
        if results.send(result).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let handler: Handler = Arc::new(move |job: Job| {
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

    #[test]
    fn panicking_job_still_answers() {
        let handler: Handler = Arc::new(|job: Job| panic!("job {} exploded", job.id()));
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
