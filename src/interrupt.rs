//! Ctrl-C: the first asks every loop to stop cleanly, the second exits at once.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::{ExitCode, Failure};

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handler; call once, early in `main`.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("zc: interrupted again, exiting now");
            std::process::exit(ExitCode::Interrupted.code());
        }
    });
}

/// True once Ctrl-C (SIGINT) was received.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// The error every loop returns once Ctrl-C was pressed.
pub fn stopped() -> io::Error {
    io::Error::other(Failure::new(ExitCode::Interrupted, "interrupted"))
}
