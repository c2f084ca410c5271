//! The time slice the kernel gives a thread (Linux 6.12 and later).
//!
//! Linux's fair scheduler (EEVDF) lets a thread that wakes up preempt the
//! one running only when the woken thread's deadline comes first, and a
//! thread's deadline is its slice away: with the default slice (0.75 ms,
//! scaled up with the number of cores: 1.5 ms on two) a thread woken by a
//! datagram can wait about that long for a core that another thread
//! holds. A thread that asks for a shorter slice (`sched_setattr` with
//! `sched_runtime`, 0.1 to 100 ms) gets an earlier deadline each time it
//! wakes, and with it the core sooner, at the price of more switches.
//!
//! `chatbench --sched-slice-us` sets it for the bench's workers and
//! `--server-sched-slice-us` for every thread of the server under test, so
//! that a run can tell apart the latency the software adds from the wait
//! for a core on a machine the bench and the server share. Older kernels
//! take the call and ignore the value for these threads; [`set_slice`]
//! reads it back and says so.
//!
//! Neither `nix` nor `rustix` wraps `sched_setattr`: this module holds the
//! bench's one `unsafe` (the two system calls, on a struct of the kernel's
//! layout that lives across each call).

use std::io;
use std::time::Duration;

/// The shortest and longest slice the kernel accepts.
pub const RANGE_US: std::ops::RangeInclusive<u64> = 100..=100_000;

/// `struct sched_attr` as of Linux 3.14 (`SCHED_ATTR_SIZE_VER0`, 48 bytes);
/// later kernels accept this size.
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// `SCHED_OTHER` and `SCHED_BATCH`: the fair scheduler's policies.
#[cfg(target_os = "linux")]
const FAIR: [u32; 2] = [0, 3];

/// Sets the slice of thread `tid` (0: the calling thread), keeping its
/// policy and nice value; fails when the thread is not under the fair
/// scheduler, or the kernel refused or ignored the slice.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn set_slice(tid: i32, slice: Duration) -> io::Result<()> {
    let size = std::mem::size_of::<SchedAttr>() as u32;
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` is a live, writable struct of the layout the kernel
    // expects, and `size` is its size: the kernel writes at most that many
    // bytes into it.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, tid, &raw mut attr, size, 0u32) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if !FAIR.contains(&attr.policy) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "the thread is not under the fair scheduler (policy {})",
                attr.policy
            ),
        ));
    }
    let wanted = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    attr.size = size;
    attr.flags = 0;
    attr.runtime = wanted;
    // SAFETY: `attr` is a live struct of the kernel's layout with `size`
    // set to its size; the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, tid, &raw const attr, 0u32) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut check = SchedAttr::default();
    // SAFETY: as for the first call.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, tid, &raw mut check, size, 0u32) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if check.runtime != wanted {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel ignores the slice of a thread under the fair scheduler (Linux 6.12 and later honour it)",
        ));
    }
    Ok(())
}

/// Elsewhere there is no such setting.
#[cfg(not(target_os = "linux"))]
pub fn set_slice(_tid: i32, _slice: Duration) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "a thread's time slice can be set on Linux only",
    ))
}

/// Sets the slice of every thread of process `pid` (threads it starts
/// later keep the kernel's default); the first failure ends it.
pub fn set_process_slice(pid: u32, slice: Duration) -> io::Result<()> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let name = entry?.file_name();
        let Some(tid) = name.to_str().and_then(|t| t.parse::<i32>().ok()) else {
            continue;
        };
        set_slice(tid, slice)
            .map_err(|e| io::Error::new(e.kind(), format!("thread {tid}: {e}")))?;
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_slice_is_set_and_read_back_or_refused_with_a_reason() {
        // On a kernel that honours it the slice is the thread's (as
        // /proc shows it, where it shows it); on an older one the error
        // says why. Never silently nothing.
        let (got, shown) = std::thread::spawn(|| {
            let got = set_slice(0, Duration::from_micros(200));
            let shown = std::fs::read_to_string("/proc/thread-self/sched")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("se.slice"))
                        .and_then(|l| l.split(':').nth(1))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                });
            (got, shown)
        })
        .join()
        .expect("the thread ran");
        match got {
            Ok(()) => {
                if let Some(ns) = shown {
                    assert_eq!(ns, 200_000);
                }
            }
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("ignores")
                        || text.contains("fair scheduler")
                        || e.raw_os_error().is_some(),
                    "{text}"
                );
            }
        }
    }
}
