//! The sender's machine against a hostile receiver, without a socket: the
//! frames it may send, in the order it may send them, and what ends a
//! session.

use super::*;
use crate::protocol::ledger::Verdict;
use crate::protocol::tree::{Action, EntryKind, Manifest, Reply};
use crate::protocol::{read_frame, RefuseCode, Status};

const PEER: &str = "127.0.0.1:9";

/// A key whose MACs are plain sums: enough to tell a right one from none.
struct Sums;

fn sum(parts: &[u64]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&parts.iter().sum::<u64>().wrapping_add(1).to_be_bytes());
    out
}

impl Keyed for Sums {
    fn keyed_digest(&self, digest: &[u8; 32]) -> [u8; 32] {
        digest.map(|b| b ^ 0xff)
    }
    fn result_mac(&self, status: u8, held: u64) -> [u8; 32] {
        sum(&[status as u64, held])
    }
    fn file_result_mac(&self, id: u64, status: u8, held: u64) -> [u8; 32] {
        sum(&[id, 100 + status as u64, held])
    }
    fn check_result(&self, status: u8, held: u64, mac: &[u8]) -> bool {
        mac == self.result_mac(status, held)
    }
    fn check_file_result(&self, id: u64, status: u8, held: u64, mac: &[u8]) -> bool {
        mac == self.file_result_mac(id, status, held)
    }
}

fn entry(path: &str, kind: EntryKind, size: u64) -> Entry {
    Entry {
        id: 99, // the machine numbers them
        path: path.as_bytes().to_vec(),
        kind,
        size,
        mode: 0o644,
        mtime_ns: 0,
        target: match kind {
            EntryKind::Link => b"elsewhere".to_vec(),
            _ => Vec::new(),
        },
        range: None,
        stream: false,
    }
}

/// A session that offered `a` (10 bytes), `d` (a directory) and `l` (a
/// link), and sent its MANIFEST.
fn offered(key: Option<Box<dyn Keyed + Send>>) -> Session {
    let mut s = Session::new(None, true, PEER, key);
    s.offer(entry("a", EntryKind::File, 10));
    s.offer(entry("d", EntryKind::Dir, 0));
    s.offer(entry("l", EntryKind::Link, 0));
    s.manifest_done();
    s
}

/// A session of one file named `f`, `range` of it asked for.
fn alone(range: Option<(u64, u64)>) -> Option<Alone> {
    let name = "f".into();
    Some(Alone {
        name,
        range,
        forced: false,
    })
}

fn frames(bytes: &[u8]) -> Vec<ToReceiver> {
    let mut r = bytes;
    let mut out = Vec::new();
    while !r.is_empty() {
        let frame = read_frame(&mut r).expect("whole frames");
        out.push(ToReceiver::decode(&frame).expect("frames a receiver takes"));
    }
    out
}

fn reply(id: u64, action: Action) -> ToSender {
    ToSender::Reply(Reply { id, action })
}

fn wanted(held: &[(u64, u64)], hashes: bool) -> Action {
    Action::Send {
        held: held.to_vec(),
        hashes,
    }
}

fn outcome(status: Status, held: u64) -> Outcome {
    Outcome {
        status,
        sha256: None,
        held,
        message: Default::default(),
        mac: None,
    }
}

fn block(offset: u64, len: u32) -> BlockHash {
    BlockHash {
        offset,
        len,
        sha256: [0; 32],
    }
}

/// Feeds frames until one is refused; the refusal's line.
fn refusal(s: &mut Session, msgs: Vec<ToSender>) -> String {
    for msg in msgs {
        if let Err(v) = s.handle(msg) {
            return v.to_string();
        }
    }
    panic!("every frame was taken")
}

fn settled(event: Option<Event>) -> Fate {
    match event {
        Some(Event::Settled(s)) => s.fate,
        other => panic!("not settled: {other:?}"),
    }
}

#[test]
fn a_session_offers_sends_and_concludes() {
    let mut s = offered(None);
    let out = frames(&s.take_outbox());
    assert_eq!(out.len(), 4, "{out:?}");
    let ToReceiver::Entry(link) = &out[2] else {
        panic!("{out:?}")
    };
    assert_eq!((link.id, link.target.as_slice()), (2, &b"elsewhere"[..]));
    assert!(
        s.entry(2).unwrap().target.is_empty(),
        "the target went once"
    );
    assert_eq!(
        out[3],
        ToReceiver::Manifest(Manifest {
            entries: 3,
            failed: 0
        })
    );
    assert_eq!(s.handle(reply(0, wanted(&[], false))), Ok(None));
    assert_eq!(
        settled(s.handle(reply(1, Action::Done)).unwrap()),
        Fate::Landed
    );
    assert_eq!(
        settled(s.handle(reply(2, Action::Skip)).unwrap()),
        Fate::UpToDate
    );
    assert_eq!(s.handle(ToSender::Keepalive), Ok(None));
    assert_eq!(s.handle(ToSender::Go), Ok(Some(Event::Go)));
    assert_eq!(s.phase(), Phase::Sending);
    assert_eq!((s.to_send(1), s.to_send(7)), (None, None), "not wanted");
    let job = s.to_send(0).unwrap();
    assert_eq!(
        (job.ranges, job.whole, job.resumed),
        (vec![(0, 10)], true, false)
    );
    s.begin(0);
    s.file_end(0, 10, Some([1; 32]));
    s.end(10);
    let out = frames(&s.take_outbox());
    assert!(matches!(&out[0], ToReceiver::Begin(b) if b.id == 0 && b.path == b"a"));
    assert!(
        matches!(&out[1], ToReceiver::FileEnd(e) if e.sent == 10 && e.sha256 == Some([1; 32])),
        "no key: the digest as it is: {out:?}"
    );
    assert_eq!(
        out[2],
        ToReceiver::End(TreeEnd {
            sent: 10,
            failed: 0
        })
    );
    let mut landed = outcome(Status::Ok, 10);
    landed.sha256 = Some([1; 32]);
    let got = s.handle(ToSender::FileResult(0, landed)).unwrap();
    let Some(Event::Settled(one)) = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        (one.fate, one.bytes, one.sha256),
        (Fate::Landed, 10, Some([1; 32]))
    );
    assert_eq!((s.files_landed(), s.unchecked()), (1, false));
    assert_eq!(s.verdict(), None, "no RESULT yet");
    let got = s.handle(ToSender::Result(outcome(Status::Ok, 3)));
    assert_eq!(got, Ok(Some(Event::Concluded)));
    assert_eq!(s.verdict(), Some(Verdict::Complete));
    assert_eq!(s.ledger().accounted(), 3);
}

/// tests/trees.rs `a_sender_stops_at_a_second_go` and the order rules.
#[test]
fn frames_out_of_order_end_the_session_with_their_name() {
    let cases: [(Vec<ToSender>, &str); 5] = [
        (vec![ToSender::Go, ToSender::Go], "GO after GO"),
        (vec![ToSender::Go, reply(0, Action::Skip)], "REPLY after GO"),
        (
            vec![ToSender::Go, ToSender::FileHashes(0, Vec::new(), true)],
            "FILE HASHES after GO",
        ),
        (
            vec![ToSender::FileResult(0, outcome(Status::Ok, 0))],
            "FILE RESULT before GO",
        ),
        (
            vec![
                ToSender::Go,
                ToSender::Result(outcome(Status::Ok, 0)),
                ToSender::Keepalive,
            ],
            "KEEPALIVE after the session's RESULT",
        ),
    ];
    for (msgs, why) in cases {
        let mut s = offered(None);
        assert_eq!(refusal(&mut s, msgs), format!("{PEER}: unexpected {why}"));
    }
    let refuse = ToSender::Answer(Answer::Refuse {
        code: RefuseCode::TooLarge,
        reason: "no room".into(),
    });
    let mut s = offered(None);
    let said = Ending::Refused(format!("{PEER} refused: no room"));
    assert_eq!(s.handle(refuse), Ok(Some(Event::Ended(said))));
    assert_eq!(s.phase(), Phase::Concluded);
}

#[test]
fn answers_must_be_for_entries_offered_and_come_once() {
    let mut s = offered(None);
    let why = refusal(&mut s, vec![reply(3, Action::Skip)]);
    assert_eq!(
        why,
        format!("{PEER}: an answer for entry 3, which was never offered")
    );
    let why = refusal(&mut s, vec![reply(1, Action::Skip), reply(1, Action::Done)]);
    assert_eq!(why, "a second reply for entry 1");
    let mut s = offered(None);
    let hashes = ToSender::FileHashes(1, vec![block(0, 4)], true);
    assert_eq!(
        refusal(&mut s, vec![hashes]),
        "hashes for entry 1, which is not being sent"
    );
    let mut s = offered(None);
    let msgs = vec![
        reply(0, wanted(&[], false)),
        ToSender::Go,
        ToSender::FileResult(0, outcome(Status::Ok, 10)),
    ];
    assert_eq!(
        refusal(&mut s, msgs),
        "a result for an entry that was not sent (entry 0)"
    );
}

/// tests/trees.rs `a_sender_refuses_a_held_block_hashed_twice`: FILE HASHES
/// only for held bytes offered for checking, each once, refused whole
/// before any block is hashed.
#[test]
fn hashes_only_for_held_bytes_each_once() {
    let mut s = offered(None);
    s.handle(reply(0, wanted(&[(0, 8)], true))).unwrap();
    assert_eq!(s.held(0).map(|h| h.total()), Some(8));
    let why = refusal(
        &mut s,
        vec![ToSender::FileHashes(0, vec![block(4, 8)], false)],
    );
    assert_eq!(why, "a hash for bytes 4..12, which are not held (entry 0)");
    let twice = ToSender::FileHashes(0, vec![block(0, 4), block(0, 4)], false);
    assert!(refusal(&mut s, vec![twice]).contains("overlap bytes hashed already"));
    // a frame taken whole: its blocks, for the driver to hash
    let mut s = offered(None);
    s.handle(reply(0, wanted(&[(0, 8)], true))).unwrap();
    let blocks = vec![block(0, 4), block(4, 4)];
    let got = s.handle(ToSender::FileHashes(0, blocks.clone(), true));
    let want = Event::CheckBlocks {
        id: 0,
        blocks,
        last: true,
    };
    assert_eq!(got, Ok(Some(want)));
    s.matched(0, &[(0, 4)]);
    s.handle(ToSender::Go).unwrap();
    let job = s.to_send(0).unwrap();
    assert_eq!(
        (job.ranges, job.resumed, job.whole),
        (vec![(4, 10)], true, true)
    );
}

/// Without `--resume`, what is held is sent again and no hash is taken.
#[test]
fn a_sender_not_resuming_takes_no_hashes() {
    let mut s = Session::new(None, false, PEER, None);
    s.offer(entry("a", EntryKind::File, 10));
    s.handle(reply(0, wanted(&[(0, 8)], true))).unwrap();
    let why = refusal(
        &mut s,
        vec![ToSender::FileHashes(0, vec![block(0, 4)], true)],
    );
    assert_eq!(why, "a hash for bytes 0..4, which are not held (entry 0)");
}

/// tests/trees.rs `a_sender_reports_why_the_receiver_gave_up_before_go`
/// and `a_result_before_go_counts_only_with_the_keys_mac`.
#[test]
fn a_result_before_go_is_the_receiver_giving_up_under_the_keys_mac() {
    let mut s = offered(None);
    let mut failed = outcome(Status::Failed, 0);
    failed.message = "the output disk is on fire".into();
    let got = s.handle(ToSender::Result(failed.clone()));
    let said = format!("{PEER} failed: the output disk is on fire");
    assert_eq!(got, Ok(Some(Event::Ended(Ending::Failed(said)))));
    let mut s = offered(None);
    let got = s.handle(ToSender::Result(outcome(Status::Failed, 0)));
    let said = format!("{PEER} failed: it ended the session before GO");
    assert_eq!(got, Ok(Some(Event::Ended(Ending::Failed(said)))));
    for mac in [None, Some([7; 32])] {
        let mut s = offered(Some(Box::new(Sums)));
        failed.mac = mac;
        let v = s.handle(ToSender::Result(failed.clone())).unwrap_err();
        assert!(v.is_forgery(), "{v}");
        assert_eq!(
            v.to_string(),
            format!(
                "{PEER}: the receiver's answer does not carry the key's MAC (altered in transit?)"
            )
        );
        assert!(!s.genuine(&failed));
    }
    let mut s = offered(Some(Box::new(Sums)));
    failed.mac = Some(Sums.result_mac(2, 0));
    assert!(matches!(
        s.handle(ToSender::Result(failed)),
        Ok(Some(Event::Ended(Ending::Failed(_))))
    ));
}

#[test]
fn with_a_key_file_results_carry_its_mac_and_digests_are_keyed() {
    let mut s = offered(Some(Box::new(Sums)));
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.take_outbox();
    s.begin(0);
    s.file_end(0, 10, Some([1; 32]));
    let out = frames(&s.take_outbox());
    assert!(
        matches!(&out[1], ToReceiver::FileEnd(e) if e.sha256 == Some([0xfe; 32])),
        "{out:?}"
    );
    let mut forged = outcome(Status::Ok, 10);
    forged.mac = Some(Sums.file_result_mac(1, 0, 10)); // another entry's
    let v = s
        .handle(ToSender::FileResult(0, forged.clone()))
        .unwrap_err();
    assert!(v.is_forgery());
    assert_eq!(
        v.to_string(),
        format!("{PEER}: the result for a does not carry the key's MAC")
    );
    let mut s = offered(Some(Box::new(Sums)));
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.begin(0);
    s.file_end(0, 10, None);
    forged.mac = Some(Sums.file_result_mac(0, 0, 10));
    assert_eq!(
        settled(s.handle(ToSender::FileResult(0, forged)).unwrap()),
        Fate::Landed
    );
    assert!(s.unchecked(), "landed without the receiver's digest");
}

#[test]
fn a_file_given_up_tells_the_receiver_only_after_its_begin() {
    let mut s = offered(None);
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.take_outbox();
    let gone = s.give_up(0, 0, "cannot open it");
    assert_eq!(gone.fate, Fate::Failed("cannot open it".into()));
    assert!(s.take_outbox().is_empty(), "no BEGIN, no FILE END");
    // the receiver's word on it changes nothing
    let got = s.handle(ToSender::FileResult(0, outcome(Status::Failed, 0)));
    assert_eq!(got, Ok(None));
    let mut s = offered(None);
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.take_outbox();
    s.begin(0);
    s.give_up(0, 4, "it shrank");
    let out = frames(&s.take_outbox());
    let want = FileEnd {
        id: 0,
        sent: 4,
        sha256: None,
        failed: Some("it shrank".into()),
    };
    assert_eq!(out[1], ToReceiver::FileEnd(want));
    s.handle(reply(1, Action::Done)).unwrap_err(); // after GO
}

#[test]
fn the_verdict_counts_what_the_receiver_left_unanswered() {
    // a receiver that failed: what it did not answer failed with its words
    let mut s = offered(None);
    s.handle(reply(1, Action::Done)).unwrap();
    s.handle(ToSender::Go).unwrap();
    let mut failed = outcome(Status::Failed, 1);
    failed.message = "disk full".into();
    s.handle(ToSender::Result(failed)).unwrap();
    let line = format!(
        "2 entries did not land: a ({PEER} failed: disk full); l ({PEER} failed: disk full)"
    );
    assert_eq!(s.verdict(), Some(Verdict::Partial(line.clone())));
    assert_eq!(s.verdict(), Some(Verdict::Partial(line)), "counted once");
    // a receiver that accounts for other entries than this side
    let mut s = offered(None);
    for id in 0..3 {
        s.handle(reply(id, Action::Skip)).unwrap();
    }
    s.handle(ToSender::Go).unwrap();
    s.handle(ToSender::Result(outcome(Status::Ok, 5))).unwrap();
    let line = format!("{PEER} accounts for 5 entries, this side for 3");
    assert_eq!(s.verdict(), Some(Verdict::Partial(line)));
    // every entry fine, but the receiver's RESULT says it stopped
    let mut s = offered(None);
    for id in 0..3 {
        s.handle(reply(id, Action::Skip)).unwrap();
    }
    s.handle(ToSender::Go).unwrap();
    let mut stopped = outcome(Status::Stopped, 3);
    stopped.message = "stopped".into();
    s.handle(ToSender::Result(stopped)).unwrap();
    assert_eq!(
        s.verdict(),
        Some(Verdict::Partial(format!("{PEER}: stopped")))
    );
}

#[test]
fn a_session_of_one_file_keeps_its_fate() {
    let mut s = Session::new(alone(None), true, PEER, None);
    assert_eq!(s.one_fate(), Some(&Fate::Landed));
    s.offer(entry("f", EntryKind::File, 10));
    let refuse = Action::Refuse {
        code: RefuseCode::Exists,
        reason: "exists".into(),
    };
    s.handle(reply(0, refuse)).unwrap();
    assert_eq!(s.one_fate(), Some(&Fate::Refused("exists".into())));
    // a mismatch, and a file the walk could not read
    let mut s = Session::new(alone(None), true, PEER, None);
    s.offer(entry("f", EntryKind::File, 10));
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.begin(0);
    s.file_end(0, 10, Some([0; 32]));
    s.handle(ToSender::FileResult(0, outcome(Status::Mismatch, 0)))
        .unwrap();
    assert_eq!(s.one_fate(), Some(&Fate::Mismatch));
    let mut s = Session::new(alone(None), true, PEER, None);
    assert_eq!(s.walk_failed("f", "gone").fate, Fate::Failed("gone".into()));
    assert_eq!(
        (s.one_fate(), s.walk_failures()),
        (Some(&Fate::Failed("gone".into())), 1)
    );
    assert!(Session::new(None, true, PEER, None).one_fate().is_none());
}

/// A stream's size is known at its FILE END: a result for what went lands it.
#[test]
fn a_stream_is_as_long_as_what_went() {
    let mut s = Session::new(alone(None), false, PEER, None);
    let mut stream = entry("-", EntryKind::File, 0);
    stream.stream = true;
    s.offer(stream);
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.begin(0);
    s.file_end(0, 1234, None);
    assert_eq!(s.entry(0).unwrap().size, 1234);
    let got = s.handle(ToSender::FileResult(0, outcome(Status::Ok, 1234)));
    assert_eq!(settled(got.unwrap()), Fate::Landed);
}

/// `--offset`/`--count`: a range that leaves the file unfinished is held.
#[test]
fn a_range_that_leaves_the_file_unfinished_is_held() {
    let mut s = Session::new(alone(None), true, PEER, None);
    let mut ranged = entry("f", EntryKind::File, 100);
    ranged.range = Some((10, 20));
    s.offer(ranged);
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    let job = s.to_send(0).unwrap();
    assert_eq!(
        (job.offered(), job.ranges, job.whole),
        ((10, 20), vec![(10, 20)], false)
    );
    s.begin(0);
    s.file_end(0, 10, None);
    let got = s.handle(ToSender::FileResult(0, outcome(Status::Ok, 20)));
    assert_eq!(settled(got.unwrap()), Fate::Held(20));
}

/// A file alone that did not land ends as a single transfer did: a
/// refusal (exit 4) or its source's failure (exit 1), not "partial"
/// (tests/core.rs and tests/scripting.rs exit codes of a refused or
/// vanished file; the driver's `single_error` before).
#[test]
fn a_file_alone_ends_with_the_words_of_a_single_transfer() {
    let refuse = Action::Refuse {
        code: RefuseCode::Exists,
        reason: "exists".into(),
    };
    let mut s = Session::new(alone(None), true, PEER, None);
    s.offer(entry("f", EntryKind::File, 10));
    s.handle(reply(0, refuse)).unwrap();
    s.handle(ToSender::Go).unwrap();
    assert_eq!(s.ending(), None, "no RESULT yet");
    s.handle(ToSender::Result(outcome(Status::Ok, 0))).unwrap();
    let said = format!("{PEER} refused: exists");
    assert_eq!(s.ending(), Some(Ending::Refused(said)));
    // given up here, after its BEGIN: its name and why
    let mut s = Session::new(alone(None), true, PEER, None);
    s.offer(entry("f", EntryKind::File, 10));
    s.handle(reply(0, wanted(&[], false))).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.begin(0);
    s.give_up(0, 3, "it shrank");
    s.handle(ToSender::Result(outcome(Status::Ok, 0))).unwrap();
    assert_eq!(s.ending(), Some(Ending::Failed("f: it shrank".into())));
    // landed, but the receiver accounts for another count: its word
    let mut s = Session::new(alone(None), true, PEER, None);
    s.offer(entry("f", EntryKind::File, 0));
    s.handle(reply(0, Action::Done)).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.handle(ToSender::Result(outcome(Status::Ok, 2))).unwrap();
    let line = format!("{PEER} accounts for 2 entries, this side for 1");
    assert_eq!(s.ending(), Some(Ending::Failed(line)));
    // a tree: partial, with the ledger's line
    let mut s = offered(None);
    s.handle(reply(0, Action::Skip)).unwrap();
    s.handle(ToSender::Go).unwrap();
    s.handle(ToSender::Result(outcome(Status::Ok, 1))).unwrap();
    assert!(
        matches!(s.ending(), Some(Ending::Partial(l)) if l.starts_with("2 entries did not land"))
    );
}

/// After a lost connection, what the receiver said is its reason only
/// under the key's MAC (tests/trees.rs
/// `a_result_before_go_counts_only_with_the_keys_mac`; a tree refused
/// mid-manifest, tests/admission.rs).
#[test]
fn why_a_receiver_dropped_this_side_counts_under_the_keys_mac() {
    let mut full = outcome(Status::Failed, 0);
    full.message = "the disk is full".into();
    let s = offered(None);
    let said = Ending::Failed(format!("{PEER} failed: the disk is full"));
    assert_eq!(s.why_lost(ToSender::Result(full.clone())), Some(said));
    let refuse = ToSender::Answer(Answer::Refuse {
        code: RefuseCode::TooLarge,
        reason: "no room".into(),
    });
    let said = Ending::Refused(format!("{PEER} refused: no room"));
    assert_eq!(s.why_lost(refuse), Some(said));
    assert_eq!(s.why_lost(ToSender::Go), None);
    assert_eq!(s.why_lost(ToSender::Result(outcome(Status::Ok, 0))), None);
    let s = offered(Some(Box::new(Sums)));
    assert_eq!(s.why_lost(ToSender::Result(full.clone())), None, "no MAC");
    full.mac = Some(Sums.result_mac(Status::Failed as u8, 0));
    assert!(s.why_lost(ToSender::Result(full)).is_some());
}

/// After STOP: what the receiver keeps, a file alone's bytes or a tree's
/// entries (tests/resume.rs
/// `sigint_to_the_sender_prints_a_resume_command_that_works`).
#[test]
fn a_stopped_receiver_says_what_it_keeps() {
    let stopped = ToSender::Result(outcome(Status::Stopped, 4));
    let mut s = Session::new(alone(None), true, PEER, None);
    s.offer(entry("f", EntryKind::File, 10));
    let said = "the receiver holds 4 bytes of 10";
    assert_eq!(s.kept(&stopped).as_deref(), Some(said));
    let said = "the receiver keeps what it got (4 entries in place)";
    assert_eq!(offered(None).kept(&stopped).as_deref(), Some(said));
    assert_eq!(offered(None).kept(&ToSender::Go), None);
    assert_eq!(offered(Some(Box::new(Sums))).kept(&stopped), None, "no MAC");
}

/// Held blocks that differ are warned about, the first eight one by one
/// and the rest counted once the file's hashes are in (tests/resume.rs
/// `a_flipped_byte_in_the_held_part_is_resent_with_a_warning`,
/// `other_content_with_the_same_mtime_is_caught_by_the_block_hashes`).
#[test]
fn blocks_that_differ_are_warned_about_eight_at_most() {
    let mut s = Session::new(None, true, PEER, None);
    s.offer(entry("a\nb", EntryKind::File, 20));
    let held = [(0, 20)];
    s.handle(reply(0, wanted(&held, true))).unwrap();
    let good = block(0, 2);
    assert_eq!(s.checked(0, &good, &good.sha256), None);
    assert_eq!(s.unwarned(0), None);
    let mut warned = Vec::new();
    for at in 1..11 {
        warned.extend(s.checked(0, &block(2 * at, 2), &[9; 32]));
    }
    assert_eq!(warned.len(), 8, "{warned:?}");
    let first = "a\\nb: the receiver's bytes 2..4 differ from the source; re-sending them";
    assert_eq!(warned[0], first, "the path escaped");
    assert_eq!(s.bad_blocks(), 10);
    let said = "a\\nb: 2 more blocks differ and are re-sent";
    assert_eq!(s.unwarned(0).as_deref(), Some(said));
    assert_eq!(
        s.to_send(0).unwrap().ranges,
        vec![(2, 20)],
        "the good block stays"
    );
}

/// A file alone goes as the range asked for; a stream by its name.
#[test]
fn a_file_alone_is_offered_as_its_range_and_a_stream_by_its_name() {
    let mut s = Session::new(alone(Some((2, 5))), true, PEER, None);
    s.offer(entry("f", EntryKind::File, 10));
    assert_eq!(s.entry(0).unwrap().range, Some((2, 5)));
    let mut s = Session::new(alone(None), true, PEER, None);
    s.offer_stream(7);
    let e = s.entry(0).unwrap();
    assert_eq!((&e.path[..], e.stream, e.mtime_ns), (&b"f"[..], true, 7));
}

/// Ctrl-C before END sends STOP; after END the receiver reads no more
/// frames (its RESULT is on the way), so none is queued (tests/trees.rs
/// `sigint_while_the_sender_waits_for_the_result_prints_a_resume_command`).
#[test]
fn no_stop_follows_end() {
    let mut s = offered(None);
    s.take_outbox();
    assert!(s.stop());
    assert_eq!(frames(&s.take_outbox()), vec![ToReceiver::Stop]);
    s.end(0);
    s.take_outbox();
    assert!(!s.stop(), "STOP after END");
    assert!(s.take_outbox().is_empty());
}

/// The OFFER says what the session is: a file alone sent with `--offset`
/// is never resumed, `--no-resume` starts afresh, and a tree is counted
/// as it is sent (the offers tests/core.rs and tests/resume.rs make).
#[test]
fn the_offer_says_what_the_session_is() {
    let tree = Session::new(None, true, PEER, None).tree_offer((0, 0), true, None);
    assert!(tree.resume && !tree.fresh && !tree.single && tree.streamed);
    let mut forced = alone(Some((4, 8)));
    forced.as_mut().unwrap().forced = true;
    let one = Session::new(forced, true, PEER, None).tree_offer((1, 4), true, None);
    assert!(!one.resume && !one.fresh && one.single && !one.streamed);
    assert_eq!((one.entries, one.bytes), (1, 4));
    let fresh = Session::new(alone(None), false, PEER, None).tree_offer((1, 9), false, None);
    assert!(!fresh.resume && fresh.fresh && !fresh.verify);
}

/// A file whose size or mtime moved between its ENTRY and its reading is
/// not sent, and says why (no integration test changes a file in that gap).
#[test]
fn a_file_that_changed_since_its_offer_is_not_sent() {
    let mut s = Session::new(None, true, PEER, None);
    let mut a = entry("a", EntryKind::File, 10);
    a.mtime_ns = 5;
    s.offer(a);
    assert_eq!(s.unchanged(0, 10, 5), Ok(()));
    let shrank = "changed while it was being sent (10 bytes then, 4 now)";
    assert_eq!(s.unchanged(0, 4, 5), Err(shrank.to_string()));
    let touched = s.unchanged(0, 10, 6).unwrap_err();
    assert!(touched.contains("rewritten, replaced"), "{touched}");
}
