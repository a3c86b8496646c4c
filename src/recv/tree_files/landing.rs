//! Where verified files go: batches made durable with one flush and then
//! renamed into place, a range's part kept with its record, and what stays
//! when a session ends early.

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{local, Current, Files, Out};
use crate::conn::{with_keepalive, Conn};
use crate::hash::Sha;
use crate::held::{Ranges, Record};
use crate::protocol::ledger::Fate;
use crate::protocol::Status;
use crate::recv::session::{identity_of, lossy, Want};
use crate::recv::sink::RelPath;

/// A batch of verified files is made durable and renamed into place once
/// it holds this many files, this many bytes, or is this old. Each batch
/// costs a flush of the whole file system: on a disk, 5,000 small files in
/// batches of 1,024 took 2.4x as long as in one (bench/trees.sh --to disk).
pub(super) const BATCH_FILES: usize = 8192;
const BATCH_BYTES: u64 = 512 << 20;
const BATCH_AGE: Duration = Duration::from_secs(5);

/// Verified parts waiting for the flush that lets them be renamed.
pub(super) struct Batch {
    /// Each part, whether it left a held record to remove, and its file:
    /// kept open, and so locked, until it is renamed, so no other session
    /// can rewrite a verified part while it waits.
    pub(super) parts: Vec<(RelPath, bool, File)>,
    /// At most this many parts (open files) wait.
    pub(super) most: usize,
    pub(super) bytes: u64,
    pub(super) since: Instant,
}

impl Files<'_, '_> {
    /// A whole, verified part: given its mode and time, then renamed with
    /// its batch.
    pub(super) fn verified(
        &mut self,
        conn: &mut Conn,
        want: &Want,
        file: File,
        ours: Option<Sha>,
    ) -> Result<()> {
        land(&file, want, self.root_dev).map_err(|e| local(want, e))?;
        self.batch
            .parts
            .push((want.rel.clone(), want.recorded, file));
        self.batch.bytes += want.size;
        self.files += 1;
        self.result(want, Status::Ok, ours, "")?;
        let b = &self.batch;
        if b.parts.len() >= b.most || b.bytes >= BATCH_BYTES || b.since.elapsed() >= BATCH_AGE {
            self.flush_batch(conn)?;
        }
        Ok(())
    }

    /// A range that leaves the file unfinished: the part stays, durable,
    /// with a record of what it holds, for the next range or a resume.
    pub(super) fn held(
        &mut self,
        cur: &mut Current,
        file: File,
        have: Ranges,
        ours: Option<Sha>,
    ) -> Result<()> {
        drop(cur.checkpoint.take());
        file.sync_all().map_err(|e| local(&cur.want, e))?;
        let record = Record {
            source: identity_of(&cur.want),
            held: have.clone(),
        };
        self.tree
            .root
            .write_record(&cur.want.rel, &record.encode())
            .map_err(|e| local(&cur.want, e))?;
        let _ = self.tree.root.sync_parent(&cur.want.rel);
        self.result_held(&cur.want, Status::Ok, ours, "", have.total())
    }

    /// Makes the batch durable, then renames it into place.
    pub(super) fn flush_batch(&mut self, conn: &mut Conn) -> Result<()> {
        if self.batch.parts.is_empty() {
            return Ok(());
        }
        let root = self.tree.root.clone();
        // a slow disk may take a while: the sender hears keepalives meanwhile
        let synced = {
            let root = root.clone();
            with_keepalive(conn, move || root.sync_all())
        };
        let syncfs = match synced {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::Unsupported => false,
            Err(e) => return Err(anyhow::Error::new(e).context("flushing the output")),
        };
        // every part is renamed, even after one fails: they are all verified
        let parts = std::mem::take(&mut self.batch.parts);
        for (rel, recorded, file) in parts {
            let renamed = root.publish(&rel);
            drop(file); // the lock goes once the name is final
            if let Err(e) = renamed {
                let fate = Fate::Failed(format!("renaming it into place: {e}"));
                self.tree.ledger.landed -= 1; // counted when it was verified
                self.tree.settle(&lossy(rel.bytes()), "file", fate);
                continue;
            }
            if recorded {
                let _ = root.discard_part(&rel); // its held record
            }
            if !syncfs {
                let _ = root.sync_parent(&rel);
            }
        }
        self.batch.bytes = 0;
        self.batch.since = Instant::now();
        Ok(())
    }

    /// Whatever happens, what arrived is kept: the current part synced
    /// with its record, the verified batch renamed into place.
    pub(super) fn keep(&mut self, conn: &mut Conn) -> Result<()> {
        self.partial = None;
        if let Some(mut cur) = self.cur.take() {
            drop(cur.checkpoint.take());
            if let Out::Part(file) = &cur.out {
                let mut held = cur.want.held.clone();
                for &(a, b) in cur.got.pairs() {
                    held.insert(a, b);
                }
                file.sync_all().map_err(|e| local(&cur.want, e))?;
                self.held_bytes = held.total();
                self.partial = Some(match self.tree.single {
                    Some(_) => format!(
                        "kept {}.zcpart ({} bytes held)",
                        self.tree.root.path().join(cur.want.rel.to_path()).display(),
                        held.total()
                    ),
                    None => format!(
                        "{} of {} held in {}.zcpart",
                        crate::units::human_bytes(held.total()),
                        lossy(cur.want.path()).escape_debug(),
                        lossy(cur.want.path()).escape_debug()
                    ),
                });
                let record = Record {
                    source: identity_of(&cur.want),
                    held,
                };
                self.tree
                    .root
                    .write_record(&cur.want.rel, &record.encode())
                    .map_err(|e| local(&cur.want, e))?;
            }
        }
        self.flush_batch(conn)
    }
}

/// Gives a verified part its mode and time before it is renamed.
fn land(file: &File, want: &Want, root_dev: Option<u64>) -> io::Result<()> {
    #[cfg(unix)]
    {
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
    if !cfg!(target_os = "linux") || device(file)? != root_dev {
        file.sync_all()?;
    }
    Ok(())
}

pub(super) fn root_device(root: &crate::recv::sink::Root) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(root.path()).ok().map(|m| m.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = root;
        None
    }
}

/// The device a file lives on (where there is such a thing).
fn device(file: &File) -> io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(Some(file.metadata()?.dev()))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(None)
    }
}
