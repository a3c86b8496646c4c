//! Whole sessions between the two machines, without sockets.

use super::*;
use crate::protocol::ledger::Ledger;

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn tree() -> Vec<Src> {
    vec![
        Src::dir("d"),
        Src::file("d/a", &data(2500, 1)),
        Src::file("b", &[]),
        Src::link("l", "d/a"),
        Src::file("c", &data(999, 2)),
    ]
}

fn counts(l: &Ledger) -> [u64; 5] {
    [l.landed, l.up_to_date, l.not_landed, l.mismatched, l.held]
}

fn session(src: &[Src], plan: TxPlan, parts: &[(&str, Vec<u8>)], pipe: &mut Pipe) -> (Tx, Rx) {
    let (mut tx, mut rx) = (Tx::new(src, plan), Rx::new(src));
    for (path, part) in parts {
        rx.parts.insert(path.to_string(), part.clone());
    }
    run(&mut tx, &mut rx, pipe);
    (tx, rx)
}

fn fates_rx(rx: &Rx) -> Vec<(String, Fate)> {
    rx.settled
        .iter()
        .map(|s| (s.path.clone(), s.fate.clone()))
        .collect()
}

#[test]
fn a_tree_lands_whole_and_both_sides_agree() {
    let src = tree();
    let (tx, rx) = session(&src, TxPlan::default(), &[], &mut Pipe::clean());
    assert_eq!((&tx.error, &rx.error), (&None, &None));
    assert_eq!(tx.verdict, Some(Verdict::Complete));
    assert_eq!(rx.verdict, Some(Verdict::Complete));
    assert_eq!(counts(tx.s.ledger()), counts(rx.s.ledger()));
    assert_eq!(counts(rx.s.ledger()), [5, 0, 0, 0, 0]);
    for e in src.iter().filter(|e| e.kind == EntryKind::File) {
        assert_eq!(rx.disk.get(&e.path), Some(&e.data), "{}", e.path);
    }
    assert_eq!(tx.sent, 2500 + 999);
    assert!(rx.unfilled.is_empty());
}

/// `--no-verify` on both sides: no digest goes or is checked, the tree
/// lands whole, and a byte flipped on the way lands flipped (what the flag
/// gives up; with it, the same flip is a mismatch, above), never a file
/// with bytes missing.
#[test]
fn without_verification_files_land_as_they_came() {
    let plan = TxPlan {
        no_verify: true,
        ..Default::default()
    };
    let unverified = |src: &[Src], pipe: &mut Pipe| {
        let (mut tx, mut rx) = (Tx::new(src, plan.clone()), Rx::verifying(src, false));
        run(&mut tx, &mut rx, pipe);
        assert_eq!((&tx.error, &rx.error), (&None, &None));
        assert_eq!(
            (&tx.verdict, &rx.verdict),
            (&Some(Verdict::Complete), &Some(Verdict::Complete))
        );
        assert!(rx.unfilled.is_empty());
        rx
    };
    let src = tree();
    let rx = unverified(&src, &mut Pipe::clean());
    assert_eq!(counts(rx.s.ledger()), [5, 0, 0, 0, 0]);
    for e in src.iter().filter(|e| e.kind == EntryKind::File) {
        assert_eq!(rx.disk.get(&e.path), Some(&e.data), "{}", e.path);
    }
    // ENTRY, MANIFEST; REPLY, GO; BEGIN, then the DATA frame
    let src = vec![Src::file("a", &data(10, 3))];
    let mut ops: VecDeque<Op> = [Op::Pass; 5].into();
    ops.push_back(Op::Flip { at: 3, mask: 0x40 });
    let rx = unverified(
        &src,
        &mut Pipe {
            ops,
            ..Pipe::clean()
        },
    );
    let mut flipped = data(10, 3);
    flipped[3] ^= 0x40;
    assert_eq!(rx.disk.get("a"), Some(&flipped));
}

#[test]
fn a_resumed_file_sends_only_what_is_missing() {
    let src = tree();
    let whole = &src[1].data;
    let part = whole[..2000].to_vec();
    let (tx, rx) = session(
        &src,
        TxPlan::default(),
        &[("d/a", part)],
        &mut Pipe::clean(),
    );
    assert_eq!(tx.verdict, Some(Verdict::Complete));
    assert_eq!(rx.verdict, Some(Verdict::Complete));
    assert_eq!(rx.disk.get("d/a"), Some(whole));
    assert_eq!(tx.sent, 500 + 999, "the 2000 bytes held are not sent again");
    // a held block that differs from the source is sent again
    let mut bad = whole[..2000].to_vec();
    bad[1500] ^= 1;
    let (tx, rx) = session(&src, TxPlan::default(), &[("d/a", bad)], &mut Pipe::clean());
    assert_eq!(rx.verdict, Some(Verdict::Complete));
    assert_eq!(rx.disk.get("d/a"), Some(whole));
    assert_eq!(tx.sent, 1500 + 999, "block 1000..2000 again");
}

/// Exit 3's verdict: a payload byte altered on the way.
#[test]
fn a_corrupted_payload_byte_is_a_mismatch_on_both_sides() {
    let src = vec![Src::file("a", &data(10, 3))];
    // ENTRY, MANIFEST; REPLY, GO; BEGIN, then the DATA frame
    let mut ops: VecDeque<Op> = [Op::Pass; 5].into();
    ops.push_back(Op::Flip { at: 3, mask: 0x40 });
    let mut pipe = Pipe {
        ops,
        ..Pipe::clean()
    };
    let (tx, rx) = session(&src, TxPlan::default(), &[], &mut pipe);
    let line = "1 entry did not land: a (SHA-256 mismatch, not kept)".to_string();
    assert_eq!(rx.verdict, Some(Verdict::Integrity(line.clone())));
    assert_eq!(tx.verdict, Some(Verdict::Integrity(line)));
    assert!(rx.disk.is_empty());
    assert_eq!(counts(tx.s.ledger()), counts(rx.s.ledger()));
}

#[test]
fn a_file_the_sender_gives_up_on_is_partial_on_both_sides() {
    let src = tree();
    let plan = TxPlan {
        give_up: Some(1),
        ..Default::default()
    };
    let (tx, rx) = session(&src, plan, &[], &mut Pipe::clean());
    assert_eq!((&tx.error, &rx.error), (&None, &None));
    let rx_line = "1 entry did not land: d/a (the sender: it shrank)".to_string();
    assert_eq!(rx.verdict, Some(Verdict::Partial(rx_line)));
    let tx_line = "1 entry did not land: d/a (it shrank)".to_string();
    assert_eq!(tx.verdict, Some(Verdict::Partial(tx_line)));
    assert_eq!(counts(tx.s.ledger()), counts(rx.s.ledger()));
    assert!(!rx.disk.contains_key("d/a"));
    assert_eq!(rx.disk.get("c"), Some(&src[4].data), "the rest lands");
    assert!(fates_rx(&rx).contains(&("d/a".into(), Fate::Failed("the sender: it shrank".into()))));
}

#[test]
fn a_stop_mid_file_ends_both_sides_with_nothing_of_it_landed() {
    let src = tree();
    let plan = TxPlan {
        stop_in: Some(1),
        ..Default::default()
    };
    let (tx, rx) = session(&src, plan, &[], &mut Pipe::clean());
    assert!(tx.stopped);
    assert_eq!((&tx.error, &rx.error), (&None, &None));
    assert_eq!(rx.s.phase(), receiver::Phase::Ended);
    assert_eq!(rx.verdict, None, "no END: nothing concluded");
    assert!(rx.disk.is_empty());
    assert_eq!(rx.s.ledger().landed, 0, "d and l are made at the end");
    // the receiver's RESULT says it stopped: what it left is not landed
    let Some(Verdict::Partial(line)) = &tx.verdict else {
        panic!("{:?}", tx.verdict);
    };
    assert!(
        line.contains(&format!("d/a ({PEER} failed: stopped)")),
        "{line}"
    );
    // the sender counts a directory and a link landed at their REPLY
    // (Done), before the receiver makes them at its end
    assert_eq!(tx.s.ledger().landed, 2);
    assert_eq!(tx.s.ledger().not_landed, 3, "d/a, b and c");
}

/// A wanted file of any shape, for the DATA table.
#[derive(Debug)]
struct Shaped(Entry);

impl Wanted for Shaped {
    fn id(&self) -> u64 {
        0
    }
    fn path(&self) -> &[u8] {
        &self.0.path
    }
    fn shape(&self) -> (u64, (u64, u64), Ranges, bool, bool) {
        let e = &self.0;
        let range = match (e.stream, e.range) {
            (true, cap) => cap.unwrap_or((0, 0)),
            (false, _) => e.offered(),
        };
        (e.size, range, Ranges::new(), e.stream, true)
    }
}

/// What a row says: the case, its entry, its DATA, why it is refused.
type Row<'a> = (&'a str, Entry, &'a [(u64, u64)], &'a str);

/// The DATA rows of tests/hardening.rs absurd_sizes_and_offsets_are_refused
/// ("lie"), moved here: an accepted entry whose DATA then lies ends the
/// session before a byte of it is written.
#[test]
fn data_that_lies_about_its_entry_is_a_violation() {
    let max = u64::MAX;
    let file = |size, range| {
        let mut e = Src::file("f", &[]).entry();
        (e.size, e.range) = (size, range);
        e
    };
    let stream = |cap: Option<u64>| {
        let mut e = Src::file("f", &[]).entry();
        (e.stream, e.range) = (true, cap.map(|c| (0, c)));
        e
    };
    let rows: [Row; 7] = [
        (
            "after the whole file",
            file(10, None),
            &[(0, 10), (10, 5)],
            "past the end of the file (byte 10)",
        ),
        (
            "2^64-1 bytes",
            file(10, None),
            &[(0, max)],
            "past the end of the file (byte 10)",
        ),
        (
            "offset + length past 2^64",
            file(10, None),
            &[(0, 10), (max - 1, 5)],
            "past the end",
        ),
        (
            "before the range",
            file(10, Some((5, 10))),
            &[(0, 10)],
            "data before the range offered",
        ),
        (
            "a stream backwards",
            stream(None),
            &[(4, 4), (0, 4)],
            "arrived where byte 0 was due",
        ),
        (
            "past a stream's cap after it",
            stream(Some(4)),
            &[(0, 4), (4, 4)],
            "past the end of the file (byte 4)",
        ),
        (
            "a stream's first at 100",
            stream(None),
            &[(100, 1)],
            "data for byte 100 arrived where byte 0 was due",
        ),
    ];
    for (what, entry, data, why) in rows {
        let setup = Setup {
            offer: TreeOffer {
                entries: 1,
                single: entry.stream,
                ..Default::default()
            },
            max_files: 1,
            ..Default::default()
        };
        let mut s = receiver::Session::new(setup, None);
        let mut asked = VecDeque::new();
        let take =
            |s: &mut receiver::Session, asked: &mut VecDeque<Shaped>, msg| s.handle(msg, asked);
        assert!(
            take(&mut s, &mut asked, ToReceiver::Entry(entry.clone())).is_ok(),
            "{what}"
        );
        asked.push_back(Shaped(entry));
        let m = super::super::tree::Manifest {
            entries: 1,
            failed: 0,
        };
        take(&mut s, &mut asked, ToReceiver::Manifest(m)).unwrap();
        s.go();
        let begin = super::super::tree::Begin {
            id: 0,
            path: b"f".to_vec(),
        };
        take(&mut s, &mut asked, ToReceiver::Begin(begin)).unwrap();
        let mut refused = None;
        for &(offset, len) in data {
            match take(&mut s, &mut asked, ToReceiver::Data { offset, len }) {
                Ok(receiver::Event::Write(w)) => s.arrived(w.offset, w.end),
                Ok(e) => panic!("{what}: {e:?}"),
                Err(v) => {
                    refused = Some(v.to_string());
                    break;
                }
            }
        }
        let refused = refused.unwrap_or_else(|| panic!("{what}: taken"));
        assert!(
            refused.starts_with("f: data") && refused.contains(why),
            "{what}: {refused}"
        );
    }
}
