//! Before a resume: check each block the receiver holds against the
//! source, so only missing and bad blocks are sent.

use anyhow::{bail, Context, Result};

use super::Plan;
use crate::conn::{Conn, Keepalive};
use crate::copy::BUF_SIZE;
use crate::exit;
use crate::hash::{self, Prefix};
use crate::held::Ranges;
use crate::progress::{Reporter, Role};
use crate::protocol::{self as proto, kind};

use super::peer::{lost, next_frame};

/// Bad blocks warned about one by one; the rest are counted.
const MAX_BAD_WARNINGS: u64 = 8;

/// Reads the receiver's block hashes, checks each against the source, and
/// returns the ranges that are good. Bad blocks are reported, never kept.
pub(super) fn verify_held(
    conn: &mut Conn,
    file: &std::fs::File,
    held: &Ranges,
    size: u64,
    mut prefix: Option<&mut Prefix>,
    plan: &Plan,
    reporter: &Reporter,
) -> Result<Ranges> {
    let total = held.total();
    let mut bar = reporter.verifier(Role::Send, &plan.display_name(), total);
    let mut good = Ranges::new();
    let mut checked = 0u64;
    let mut bad = 0u64;
    let mut buf = vec![0u8; BUF_SIZE];
    // The receiver waits for our first DATA while we hash: keep it posted.
    let mut keepalive = Keepalive::new();
    loop {
        let frame = next_frame(conn).map_err(|e| lost(conn, e))?;
        if frame.kind != kind::HASHES {
            bail!(
                "{}: unexpected frame {:#x} while verifying",
                conn.peer,
                frame.kind
            );
        }
        let (blocks, last) =
            proto::decode_hashes(&frame.body).with_context(|| conn.peer.clone())?;
        for b in blocks {
            if crate::interrupt::requested() {
                return Err(exit::interrupted(
                    "interrupted while verifying what the receiver holds",
                ));
            }
            keepalive.tick(conn).map_err(|e| lost(conn, e))?;
            let (from, to) = (b.offset, b.offset + b.len as u64);
            if to > size || !held.covers(from, to) {
                bail!(
                    "{}: a hash for bytes {from}..{to}, which it does not hold",
                    conn.peer
                );
            }
            let ours = hash::block(file, from, to - from, prefix.as_deref_mut(), &mut buf)
                .with_context(|| plan.label.clone())?;
            if ours == b.sha256 {
                good.insert(from, to);
            } else {
                bad += 1;
                // a whole file of bad blocks is one story, not thousands of lines
                if bad <= MAX_BAD_WARNINGS {
                    reporter.warn(&format!(
                        "{}: the receiver's bytes {from}..{to} differ from the source; re-sending them",
                        plan.display_name()
                    ));
                }
            }
            checked += to - from;
            bar.update(checked);
        }
        if last {
            break;
        }
    }
    if bad > MAX_BAD_WARNINGS {
        reporter.warn(&format!(
            "{}: {} more blocks differ and are re-sent",
            plan.display_name(),
            bad - MAX_BAD_WARNINGS
        ));
    }
    bar.finish_verify(good.total(), bad);
    Ok(good)
}
