//! The directories a live session of this process made (or took over
//! unfinished) and has not yet finished. Such a directory is in mode
//! [`UNFINISHED`](super::UNFINISHED) while it is filled, which is also how
//! a later session recognises one an interrupted session left behind: this
//! registry keeps a concurrent session of a `-k` receiver from taking a
//! directory another session still holds for that (and re-moding it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A directory, by device and inode.
pub(super) type DirId = (u64, u64);

/// Which live holder made (or took over) each unfinished directory.
static HELD: Mutex<Option<HashMap<DirId, u64>>> = Mutex::new(None);
static NEXT_HOLDER: AtomicU64 = AtomicU64::new(1);

fn held() -> MutexGuard<'static, Option<HashMap<DirId, u64>>> {
    // a panic while holding it leaves the map whole (each step is one insert or remove)
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// One session's hold on the directories it made: given back when it is
/// dropped, however the session ends.
#[derive(Debug)]
pub(super) struct Holder(u64);

impl Holder {
    pub(super) fn new() -> Holder {
        Holder(NEXT_HOLDER.fetch_add(1, Ordering::Relaxed))
    }

    /// Holds a directory this session just made (an inode reused after
    /// another holder's directory was removed becomes this one's).
    pub(super) fn made(&self, dir: DirId) {
        held().get_or_insert_with(HashMap::new).insert(dir, self.0);
    }

    /// Takes over an unfinished directory, unless another live session
    /// holds it: `false` then, and it is to be left as it is.
    pub(super) fn take(&self, dir: DirId) -> bool {
        let mut held = held();
        let map = held.get_or_insert_with(HashMap::new);
        match map.get(&dir) {
            Some(&holder) if holder != self.0 => false,
            _ => {
                map.insert(dir, self.0);
                true
            }
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(map) = held().as_mut() {
            map.retain(|_, holder| *holder != self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_held_by_one_live_session_at_a_time() {
        let (a, b) = (Holder::new(), Holder::new());
        let dir = (u64::MAX, 7);
        a.made(dir);
        assert!(a.take(dir), "its own");
        assert!(!b.take(dir), "another's, while it lives");
        drop(a);
        assert!(b.take(dir), "once it ended");
        let c = Holder::new();
        assert!(!c.take(dir));
        c.made(dir); // the inode reused for a directory c made
        assert!(!b.take(dir));
    }
}
