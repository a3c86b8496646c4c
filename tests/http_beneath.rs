//! `zc send --http` resolves a path beneath the source it names at request
//! time: a directory swapped for a link to elsewhere, after any check,
//! never leads a request out of the source.

#![cfg(unix)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::http::*;

/// Swaps `dir/sub` between a real directory and a link to `outside`,
/// by renames, until `stop`.
fn swapper(dir: &Path, outside: &Path, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let (real, link, sub) = (dir.join("real"), dir.join("link"), dir.join("sub"));
    std::os::unix::fs::symlink(outside, &link).unwrap();
    thread::spawn(move || {
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            for held in [&real, &link] {
                std::fs::rename(held, &sub).unwrap();
                std::fs::rename(&sub, held).unwrap();
                swaps += 1;
            }
        }
        swaps
    })
}

#[test]
fn http_a_directory_swapped_for_a_link_never_serves_what_is_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(src.join("real")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(src.join("real/f"), b"inside").unwrap();
    std::fs::write(outside.join("f"), b"not served").unwrap();
    let server = serve(&[], &[&src]);
    let path = format!("{}src/sub/f", server.prefix());
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(&src, &outside, stop.clone());
    let (mut inside, mut escaped) = (0, 0);
    for _ in 0..3000 {
        let got = raw(server.addr, &get(&path, ""));
        inside += usize::from(got.ends_with("\r\n\r\ninside"));
        escaped += usize::from(got.contains("not served"));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    assert_eq!(
        escaped, 0,
        "{escaped} of 3000 requests read outside the source ({inside} inside, {swaps} swaps)"
    );
    // the check is a real one: the file inside was reached between swaps
    assert!(inside > 0, "never served from inside ({swaps} swaps)");
}
