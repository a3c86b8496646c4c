//! Ctrl-C: the first asks every loop to stop cleanly, the second exits at once.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// The exit status of a process Ctrl-C stopped (the contract's 130,
/// `exit::ExitCode::Interrupted`, which is defined as this).
pub const EXIT_STATUS: i32 = 130;

/// Installs the handler; call once, early in `main`.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("zc: interrupted again, exiting now");
            std::process::exit(EXIT_STATUS);
        }
    });
}

/// True once Ctrl-C (SIGINT) was received.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// What every loop returns once Ctrl-C was pressed. Loops that read or
/// write return `io::Error`s, so it travels as one's payload; it is not
/// `ErrorKind::Interrupted`, which `read_exact` and `write_all` retry.
/// Its exit code (130) comes from [`requested`], which is always true
/// where this error exists (`exit::code_of`).
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Stopped {}

/// The error every loop returns once Ctrl-C was pressed.
pub fn stopped() -> io::Error {
    io::Error::other(Stopped)
}
