//! Where verified files go: batches made durable with one flush and then
//! renamed into place, a range's part kept with its record, and what stays
//! when a session ends early.

use std::fs::File;
use std::io;
use std::time::Duration;

use anyhow::{Context, Result};

use super::lander::Part;
use super::local;
use crate::conn::Conn;
use crate::held::{Ranges, Record};
use crate::recv::session::Tree;
use crate::recv::session::{identity, lossy, Want};

/// A batch goes to the lander once it holds this many files or bytes, or
/// is this old, when the lander is free: a file system that flushes fast
/// gets many small batches, a slow disk few large ones (each batch costs a
/// flush of the whole file system, other writers' data included). And not
/// before `PACE` times the last flush has passed since it was handed: on a
/// busy disk the flushes stay a small part of the time.
const HAND_FILES: usize = 256;
const PACE: u32 = 4;
const HAND_BYTES: u64 = 64 << 20;
const HAND_AGE: Duration = Duration::from_secs(1);
/// While the lander is busy, the batch grows up to this many files
/// (the descriptors they hold open allow up to `Batch::most`) or bytes.
pub(super) const BATCH_FILES: usize = 8192;
const BATCH_BYTES: u64 = 512 << 20;

impl Tree<'_> {
    /// A whole, verified part: given its mode and time, then to be renamed
    /// with its batch.
    pub(super) fn verified(&mut self, want: &Want, file: File) -> Result<()> {
        land(&file, want, self.batch.root_dev).map_err(|e| local(want, e))?;
        self.batch.parts.push(Part {
            rel: want.rel.clone(),
            recorded: want.recorded,
            file,
            unnamed: want.unnamed,
        });
        self.batch.bytes += want.size;
        Ok(())
    }

    /// A range that leaves the file unfinished: the part stays, durable,
    /// with a record of what it holds, for the next range or a resume.
    pub(super) fn held(&mut self, want: &Want, file: File, have: Ranges) -> Result<()> {
        self.record(want, &file, have)?;
        let _ = self.root.sync_parent(&want.rel);
        self.session.landed();
        Ok(())
    }

    /// Hands the batch to the lander when it is due and the lander free
    /// (or, when `all` or the batch is full, once the lander is free).
    pub(super) fn hand_batch(&mut self, conn: &mut Conn, all: bool) -> Result<()> {
        if let Some(landed) = self.batch.outcome(None) {
            self.landed(landed)?;
        }
        let b = &self.batch;
        if b.parts.is_empty() {
            return Ok(());
        }
        let full = b.parts.len() >= b.most || b.bytes >= BATCH_BYTES;
        let age = b.since.elapsed();
        let due = (b.parts.len() >= HAND_FILES || b.bytes >= HAND_BYTES || age >= HAND_AGE)
            && age >= b.flush * PACE;
        if !(all || full || due && !b.busy) {
            return Ok(());
        }
        if let Some(landed) = self.batch.outcome(Some(conn)) {
            self.landed(landed)?;
        }
        self.batch.hand(&self.root)
    }

    /// Hands over what is verified and waits until all of it has landed.
    pub(super) fn flush_batch(&mut self, conn: &mut Conn) -> Result<()> {
        self.hand_batch(conn, true)?;
        match self.batch.outcome(Some(conn)) {
            Some(landed) => self.landed(landed),
            None => Ok(()),
        }
    }

    /// A batch's outcome: the parts that could not be renamed did not land.
    fn landed(&mut self, landed: super::lander::Landed) -> Result<()> {
        let (failed, flush) = landed.context("flushing the output")?;
        self.batch.flush = flush;
        for (rel, why) in failed {
            let shown = lossy(rel.bytes());
            self.session.unlanded(&shown, why);
        }
        self.show();
        Ok(())
    }

    /// Whatever happens, what arrived is kept: the current part synced
    /// with its record, the verified batch renamed into place.
    /// A part with no name is not kept: a small file, sent again whole.
    pub(super) fn keep(&mut self, conn: &mut Conn) -> Result<()> {
        let mut kept = Ok(());
        if let Some(mut cur) = self.cur.take() {
            drop(cur.checkpoint.take());
            if let Some(file) = cur.part.as_ref().filter(|_| !cur.want.unnamed) {
                let held = match self.session.current() {
                    Some(arrival) => arrival.have(),
                    None => cur.want.held.clone(),
                };
                kept = self.record(&cur.want, file, held);
                if kept.is_ok() {
                    let at = cur.want.rel.display_in(self.root.path());
                    self.session.part_kept(at);
                }
            }
        }
        // the verified batch lands whether or not that part could be kept
        let flushed = self.flush_batch(conn);
        kept.and(flushed)
    }
}

impl Tree<'_> {
    /// A part made durable, then its record beside it: what it holds.
    fn record(&self, want: &Want, file: &File, held: Ranges) -> Result<()> {
        file.sync_all().map_err(|e| local(want, e))?;
        let source = identity(&want.rel, want.size, want.mtime_ns);
        let record = Record { source, held }.encode();
        (self.root.write_record(&want.rel, &record)).map_err(|e| local(want, e))
    }
}

/// Gives a verified part its mode and time before it is renamed.
fn land(file: &File, want: &Want, root_dev: Option<u64>) -> io::Result<()> {
    #[cfg(unix)]
    if !want.moded {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(want.mode & 0o777))?;
    }
    #[cfg(not(unix))]
    if want.mode & 0o200 == 0 {
        let mut perms = file.metadata()?.permissions();
        perms.set_readonly(true);
        file.set_permissions(perms)?;
    }
    let when = std::time::UNIX_EPOCH + Duration::from_nanos(want.mtime_ns);
    file.set_modified(when)?;
    // syncfs flushes the output's own file system only: a part on another
    // mount beneath it (or on a system without syncfs) is flushed on its own
    // (a directory this session made is on the output's file system)
    if !cfg!(target_os = "linux") || (!want.fresh && device(&file.metadata()?) != root_dev) {
        file.sync_all()?;
    }
    Ok(())
}

/// The device a file lives on (where there is such a thing).
pub(super) fn device(meta: &std::fs::Metadata) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(meta.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}
