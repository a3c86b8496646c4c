//! A tree session on the receiving side: check the offer, answer every
//! entry of the manifest as it arrives (directories made, files up to date
//! or wanted), check the free space for the whole tree, then hand the data
//! phase to `tree_files` and finish: flush, links, directories, RESULT.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use super::peer::{authenticate, refuse};
use super::session::{Dest, Tree};
use super::sink::{self, Root};

pub(super) mod decide;
mod manifest;
use crate::config::{Output, RecvConfig};
use crate::conn::{with_keepalive, Conn};
use crate::exit;
use crate::output::Stream;
use crate::progress::tree::{TreeProgress, TreeStart, TreeSummary};
use crate::progress::{Reporter, Role};
use crate::protocol::receiver::{self, Conclusion, Later, Session, Setup};
use crate::protocol::tree::TreeOffer;
use crate::protocol::Keyed;
use crate::protocol::{self as proto, RefuseCode};
use crate::units::human_bytes;

pub(super) fn receive(
    cfg: &RecvConfig,
    conn: &mut Conn,
    body: &[u8],
    reporter: &Reporter,
) -> Result<()> {
    let offer = match TreeOffer::decode(body) {
        Ok(offer) => offer,
        Err(e) => {
            let err = refuse(conn, RefuseCode::BadOffer, format!("bad offer: {e:#}"));
            return Err(super::hello::before_an_offer(conn, err));
        }
    };
    let key = match authenticate(cfg, conn, offer.nonce, body) {
        Ok(key) => key,
        Err(reason) => return Err(refuse(conn, RefuseCode::Auth, reason)),
    };
    // a sender now: its OFFER decoded and, with a key, its PROOF checked
    // (until then the handshake deadline held, see hello::receive)
    conn.trusted();
    let (root, dest) = match admit_offer(cfg, &offer) {
        Ok(disk) => disk,
        Err((code, reason)) => return Err(refuse(conn, code, reason)),
    };
    let accept = proto::Answer::Accept {
        held: Vec::new(),
        hashes: false,
    };
    proto::write_frame(conn, proto::kind::ANSWER, &accept.encode())
        .with_context(|| format!("{}: connection lost", conn.peer))?;
    let began = Instant::now();
    // a key (sealed, or --no-encrypt's keyed digests) authenticated the sender
    let setup = setup_of(cfg, &offer, &dest, key.is_some() || conn.is_sealed());
    let key = key.map(|k| Box::new(k) as Box<dyn Keyed>);
    let said = (
        Session::new(setup, key),
        progress_of(&offer, conn, reporter),
    );
    let hash_thread = crate::hash::thread_pays(conn.peer_here());
    let mut tree = Tree::new(cfg, offer, said, (root, dest), reporter, hash_thread);
    if let Err(e) = tree.manifest(conn) {
        tree.discard_unstarted();
        tree.progress.abandon();
        tree.tell(conn, &e);
        return Err(e);
    }
    match tree.run(conn) {
        Ok(()) => tree.finish(conn, began),
        Err(e) => {
            // the directories made stay unfinished (see sink::UNFINISHED),
            // owner only, for the session that resumes the tree to finish
            tree.progress.abandon();
            Err(e)
        }
    }
}

/// The machine's settings for this offer: the receiver's limits, and what
/// the destination of a file alone makes of its data and its name.
fn setup_of(cfg: &RecvConfig, offer: &TreeOffer, dest: &Dest, keyed: bool) -> Setup {
    Setup {
        offer: offer.clone(),
        max_files: cfg.max_files,
        max_size: cfg.max_size,
        ordered: matches!(dest, Dest::Stream(..)),
        renamed: matches!(dest, Dest::Named(..)),
        keyed,
        force: cfg.force,
        verify: offer.verify && cfg.common.verify,
    }
}

/// The session's progress: a tree, or a file alone (named once its entry
/// comes).
fn progress_of(offer: &TreeOffer, conn: &Conn, reporter: &Reporter) -> Box<dyn TreeProgress> {
    let start = TreeStart {
        role: Role::Recv,
        name: format!("tree from {}", conn.peer).into(),
        peer: conn.peer.clone(),
        entries: offer.entries,
        bytes: offer.bytes,
        counted: !offer.streamed,
    };
    match offer.single {
        true => reporter.one_file(&start, None),
        false => reporter.tree(&start),
    }
}

/// What the session's end exits with: a tree's verdict (5, or 3 for a
/// mismatch), or a file alone's fate in a single transfer's terms (a
/// refusal is 4, a failure 1).
fn exit_of(conclusion: &Conclusion, peer: &str) -> Result<()> {
    let line = conclusion.line(peer);
    Err(match conclusion {
        Conclusion::Complete => return Ok(()),
        Conclusion::Partial(_) => exit::partial(line),
        Conclusion::Integrity(_) => exit::integrity(line),
        Conclusion::Refused(_) => exit::refused(line),
        Conclusion::Failed(_) | Conclusion::Unfinished(_) => anyhow!(line),
    })
}

/// The session-wide checks, before anything is written: where it goes,
/// how many entries, how many bytes.
fn admit_offer(
    cfg: &RecvConfig,
    offer: &TreeOffer,
) -> Result<(Arc<Root>, Dest), (RefuseCode, String)> {
    let one = offer.single && offer.entries == 1;
    let (dir, dest) = match &cfg.output {
        Output::Dir(dir) => (dir.clone(), Dest::Dir),
        Output::File(file) if one => {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let rel = name.as_deref().map(|n| sink::check_path(n.as_bytes()));
            let Some(Ok(rel)) = rel else {
                return Err((
                    RefuseCode::BadName,
                    format!("{}: not a file name", file.display()),
                ));
            };
            let shown = file.display().to_string();
            (crate::output::dir_of(file), Dest::Named(rel, shown))
        }
        Output::Stdout if one => (".".into(), Dest::Stream(Stream::stdout(), "-".into())),
        Output::Stream(path) if one => {
            let out = Stream::open(path)
                .map_err(|e| (RefuseCode::Other, format!("{}: {e}", path.display())))?;
            // the directory is never written: a stream takes the one file
            (".".into(), Dest::Stream(out, path.display().to_string()))
        }
        _ => {
            let why = "a tree (a directory or several files) needs 'zc recv -o DIR'; this receiver writes one file or a stream";
            return Err((RefuseCode::BadOffer, why.into()));
        }
    };
    receiver::admit_offer(offer, cfg.max_files, cfg.max_size, human_bytes)?;
    let root =
        Root::open(&dir).map_err(|e| (RefuseCode::Other, format!("{}: {e}", dir.display())))?;
    Ok((Arc::new(root), dest))
}

impl Tree<'_> {
    /// A file alone opens its part when its entry comes: one that never got
    /// data, new and empty, goes again when the session ends before GO.
    fn discard_unstarted(&mut self) {
        while let Some(mut want) = self.wants.pop_front() {
            if want.part.take().is_some() && want.held.total() == 0 && !want.recorded {
                let _ = self.root.discard_part(&want.rel);
            }
        }
    }

    /// After END: links, directories' modes and times, one last flush, and
    /// the RESULT that lets the sender exit 0.
    fn finish(mut self, conn: &mut Conn, began: Instant) -> Result<()> {
        for later in self.session.to_make() {
            // every path here was checked as its entry came; checked again
            // rather than trusted, as the machine keeps only the bytes
            let root = &self.root;
            let made = match &later {
                Later::Link { path, target } => {
                    sink::check_path(path).and_then(|rel| err_text(root.symlink(&rel, target)))
                }
                Later::Dir {
                    path,
                    mode,
                    mtime_ns,
                } => sink::check_path(path)
                    .and_then(|rel| err_text(root.finish_dir(&rel, *mode, *mtime_ns))),
            };
            (self.session).made(&later, made.err());
        }
        self.show();
        let root = &self.root;
        let synced = with_keepalive(conn, || root.sync_all());
        if let Err(e) = synced.or_else(|e| match e.kind() {
            std::io::ErrorKind::Unsupported => Ok(()),
            _ => Err(e),
        }) {
            let why = format!("flushing the output: {e}");
            self.session.fail(&why);
            self.flush(conn)?;
            return Err(anyhow!(why));
        }
        let conclusion = self.session.conclude();
        self.flush(conn)?;
        if self.offer.single && conclusion != Conclusion::Complete {
            // a file alone that did not land is no tree to sum up
            self.progress.abandon();
            return exit_of(&conclusion, &conn.peer);
        }
        let ledger = self.session.ledger();
        let (bytes, files) = self.session.received();
        self.progress.finish(&TreeSummary {
            role: Role::Recv,
            name: format!("tree from {}", conn.peer),
            path: match &self.cfg.output {
                Output::Dir(dir) => Some(dir.display().to_string()),
                _ => None,
            },
            entries: self.session.entries(),
            files,
            up_to_date: ledger.up_to_date,
            not_landed: ledger.not_landed,
            bytes,
            elapsed: began.elapsed(),
            reconnects: 0,
            sent_before: 0,
            zero_copy: self.spliced,
            encrypted: conn.is_sealed(),
            verified: self.session.verifies(),
            digests: (0, 0),
        });
        exit_of(&conclusion, &conn.peer)
    }
}

fn err_text(made: std::io::Result<()>) -> Result<(), String> {
    made.map_err(|e| e.to_string())
}
