//! The property: whatever happens to the frames between the two machines
//! (dropped, repeated, swapped, a payload byte flipped, the connection
//! cut), neither panics, and neither side's ledger says a file landed
//! unless all of its bytes arrived and its digest matched; a session that
//! went wrong ends in a violation or a verdict that says so, never in a
//! Complete one.

use proptest::prelude::*;

use super::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        16 => Just(Op::Pass),
        1 => Just(Op::Drop),
        1 => Just(Op::Twice),
        1 => Just(Op::Swap),
        1 => (any::<usize>(), 1u8..).prop_map(|(at, mask)| Op::Flip { at, mask }),
    ]
}

/// An entry: its kind (files twice as likely), its bytes, and the part an
/// earlier run left of it (a prefix, one byte of it maybe wrong).
type Drawn = (u8, Vec<u8>, Option<(usize, bool)>);

fn entry() -> impl Strategy<Value = Drawn> {
    let part = proptest::option::weighted(0.3, (any::<usize>(), any::<bool>()));
    (0u8..4, prop::collection::vec(any::<u8>(), 0..3000), part)
}

type Case = (Vec<Src>, Vec<(String, Vec<u8>)>);

fn tree(entries: Vec<Drawn>) -> Case {
    let mut src = Vec::new();
    let mut parts = Vec::new();
    for (i, (kind, data, part)) in entries.into_iter().enumerate() {
        match kind {
            0 => src.push(Src::dir(&format!("d{i}"))),
            1 => src.push(Src::link(&format!("l{i}"), "t")),
            _ => {
                let path = format!("f{i}");
                if let (Some((len, wrong)), false) = (part, data.is_empty()) {
                    let mut held = data[..len % data.len()].to_vec();
                    if let (true, Some(b)) = (wrong, held.last_mut()) {
                        *b ^= 1;
                    }
                    parts.push((path.clone(), held));
                }
                src.push(Src::file(&path, &data));
            }
        }
    }
    (src, parts)
}

fn plan(src: &[Src], give_up: Option<usize>, stop_in: Option<usize>) -> TxPlan {
    let pick = |i: Option<usize>| {
        i.filter(|_| !src.is_empty())
            .map(|i| (i % src.len()) as u64)
    };
    TxPlan {
        give_up: pick(give_up),
        stop_in: pick(stop_in),
        no_verify: false,
    }
}

fn file<'a>(src: &'a [Src], path: &str) -> Option<&'a Src> {
    src.iter()
        .find(|e| e.path == path && e.kind == EntryKind::File)
}

fn check(src: &[Src], tx: &Tx, rx: &Rx) -> Result<(), TestCaseError> {
    prop_assert!(
        rx.unfilled.is_empty(),
        "complete, unwritten: {:?}",
        rx.unfilled
    );
    for s in rx.settled.iter().filter(|s| s.fate == Fate::Landed) {
        if let Some(e) = file(src, &s.path) {
            prop_assert_eq!(rx.disk.get(&s.path), Some(&e.data), "{} landed", &s.path);
        }
    }
    for s in tx.settled.iter().filter(|s| s.fate == Fate::Landed) {
        let e = &src[s.id.expect("only offered entries land") as usize];
        if e.kind == EntryKind::File {
            prop_assert_eq!(rx.disk.get(&e.path), Some(&e.data), "{} landed", &e.path);
        }
    }
    let files = src.iter().filter(|e| e.kind == EntryKind::File);
    let landed = files
        .clone()
        .filter(|e| rx.disk.get(&e.path) == Some(&e.data));
    prop_assert!(rx.s.ledger().landed >= landed.count() as u64);
    for verdict in [&tx.verdict, &rx.verdict] {
        if verdict == &Some(Verdict::Complete) {
            for e in files.clone() {
                prop_assert_eq!(rx.disk.get(&e.path), Some(&e.data), "complete");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_file_lands_unless_all_of_it_came_and_matched(
        entries in prop::collection::vec(entry(), 0..6),
        ops in prop::collection::vec(op(), 0..40),
        cut in proptest::option::weighted(0.3, 0usize..60),
        give_up in proptest::option::weighted(0.15, any::<usize>()),
        stop_in in proptest::option::weighted(0.15, any::<usize>()),
    ) {
        let (src, parts) = tree(entries);
        let mut tx = Tx::new(&src, plan(&src, give_up, stop_in));
        let mut rx = Rx::new(&src);
        rx.parts.extend(parts);
        let mut pipe = Pipe { ops: ops.into(), cut, ..Pipe::clean() };
        run(&mut tx, &mut rx, &mut pipe);
        check(&src, &tx, &rx)?;
    }
}
