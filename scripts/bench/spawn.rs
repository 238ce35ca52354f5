//! `spawn REPORT PROGRAM [ARGS…]`: runs PROGRAM once, its stdio inherited,
//! and writes `<wall µs> <peak RSS KiB> <exit code>` to the file REPORT.
//!
//! scripts/bench.sh compiles this with rustc and times every run through it.
//! The wall time runs from just before the spawn to the return of wait4,
//! so it holds no interpreter's start-up, unlike timing `/usr/bin/time`
//! from Python (about 1.5 ms more, which the 10 ms `tiers` budget notices).
//! The peak RSS is wait4's ru_maxrss, what `/usr/bin/time -v` prints: a
//! child starts out in its parent's memory and the kernel keeps that
//! high-water mark across exec, so the parent must be small — this one is,
//! where the Python runner (~50 MiB with boto3) is not.

use std::process::Command;
use std::time::Instant;

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

/// `struct rusage` of Linux x86_64/aarch64: two timevals, then 14 longs.
#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: i64,
    rest: [i64; 13],
}

unsafe extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(report), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: spawn REPORT PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    let started = Instant::now();
    let child = Command::new(&program)
        .args(args)
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("spawn: cannot start {}: {e}", program.to_string_lossy());
            std::process::exit(2);
        });
    let mut status = 0;
    let mut usage = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: both pointers are to live, properly laid out locals.
    let reaped = unsafe { wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if reaped < 0 {
        eprintln!("spawn: wait4: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    // Exited: its code; killed by a signal: 128 + the signal, as shells say.
    let code = if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    };
    let line = format!("{} {} {code}\n", wall.as_micros(), usage.maxrss);
    if let Err(e) = std::fs::write(&report, line) {
        eprintln!("spawn: cannot write {}: {e}", report.to_string_lossy());
        std::process::exit(2);
    }
}
