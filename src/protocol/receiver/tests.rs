//! The receiver's rules without sockets: the hostile-sender cases of
//! tests/trees.rs and tests/hardening.rs that only check what the receiver
//! refuses, run against the machine.

use std::collections::VecDeque;

use super::*;
use crate::protocol::ledger::Verdict;
use crate::protocol::tree::{Action, Begin, Entry, FileEnd, Manifest, Reply, TreeEnd};
use crate::protocol::Ranges;
use crate::protocol::{read_frame, PeerText};
use crate::protocol::{Answer, RefuseCode, Status, ToSender};

/// A file asked for, as a driver would keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asked {
    id: u64,
    path: Vec<u8>,
    size: u64,
    range: (u64, u64),
    stream: bool,
}

impl Wanted for Asked {
    fn id(&self) -> u64 {
        self.id
    }
    fn path(&self) -> &[u8] {
        &self.path
    }
    fn shape(&self) -> (u64, (u64, u64), Ranges, bool, bool) {
        (self.size, self.range, Ranges::new(), self.stream, true)
    }
}

fn file(id: u64, path: &str, size: u64) -> Entry {
    Entry {
        id,
        path: path.as_bytes().to_vec(),
        kind: EntryKind::File,
        size,
        mode: 0o644,
        mtime_ns: 0,
        target: Vec::new(),
        range: None,
        stream: false,
    }
}

fn setup(entries: u64) -> Setup {
    Setup {
        offer: TreeOffer {
            entries,
            verify: true,
            ..Default::default()
        },
        max_files: u64::MAX,
        verify: true,
        ..Default::default()
    }
}

/// A session and the files it asked for.
struct Rx {
    s: Session,
    asked: VecDeque<Asked>,
}

impl Rx {
    fn new(setup: Setup) -> Rx {
        Rx {
            s: Session::new(setup, None),
            asked: VecDeque::new(),
        }
    }

    fn take(&mut self, msg: ToReceiver) -> Result<Event<Asked>, Violation> {
        self.s.handle(msg, &mut self.asked)
    }

    /// Sends an entry and asks for it whole.
    fn want(&mut self, entry: Entry) {
        let Ok(Event::Decide(e)) = self.take(ToReceiver::Entry(entry)) else {
            panic!("no decision asked for");
        };
        self.asked.push_back(Asked {
            id: e.id,
            path: e.path.clone(),
            size: e.size,
            range: e.offered(),
            stream: e.stream,
        });
        let action = Action::Send {
            held: Vec::new(),
            hashes: false,
        };
        self.s.decided(e.id, &lossy(&e.path), Ok(action)).unwrap();
    }

    /// The manifest of `files` (each `size` bytes), MANIFEST, GO.
    fn manifest(&mut self, files: &[(&str, u64)]) {
        for (id, (path, size)) in files.iter().enumerate() {
            self.want(file(id as u64, path, *size));
        }
        let m = Manifest {
            entries: files.len() as u64,
            failed: 0,
        };
        assert!(matches!(
            self.take(ToReceiver::Manifest(m)),
            Ok(Event::Manifest { unread: 0 })
        ));
        self.s.go();
    }

    fn begin(&mut self, id: u64, path: &str) -> Result<Event<Asked>, Violation> {
        let path = path.as_bytes().to_vec();
        self.take(ToReceiver::Begin(Begin { id, path }))
    }

    fn data(&mut self, offset: u64, len: u64) -> Result<Event<Asked>, Violation> {
        let event = self.take(ToReceiver::Data { offset, len });
        if let Ok(Event::Write(w)) = &event {
            self.s.arrived(w.offset, w.end);
        }
        event
    }

    fn file_end(&mut self, id: u64, sent: u64) -> Result<Event<Asked>, Violation> {
        let end = FileEnd {
            id,
            sent,
            sha256: Some([7; 32]),
            failed: None,
        };
        self.take(ToReceiver::FileEnd(end))
    }

    fn end(&mut self) -> Result<Event<Asked>, Violation> {
        self.take(ToReceiver::End(TreeEnd { sent: 0, failed: 0 }))
    }

    /// What this side said, frame by frame.
    fn said(&mut self) -> Vec<ToSender> {
        let out = self.s.take_outbox();
        let mut r = &out[..];
        let mut msgs = Vec::new();
        while !r.is_empty() {
            let frame = read_frame(&mut r).expect("whole frames");
            msgs.push(ToSender::decode(&frame).expect("a message"));
        }
        msgs
    }
}

fn error(got: Result<Event<Asked>, Violation>) -> String {
    match got {
        Err(v) => v.to_string(),
        Ok(e) => panic!("taken: {e:?}"),
    }
}

#[test]
fn a_whole_session_lands_and_says_so() {
    let mut rx = Rx::new(setup(2));
    rx.manifest(&[("a", 3), ("b", 0)]);
    assert!(matches!(rx.begin(0, "a"), Ok(Event::Open(w)) if w.id == 0));
    assert!(matches!(
        rx.data(0, 3),
        Ok(Event::Write(Fits {
            end: 3,
            in_order: true,
            ..
        }))
    ));
    let Ok(Event::Ended(ended)) = rx.file_end(0, 3) else {
        panic!("no end");
    };
    assert_eq!(ended.then, Then::Digest { as_it_came: true });
    let have = Ranges::from_pairs(&[(0, 3)]);
    assert_eq!(rx.s.digest(Some([7; 32])), Some(have));
    rx.s.landed();
    assert!(matches!(rx.begin(1, "b"), Ok(Event::Open(_))));
    assert!(matches!(rx.file_end(1, 0), Ok(Event::Ended(_))));
    assert_eq!(rx.s.digest(Some([7; 32])), Some(Ranges::new()));
    rx.s.landed();
    assert!(matches!(rx.end(), Ok(Event::Finished)));
    assert_eq!(rx.s.received(), (3, 2), "bytes written, files landed");
    assert_eq!(rx.s.conclude(), Conclusion::Complete);
    let kinds: Vec<_> = rx.said().iter().map(|m| m.name()).collect();
    assert_eq!(
        kinds,
        [
            "REPLY",
            "REPLY",
            "GO",
            "FILE RESULT",
            "FILE RESULT",
            "RESULT"
        ]
    );
    let shown: Vec<_> = rx.s.settled().map(|s| (s.path, s.fate)).collect();
    assert_eq!(
        shown,
        [("a".into(), Fate::Landed), ("b".into(), Fate::Landed)]
    );
    assert_eq!(rx.s.ledger().accounted(), 2);
}

/// tests/trees.rs a_frame_out_of_order_ends_the_session_with_its_name and
/// the phase table: each frame where it does not belong.
#[test]
fn a_frame_out_of_order_is_named() {
    let mut rx = Rx::new(setup(1));
    rx.manifest(&[("a", 1)]);
    let again = rx.take(ToReceiver::Entry(file(1, "b", 1)));
    assert_eq!(error(again), "unexpected ENTRY during the data");
    let mut rx = Rx::new(setup(1));
    let data = rx.data(0, 1);
    assert_eq!(error(data), "unexpected DATA in the manifest");
    let mut rx = Rx::new(setup(0));
    assert_eq!(error(rx.end()), "unexpected END in the manifest");
    let mut rx = Rx::new(setup(0));
    rx.manifest(&[]);
    let m = ToReceiver::Manifest(Manifest {
        entries: 0,
        failed: 0,
    });
    assert_eq!(error(rx.take(m)), "unexpected MANIFEST during the data");
    assert!(matches!(rx.end(), Ok(Event::Finished)));
    let late = rx.take(ToReceiver::Keepalive);
    assert_eq!(error(late), "unexpected KEEPALIVE after the session ended");
    let mut rx = Rx::new(setup(0));
    let stop = rx.take(ToReceiver::Stop);
    assert!(matches!(stop, Ok(Event::Stopped(Stop::BeforeData))));
    assert_eq!(rx.s.phase(), Phase::Ended);
}

/// tests/resume.rs (a sender's Ctrl-C: "stopped sending ctrlc.bin; kept
/// ..."): a STOP before GO says no data came, one in the data names a
/// file alone.
#[test]
fn a_stop_says_when_it_came() {
    let mut rx = Rx::new(setup(1));
    rx.want(file(0, "a", 10));
    let stop = rx.take(ToReceiver::Stop).unwrap();
    let Event::Stopped(stop) = stop else {
        panic!("{stop:?}");
    };
    assert_eq!(stop.line("P"), "P stopped before sending any data");
    let mut s = setup(1);
    s.offer.single = true;
    let mut rx = Rx::new(s);
    rx.manifest(&[("a\n", 10)]);
    let stop = rx.take(ToReceiver::Stop).unwrap();
    let Event::Stopped(stop) = stop else {
        panic!("{stop:?}");
    };
    assert_eq!(stop.line("P"), "P stopped sending a\\n");
    let mut rx = Rx::new(setup(1));
    rx.manifest(&[("a", 10)]);
    let stop = rx.take(ToReceiver::Stop).unwrap();
    assert!(
        matches!(stop, Event::Stopped(Stop::Sending(None))),
        "a tree names none"
    );
}

/// tests/trees.rs more_entries_than_announced_are_not_written,
/// a_bad_manifest_is_answered_with_the_reason: ids in order, no more than
/// the OFFER announced, and the MANIFEST's count right.
#[test]
fn entries_come_in_order_and_as_many_as_announced() {
    let mut rx = Rx::new(setup(1));
    let skipped = rx.take(ToReceiver::Entry(file(1, "a", 1)));
    assert_eq!(error(skipped), "entry 1 arrived where 0 was due");
    let mut rx = Rx::new(setup(1));
    rx.want(file(0, "one", 1));
    let more = rx.take(ToReceiver::Entry(file(1, "two", 1)));
    let v = more.unwrap_err();
    assert_eq!(v.to_string(), "more entries than the 1 announced");
    assert!(!v.names_peer());
    let m = Manifest {
        entries: 3,
        failed: 0,
    };
    let count = rx.take(ToReceiver::Manifest(m));
    assert_eq!(error(count), "the manifest says 3 entries, 1 came");
}

/// A tree counted as it comes is refused whole past --max-files.
#[test]
fn a_streamed_tree_past_max_files_is_refused_whole() {
    let mut s = setup(0);
    s.offer.streamed = true;
    s.max_files = 2;
    let mut rx = Rx::new(s);
    rx.want(file(0, "a", 1));
    rx.want(file(1, "b", 1));
    let third = rx.take(ToReceiver::Entry(file(2, "c", 1)));
    let Err(Violation::Refused(code, why)) = third else {
        panic!("not refused: {third:?}");
    };
    assert_eq!(code, RefuseCode::TooLarge);
    assert_eq!(why, "the tree has over 2 entries (--max-files)");
    let said = rx.said();
    assert!(matches!(
        said.last(),
        Some(ToSender::Answer(Answer::Refuse {
            code: RefuseCode::TooLarge,
            ..
        }))
    ));
    assert_eq!(rx.s.phase(), Phase::Ended);
}

/// The sender waits for GO: anything but a keepalive or STOP before it is
/// data before GO.
#[test]
fn nothing_but_keepalives_before_go() {
    let mut rx = Rx::new(setup(1));
    rx.want(file(0, "a", 1));
    let m = Manifest {
        entries: 1,
        failed: 0,
    };
    assert!(rx.take(ToReceiver::Manifest(m)).is_ok());
    assert!(matches!(rx.take(ToReceiver::Keepalive), Ok(Event::Nothing)));
    assert_eq!(error(rx.begin(0, "a")), "data before GO");
}

/// BEGIN only for what was asked, in order, once, under its own path:
/// the files skipped on the way did not come.
#[test]
fn begin_takes_what_was_asked_in_order_once() {
    let mut rx = Rx::new(setup(3));
    rx.manifest(&[("a", 1), ("b", 1), ("c", 1)]);
    rx.s.settled().for_each(drop);
    assert!(matches!(rx.begin(1, "b"), Ok(Event::Open(w)) if w.id == 1));
    let skipped: Vec<_> = rx.s.settled().map(|s| (s.path, s.fate)).collect();
    let not_sent = Fate::Failed("the sender did not send it".into());
    assert_eq!(skipped, [("a".to_string(), not_sent.clone())]);
    assert_eq!(
        error(rx.begin(2, "c")),
        "a file began before the last one ended"
    );
    let mut rx = Rx::new(setup(2));
    rx.manifest(&[("a", 1), ("b", 1)]);
    assert_eq!(
        error(rx.begin(5, "x")),
        "data for entry 5, which was not asked for"
    );
    let mut rx = Rx::new(setup(2));
    rx.manifest(&[("a", 1), ("b", 1)]);
    assert!(rx.begin(1, "b").is_ok());
    rx.data(0, 1).unwrap();
    rx.file_end(1, 1).unwrap();
    assert_eq!(rx.s.digest(None), None, "no digest: a mismatch");
    assert_eq!(
        error(rx.begin(0, "a")),
        "data for entry 0, which was not asked for"
    );
    let mut rx = Rx::new(setup(1));
    rx.manifest(&[("a", 1)]);
    assert_eq!(error(rx.begin(0, "z")), "entry 0 began under another path");
    let mut s = setup(1);
    s.renamed = true;
    let mut rx = Rx::new(s);
    rx.manifest(&[("a", 1)]);
    assert!(matches!(rx.begin(0, "z"), Ok(Event::Open(_))), "-o FILE");
}

/// tests/hardening.rs absurd_sizes_and_offsets_are_refused (the "lie"
/// table) and data_outside_the_offered_range_is_refused.
#[test]
fn data_must_fit_the_file_that_began() {
    let mut rx = Rx::new(setup(1));
    rx.manifest(&[("sneak.bin", 1 << 20)]);
    assert_eq!(error(rx.data(0, 1)), "data outside a file");
    rx.begin(0, "sneak.bin").unwrap();
    let past = rx.data(0, (1 << 20) + 1);
    assert_eq!(
        error(past),
        "sneak.bin: data past the end of the file (byte 1048576)"
    );
    let mut ranged = file(0, "r", 10);
    ranged.range = Some((5, 10));
    let mut rx = Rx::new(setup(1));
    rx.want(ranged);
    rx.take(ToReceiver::Manifest(Manifest {
        entries: 1,
        failed: 0,
    }))
    .unwrap();
    rx.s.go();
    rx.begin(0, "r").unwrap();
    assert_eq!(error(rx.data(0, 10)), "r: data before the range offered");
    // a stream: in order, up to its cap or --max-size
    let mut stream = file(0, "s", 0);
    stream.stream = true;
    stream.range = Some((0, 4));
    let mut s = setup(1);
    s.max_size = Some(4096);
    let mut rx = Rx::new(s);
    rx.want(stream);
    rx.take(ToReceiver::Manifest(Manifest {
        entries: 1,
        failed: 0,
    }))
    .unwrap();
    rx.s.go();
    rx.begin(0, "s").unwrap();
    assert_eq!(
        error(rx.data(2, 2)),
        "s: data for byte 2 arrived where byte 0 was due"
    );
    rx.data(0, 4).unwrap();
    assert_eq!(
        error(rx.data(4, 4)),
        "s: data past the end of the file (byte 4)"
    );
}

/// FILE END for the file under way only; END not inside a file; what was
/// asked and never sent did not land.
#[test]
fn ends_fit_what_began() {
    let mut rx = Rx::new(setup(2));
    rx.manifest(&[("a", 4), ("b", 4)]);
    assert_eq!(error(rx.file_end(0, 4)), "a file ended that never began");
    rx.begin(0, "a").unwrap();
    assert_eq!(error(rx.file_end(1, 4)), "entry 1 ended inside entry 0");
    let mut rx = Rx::new(setup(2));
    rx.manifest(&[("a", 4), ("b", 4)]);
    rx.begin(0, "a").unwrap();
    assert_eq!(error(rx.end()), "the session ended in the middle of a file");
    let mut rx = Rx::new(setup(2));
    rx.manifest(&[("a", 4), ("b", 4)]);
    rx.begin(0, "a").unwrap();
    rx.data(0, 2).unwrap();
    let Ok(Event::Ended(ended)) = rx.file_end(0, 2) else {
        panic!("no end");
    };
    assert_eq!(ended.then, Then::Told, "incomplete: its FILE RESULT queued");
    assert!(matches!(rx.end(), Ok(Event::Finished)));
    let Conclusion::Partial(line) = rx.s.conclude() else {
        panic!("not partial");
    };
    assert_eq!(
        line,
        "2 entries did not land: a (incomplete: the sender ended the file early); \
         b (the sender did not send it)"
    );
}

/// A sender whose source failed: the file settles at once, no FILE RESULT.
#[test]
fn a_file_the_sender_could_not_send_settles_at_its_end() {
    let mut rx = Rx::new(setup(1));
    rx.manifest(&[("a", 4)]);
    rx.said();
    rx.begin(0, "a").unwrap();
    let end = FileEnd {
        id: 0,
        sent: 0,
        sha256: None,
        failed: Some(PeerText::from("gone")),
    };
    let got = rx.take(ToReceiver::FileEnd(end));
    assert!(matches!(
        got,
        Ok(Event::Ended(Ended {
            then: Then::Discard,
            ..
        }))
    ));
    assert!(rx.said().is_empty());
    let fates: Vec<_> = rx.s.settled().map(|s| s.fate).collect();
    assert_eq!(fates, [Fate::Failed("the sender: gone".into())]);
}

/// "What a receiver without a key tells": refusals and failures that tell
/// of what is in OUT reach a sender without the key as less.
#[test]
fn a_sender_without_the_key_hears_less_of_what_is_in_out() {
    for keyed in [false, true] {
        let mut s = setup(2);
        s.keyed = keyed;
        let mut rx = Rx::new(s);
        let Ok(Event::Decide(e)) = rx.take(ToReceiver::Entry(file(0, "a", 1))) else {
            panic!("no decision");
        };
        let refusal = Refusal::of_out(RefuseCode::Exists, "exists with 411 bytes", "exists");
        rx.s.decided(e.id, "a", Err(refusal)).unwrap();
        rx.want(file(1, "b", 1));
        rx.take(ToReceiver::Manifest(Manifest {
            entries: 2,
            failed: 0,
        }))
        .unwrap();
        rx.s.go();
        rx.begin(1, "b").unwrap();
        rx.s.unwritable(Unwritable::Cannot("/home/u".into()));
        rx.data(0, 1).unwrap();
        let ended = rx.file_end(1, 1).unwrap();
        assert!(matches!(ended, Event::Ended(e) if e.then == Then::Told));
        rx.end().unwrap();
        rx.s.conclude();
        let said = rx.said();
        let ToSender::Reply(Reply {
            action: Action::Refuse { reason, .. },
            ..
        }) = &said[0]
        else {
            panic!("{said:?}");
        };
        let ToSender::FileResult(1, result) = &said[3] else {
            panic!("{said:?}");
        };
        let ToSender::Result(end) = &said[4] else {
            panic!("{said:?}");
        };
        let (reason, heard) = (reason.to_string(), result.message.to_string());
        if keyed {
            assert_eq!(reason, "exists with 411 bytes");
            assert_eq!(heard, "cannot write it here: /home/u");
            assert!(end.message.to_string().contains("/home/u"));
        } else {
            assert_eq!(reason, "exists");
            assert_eq!(heard, UNWRITABLE_TOLD);
            assert!(!end.message.to_string().contains("/home/u"), "{end:?}");
        }
        // this side's user reads all of it
        let Verdict::Partial(line) = rx.s.ledger().verdict() else {
            panic!("not partial");
        };
        assert!(line.contains("exists with 411 bytes") && line.contains("/home/u"));
    }
}

struct Key;

impl Keyed for Key {
    fn result_mac(&self, status: u8, held: u64) -> Sha {
        [status.wrapping_add(held as u8); 32]
    }
    fn file_result_mac(&self, id: u64, status: u8, held: u64) -> Sha {
        [(id as u8) ^ status ^ (held as u8); 32]
    }
    fn keyed_digest(&self, digest: &Sha) -> Sha {
        digest.map(|b| b ^ 0xff)
    }
    fn check_result(&self, status: u8, held: u64, mac: &[u8]) -> bool {
        mac == self.result_mac(status, held)
    }
    fn check_file_result(&self, id: u64, status: u8, held: u64, mac: &[u8]) -> bool {
        mac == self.file_result_mac(id, status, held)
    }
}

/// With a key the results carry MACs and the sender's digest is keyed;
/// a file alone's fate decides the session's.
#[test]
fn with_a_key_results_are_macd_and_digests_keyed() {
    let mut s = setup(1);
    s.offer.single = true;
    let mut rx = Rx {
        s: Session::new(s, Some(Box::new(Key))),
        asked: VecDeque::new(),
    };
    rx.manifest(&[("a", 2)]);
    rx.begin(0, "a").unwrap();
    rx.data(0, 2).unwrap();
    let Ok(Event::Ended(ended)) = rx.file_end(0, 2) else {
        panic!("no end");
    };
    assert!(matches!(ended.then, Then::Digest { .. }));
    assert_eq!(rx.s.digest(Some([7; 32])), None, "unkeyed: a mismatch");
    assert_eq!(rx.s.single(), Some(&Fate::Mismatch));
    rx.end().unwrap();
    assert!(matches!(rx.s.conclude(), Conclusion::Integrity(_)));
    let said = rx.said();
    let ToSender::FileResult(0, r) = &said[2] else {
        panic!("{said:?}");
    };
    assert_eq!(r.mac, Some([Status::Mismatch as u8; 32]));
    let ToSender::Result(r) = &said[3] else {
        panic!("{said:?}");
    };
    assert_eq!(r.mac, Some([Status::Failed as u8; 32]));
    // a file alone that stops says the bytes its part holds
    let mut s = setup(1);
    s.offer.single = true;
    let mut stop = Rx::new(s);
    stop.manifest(&[("a", 10)]);
    stop.begin(0, "a").unwrap();
    stop.data(0, 4).unwrap();
    stop.s.stopped();
    let said = stop.said();
    assert!(
        matches!(said.last(), Some(ToSender::Result(r)) if r.held == 0),
        "no part kept"
    );
    stop.s.part_kept("out/a".into());
    stop.s.stopped();
    let said = stop.said();
    assert!(
        matches!(&said[0], ToSender::Result(r) if r.held == 4),
        "{said:?}"
    );
}

/// A file alone that landed keeps its fate when the sender's MANIFEST says
/// other sources could not be read: that failure goes in the ledgers (and
/// the session's verdict), not over the file's own fate.
#[test]
fn a_file_alone_keeps_its_fate_beside_entries_the_sender_could_not_read() {
    let mut s = setup(1);
    s.offer.single = true;
    let mut rx = Rx {
        s: Session::new(s, None),
        asked: VecDeque::new(),
    };
    rx.want(file(0, "a", 2));
    let m = Manifest {
        entries: 1,
        failed: 2,
    };
    assert!(matches!(
        rx.take(ToReceiver::Manifest(m)),
        Ok(Event::Manifest { unread: 2 })
    ));
    rx.s.go();
    rx.begin(0, "a").unwrap();
    rx.data(0, 2).unwrap();
    let Ok(Event::Ended(_)) = rx.file_end(0, 2) else {
        panic!("no end");
    };
    rx.s.digest(Some([7; 32])).expect("the sender's digest");
    rx.s.landed();
    rx.end().unwrap();
    let Conclusion::Unfinished(line) = rx.s.conclude() else {
        panic!("the unread entries leave it unfinished");
    };
    assert!(
        line.contains("2 entries the sender could not read"),
        "{line}"
    );
    assert_eq!(rx.s.single(), Some(&Fate::Landed));
}

/// A file alone that does not land ends the session in a single
/// transfer's words: refused (the receiver's exit 4 in tests/scripting.rs
/// exit_4_file_exists_without_force), or failed (named after the sender),
/// not as a tree's "1 entry did not land".
#[test]
fn a_file_alone_concludes_in_its_own_words() {
    let alone = || {
        let mut s = setup(1);
        s.offer.single = true;
        Rx::new(s)
    };
    let mut rx = alone();
    assert!(matches!(
        rx.take(ToReceiver::Entry(file(0, "a", 2))),
        Ok(Event::Decide(_))
    ));
    let refusal = Refusal::of_out(RefuseCode::Exists, "exists with 3 bytes, not 2", "exists");
    rx.s.decided(0, "a", Err(refusal)).unwrap();
    let m = Manifest {
        entries: 1,
        failed: 0,
    };
    assert!(matches!(
        rx.take(ToReceiver::Manifest(m)),
        Ok(Event::Manifest { .. })
    ));
    rx.s.go();
    rx.end().unwrap();
    let refused = rx.s.conclude();
    let line = "refused the file from peer: exists with 3 bytes, not 2";
    assert_eq!(refused.line("peer"), line);
    assert_eq!(
        refused,
        Conclusion::Refused("exists with 3 bytes, not 2".into())
    );
    let mut rx = alone();
    rx.manifest(&[("a", 2)]);
    rx.end().unwrap();
    let failed = rx.s.conclude();
    assert_eq!(failed.line("peer"), "peer: the sender did not send it");
    assert!(matches!(failed, Conclusion::Failed(_)));
    // a tree says which entries did not land
    let mut rx = Rx::new(setup(1));
    rx.manifest(&[("a", 2)]);
    rx.end().unwrap();
    let partial = rx.s.conclude();
    let line = "1 entry did not land: a (the sender did not send it)";
    assert_eq!(partial, Conclusion::Partial(line.into()));
    assert_eq!(partial.line("peer"), line);
}

/// A held part's blocks are hashed in BLOCKs per held range and go to
/// the sender 16 to a FILE HASHES frame, each frame out as soon as it is
/// full (the sender checks it while the next are hashed), the file's last
/// block closing the last frame.
#[test]
fn held_blocks_go_sixteen_to_a_frame() {
    use crate::protocol::BLOCK;
    let held = Ranges::from_pairs(&[(0, 15 * BLOCK + 5), (20 * BLOCK, 21 * BLOCK + 1)]);
    let cuts: Vec<_> = blocks(&held).collect();
    assert_eq!(cuts.len(), 18);
    assert_eq!(cuts[15], (15 * BLOCK, 15 * BLOCK + 5));
    assert_eq!(cuts[17], (21 * BLOCK, 21 * BLOCK + 1));
    let mut rx = Rx::new(setup(1));
    let Ok(Event::Decide(e)) = rx.take(ToReceiver::Entry(file(0, "a", 22 * BLOCK))) else {
        panic!("no decision");
    };
    let send = Action::Send {
        held: held.pairs().to_vec(),
        hashes: true,
    };
    rx.s.decided(e.id, "a", Ok(send)).unwrap();
    let queued: Vec<usize> = (cuts.into_iter().enumerate())
        .filter(|&(_, cut)| rx.s.block_hashed(0, cut, [0; 32]))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(queued, [15, 17], "the last block ends the last frame");
    let said = rx.said();
    let frames: Vec<_> = (said[1..].iter())
        .map(|m| match m {
            ToSender::FileHashes(0, blocks, last) => (blocks.len(), *last),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(frames, [(16, false), (2, true)]);
}

/// What an early end kept, in the words tests/resume.rs greps for ("kept
/// OUT/f.zcpart (N bytes held)" for a file alone): a part counts what it
/// held before and what came since.
#[test]
fn an_early_end_says_what_it_kept() {
    let show: ShowBytes = |n| format!("{n} B");
    let mut rx = Rx::new(setup(2));
    rx.manifest(&[("d/a", 10), ("d/b", 10)]);
    rx.begin(0, "d/a").unwrap();
    rx.data(0, 3).unwrap();
    let tree = "kept what arrived: 1 files in place; 3 B of d/a held in d/a.zcpart";
    let none = "kept what arrived: 1 files in place";
    assert_eq!(rx.s.kept_line(1, None, show), none, "no part kept");
    rx.s.part_kept("out/d/a".into());
    assert_eq!(rx.s.kept_line(1, None, show), tree);
    let failed = rx.s.kept_line(1, Some("EIO".into()), show);
    assert_eq!(failed, "could not keep everything: EIO");
    let mut s = setup(1);
    s.offer.single = true;
    let mut rx = Rx::new(s);
    rx.manifest(&[("a", 10)]);
    rx.begin(0, "a").unwrap();
    rx.data(0, 4).unwrap();
    rx.s.part_kept("out/a".into());
    let alone = "kept out/a.zcpart (4 bytes held)";
    assert_eq!(rx.s.kept_line(0, None, show), alone);
}

/// A directory that was there has landed as it is; one made now is given
/// the mode asked and the entry's time at the end (recv/tree/decide.rs's
/// rule before).
#[test]
fn a_directory_that_was_there_keeps_its_mode_and_time() {
    let mut rx = Rx::new(setup(0));
    let dir = |path: &str| Entry {
        path: path.into(),
        kind: EntryKind::Dir,
        mtime_ns: 9,
        ..Default::default()
    };
    rx.s.dir_made(dir("old"), 0o700, true);
    rx.s.dir_made(dir("new"), 0o750, false);
    let fates: Vec<_> = rx.s.settled().map(|s| (s.path, s.fate)).collect();
    assert_eq!(fates, [("old".to_string(), Fate::Landed)]);
    let new = Later::Dir {
        path: b"new".to_vec(),
        mode: 0o750,
        mtime_ns: 9,
    };
    assert_eq!(rx.s.to_make(), [new]);
}

/// Directories and links are made at the end: one that fails does not
/// land, in words that say which step failed (no integration test makes
/// these fail: it would need a file system that refuses a symlink or a
/// chmod after accepting the mkdir).
#[test]
fn what_is_made_at_the_end_lands_or_says_why_not() {
    let mut rx = Rx::new(setup(0));
    let dir = |path: &str| Later::Dir {
        path: path.into(),
        mode: 0o755,
        mtime_ns: 0,
    };
    let (target, path) = (b"t".to_vec(), b"l".to_vec());
    for later in [dir("d"), Later::Link { path, target }, dir("d/e")] {
        rx.s.later(later);
    }
    let made = rx.s.to_make();
    let order: Vec<_> = (made.iter())
        .map(|l| match l {
            Later::Dir { path, .. } | Later::Link { path, .. } => lossy(path),
        })
        .collect();
    assert_eq!(order, ["l", "d/e", "d"], "links, then deepest first");
    rx.s.made(&made[0], Some("no room".into()));
    rx.s.made(&made[1], Some("read-only".into()));
    rx.s.made(&made[2], None);
    let fates: Vec<_> = rx.s.settled().map(|s| (s.path, s.kind, s.fate)).collect();
    let failed = |why: &str| Fate::Failed(why.into());
    assert_eq!(
        fates,
        [
            (
                "l".into(),
                Shown::Kind(EntryKind::Link),
                failed("cannot make the link: no room")
            ),
            (
                "d/e".into(),
                Shown::Kind(EntryKind::Dir),
                failed("cannot set its mode and time: read-only")
            ),
            ("d".into(), Shown::Kind(EntryKind::Dir), Fate::Landed),
        ]
    );
    assert_eq!((rx.s.ledger().landed, rx.s.ledger().not_landed), (1, 2));
}

/// tests/scripting.rs's second receiver of the same file ("being received
/// by another transfer") and tests/trees.rs's read-only output: what this
/// side's user reads of a path in OUT, and the less a sender without the
/// key hears (the receiver's own state, never what is at the name).
#[test]
fn a_path_that_cannot_be_made_or_opened_is_refused_in_its_words() {
    let busy = Refusal::busy_part("out/f");
    assert_eq!(busy.code, RefuseCode::Busy);
    assert_eq!(busy.why, "out/f is being received by another transfer");
    assert_eq!(busy.to_peer(false), BUSY_TOLD);
    let full = Refusal::unopened_part("out/f", "No space left on device", true);
    assert_eq!(full.why, "out/f.zcpart: No space left on device");
    let told = "cannot be written on the receiver: No space left on device";
    assert_eq!(full.to_peer(false), told);
    let there = Refusal::unopened_part("out/f", "Is a directory", false);
    assert_eq!(there.to_peer(false), UNWRITABLE_TOLD);
    assert_eq!(there.to_peer(true), "out/f.zcpart: Is a directory");
    let dir = Refusal::no_dir("File exists", true);
    assert_eq!(dir.why, "cannot make the directory: File exists");
    assert_eq!(dir.to_peer(false), EXISTS_TOLD);
    assert_eq!(
        Refusal::no_dir("EROFS", false).to_peer(false),
        UNWRITABLE_TOLD
    );
}

/// The digest checked is this side's keyed with the key, as the sender's
/// FILE END carries it; without verifying, the part is kept as it came.
#[test]
fn a_digest_is_checked_keyed_or_not_at_all() {
    let mut rx = Rx {
        s: Session::new(setup(1), Some(Box::new(Key))),
        asked: VecDeque::new(),
    };
    rx.manifest(&[("a", 2)]);
    rx.begin(0, "a").unwrap();
    rx.data(0, 2).unwrap();
    rx.file_end(0, 2).unwrap();
    assert_eq!(
        rx.s.digest(Some([0xf8; 32])),
        Some(Ranges::from_pairs(&[(0, 2)]))
    );
    rx.s.landed();
    assert_eq!(rx.s.single(), None);
    let said = rx.said();
    let Some(ToSender::FileResult(0, r)) = said.last() else {
        panic!("{said:?}");
    };
    assert_eq!(
        (r.status, r.sha256, r.held),
        (Status::Ok, Some([0xf8; 32]), 2)
    );
    let mut s = setup(1);
    s.verify = false;
    let mut rx = Rx::new(s);
    rx.manifest(&[("a", 2)]);
    rx.begin(0, "a").unwrap();
    assert!(!rx.s.hashing(), "not verifying: not hashed");
    rx.data(0, 1).unwrap();
    let Ok(Event::Ended(ended)) = rx.file_end(0, 1) else {
        panic!("no end");
    };
    assert_eq!(ended.then, Then::Told, "incomplete, verified or not");
}

/// A session of one file takes one file at the top, and only it may be a
/// stream; a file counts against --max-size (tests/admission.rs's cases).
#[test]
fn an_entry_fits_the_session_or_is_refused() {
    let show: ShowBytes = |n| format!("{n} B");
    let mut tree = Session::new(setup(3), None);
    let mut stream = file(0, "s", 0);
    stream.stream = true;
    let r = tree.admits(&stream, 1, show).unwrap_err();
    assert_eq!(r.code, RefuseCode::BadOffer);
    assert_eq!(
        r.why,
        "a stream in a tree (only a file alone may be a stream)"
    );
    assert!(tree.admits(&file(1, "d/f", 5), 2, show).is_ok());
    let mut s = setup(1);
    s.offer.single = true;
    s.max_size = Some(10);
    let mut one = Session::new(s, None);
    assert!(
        one.admits(&stream, 1, show).is_ok(),
        "a file alone may be a stream"
    );
    let deep = one.admits(&file(0, "d/f", 5), 2, show).unwrap_err();
    assert_eq!(deep.why, "a session of one file carries one file");
    let mut dir = file(0, "d", 0);
    dir.kind = EntryKind::Dir;
    assert_eq!(
        one.admits(&dir, 1, show).unwrap_err().code,
        RefuseCode::BadName
    );
    let big = one.admits(&file(0, "f", 11), 1, show).unwrap_err();
    assert_eq!(big.why, "the file is 11 B, over --max-size 10 B");
}

/// What a resumed file asks for: what both its part and the file hold
/// (a part cut short, a file that shrank), in as many ranges as a REPLY
/// carries, with the blocks' hashes only when resuming.
#[test]
fn a_held_part_offers_what_it_and_the_file_hold() {
    use crate::protocol::MAX_RANGES;
    let mut s = setup(1);
    s.offer.resume = true;
    let rx = Session::new(s, None);
    let f = file(0, "f", 100);
    let ask = rx.ask(&f, Ranges::from_pairs(&[(0, 60), (80, 120)]), 90);
    assert_eq!(
        ask.held,
        Ranges::from_pairs(&[(0, 60), (80, 90)]),
        "the part is 90 bytes"
    );
    assert_eq!((ask.range, ask.whole, ask.hashes), ((0, 100), true, true));
    let action = Action::Send {
        held: vec![(0, 60), (80, 90)],
        hashes: true,
    };
    assert_eq!(ask.action(), action);
    let ask = rx.ask(&f, Ranges::from_pairs(&[(0, 150)]), 150);
    assert_eq!(
        ask.held,
        Ranges::from_pairs(&[(0, 100)]),
        "the file is 100 bytes"
    );
    let scattered: Vec<_> = (0..MAX_RANGES as u64 + 5)
        .map(|i| (i * 2, i * 2 + 1))
        .collect();
    let f = file(0, "f", 1 << 20);
    let ask = rx.ask(&f, Ranges::from_pairs(&scattered), 1 << 20);
    assert_eq!(ask.held.pairs().len(), MAX_RANGES, "the rest is sent again");
    let mut range = file(0, "f", 100);
    range.range = Some((10, 20));
    let ask = rx.ask(&range, Ranges::new(), 0);
    assert_eq!((ask.range, ask.whole, ask.hashes), ((10, 20), false, false));
    let offset = Session::new(setup(1), None);
    let ask = offset.ask(&file(0, "f", 100), Ranges::from_pairs(&[(0, 50)]), 50);
    assert!(!ask.hashes, "not resuming: held bytes are kept unchecked");
}
