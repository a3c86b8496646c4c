//! The receiver's rules for the data of one file, without I/O: which DATA
//! fits, and what FILE END decides.
//!
//! The [`Session`](super::Session) keeps one [`Arrival`] for the file under
//! way and feeds it the sender's frames; a frame that breaks the rules is
//! an error naming why (a [`Violation`](super::Violation) then ends the
//! session), a file that did not arrive whole is an [`Ending`] for that
//! file alone.

use std::collections::VecDeque;
use std::fmt;

use crate::protocol::tree::FileEnd;
use crate::protocol::Ranges;
use crate::protocol::{PeerText, MAX_RANGES};

/// What was asked for, oldest first.
pub trait Asked<T> {
    fn pop_front(&mut self) -> Option<T>;
    fn push_front(&mut self, item: T);
}

impl<T> Asked<T> for VecDeque<T> {
    fn pop_front(&mut self) -> Option<T> {
        VecDeque::pop_front(self)
    }

    fn push_front(&mut self, item: T) {
        VecDeque::push_front(self, item)
    }
}

/// One file's data as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub id: u64,
    /// The file's size (a stream's, once it ended).
    pub size: u64,
    /// The bytes offered, `[start, end)`; a stream's end is its cap (0: none).
    pub range: (u64, u64),
    /// What the part held before (kept, not sent again).
    pub held: Ranges,
    pub stream: bool,
    /// The file is whole once the range lands (see [`crate::protocol::whole`]).
    pub whole: bool,
    /// Its data must come in order (a stream, or a file written to one).
    ordered: bool,
    /// Where the next in-order byte would start.
    pub next: u64,
    /// What arrived in this session.
    pub got: Ranges,
}

/// A DATA frame that fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// Where the frame's data ends.
    pub end: u64,
    /// It starts where the last one ended (a running hash of the file
    /// stays valid).
    pub in_order: bool,
}

/// What FILE END decides for the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The sender could not send it all (its source failed): nothing of it
    /// is kept.
    SenderFailed(PeerText),
    /// Bytes offered are missing: the sender ended the file early.
    Incomplete,
    /// Everything offered is here; `have` is all the part holds (its
    /// digest is checked next).
    Complete { have: Ranges },
}

/// Why a DATA frame does not fit the file (the session then ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadData {
    /// It runs past the file's end (or a stream's cap, or --max-size).
    PastEnd(u64),
    BeforeRange,
    /// Out of order where the data must come in order.
    OutOfOrder {
        offset: u64,
        due: u64,
    },
    /// The file came in too many pieces.
    Scattered,
}

impl fmt::Display for BadData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadData::PastEnd(limit) => write!(f, "data past the end of the file (byte {limit})"),
            BadData::BeforeRange => write!(f, "data before the range offered"),
            BadData::OutOfOrder { offset, due } => {
                write!(f, "data for byte {offset} arrived where byte {due} was due")
            }
            BadData::Scattered => write!(f, "data for the file in over {MAX_RANGES} pieces"),
        }
    }
}

/// Why a FILE END does not fit the file (the session then ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadEnd {
    /// Another entry's end: (the one it names, the one under way).
    OtherEntry(u64, u64),
    /// A stream's end that says more or less than came.
    StreamSize,
}

impl fmt::Display for BadEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadEnd::OtherEntry(id, cur) => write!(f, "entry {id} ended inside entry {cur}"),
            BadEnd::StreamSize => write!(f, "the stream's end does not match its data"),
        }
    }
}

impl Arrival {
    pub(super) fn new(
        (id, size): (u64, u64),
        range: (u64, u64),
        held: Ranges,
        (stream, whole, ordered): (bool, bool, bool),
    ) -> Arrival {
        Arrival {
            id,
            size,
            range,
            held,
            stream,
            whole,
            ordered: ordered || stream,
            next: range.0,
            got: Ranges::new(),
        }
    }

    /// Checks one DATA frame against what was offered and what came
    /// before. `max_size` bounds a stream without a cap.
    pub(super) fn admit(
        &self,
        offset: u64,
        len: u64,
        max_size: Option<u64>,
    ) -> Result<Admitted, BadData> {
        let limit = match (self.stream, self.range) {
            // a stream's size is known at its end: its cap, or --max-size
            (true, (_, 0)) => max_size.unwrap_or(u64::MAX),
            (true, (_, cap)) => cap,
            (false, (_, end)) => end,
        };
        let Some(end) = offset.checked_add(len).filter(|e| *e <= limit) else {
            return Err(BadData::PastEnd(limit));
        };
        if offset < self.range.0 {
            return Err(BadData::BeforeRange);
        }
        let in_order = offset == self.next;
        if !in_order && self.ordered {
            let due = self.next;
            return Err(BadData::OutOfOrder { offset, due });
        }
        // a real sender sends a file's missing ranges in order; a sender
        // that scatters tiny frames must not make this side's bookkeeping
        // (sorted ranges) cost quadratic time
        if self.got.pairs().len() >= MAX_RANGES {
            return Err(BadData::Scattered);
        }
        Ok(Admitted { end, in_order })
    }

    /// Bytes `[from, to)` were written.
    pub(super) fn arrived(&mut self, from: u64, to: u64) {
        self.got.insert(from, to);
        self.next = to;
    }

    /// All the part holds: what it held before and what arrived since.
    pub fn have(&self) -> Ranges {
        let mut have = self.held.clone();
        for &(a, b) in self.got.pairs() {
            have.insert(a, b);
        }
        have
    }

    /// Where the data to come starts, when a part held the bytes before it
    /// (0 when it starts at the range's start), and how many bytes are to
    /// come: for a display of one file.
    pub fn resumed(&self) -> (u64, u64) {
        let (start, end) = self.range;
        let missing = self.held.missing(start, end);
        let from = match missing.first() {
            Some(&(first, _)) if first > start => first,
            None if end > start => end,
            _ => 0,
        };
        (from, missing.iter().map(|(a, b)| b - a).sum())
    }

    /// Whether a digest computed as the data came is the one to check: the
    /// file's when it came whole, in order; the payloads' when the file
    /// will not be whole. Otherwise the file is hashed from the part.
    pub fn hashed_as_it_came(&self) -> bool {
        self.next == self.size || !self.whole
    }

    /// The sender's FILE END for this file.
    pub(super) fn end(&mut self, end: &FileEnd) -> Result<Ending, BadEnd> {
        if end.id != self.id {
            return Err(BadEnd::OtherEntry(end.id, self.id));
        }
        if let Some(why) = &end.failed {
            return Ok(Ending::SenderFailed(why.clone()));
        }
        if self.stream {
            // its size is what came, in order from byte 0
            if !self.got.covers(0, end.sent) || self.got.total() != end.sent {
                return Err(BadEnd::StreamSize);
            }
            (self.size, self.range) = (end.sent, (0, end.sent));
        }
        let have = self.have();
        let (start, stop) = self.range;
        let covered = match self.whole {
            true => have.covers(0, self.size),
            false => have.covers(start, stop),
        };
        Ok(match covered {
            true => Ending::Complete { have },
            false => Ending::Incomplete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, range: (u64, u64), held: &[(u64, u64)], whole: bool) -> Arrival {
        Arrival::new(
            (7, size),
            range,
            Ranges::from_pairs(held),
            (false, whole, false),
        )
    }

    fn file_end(id: u64, sent: u64, failed: Option<&str>) -> FileEnd {
        FileEnd {
            id,
            sent,
            sha256: None,
            failed: failed.map(PeerText::from),
        }
    }

    #[test]
    fn data_must_fit_the_range_offered() {
        let a = file(100, (10, 50), &[], false);
        assert_eq!(
            a.admit(10, 40, None),
            Ok(Admitted {
                end: 50,
                in_order: true
            })
        );
        assert_eq!(a.admit(10, 41, None), Err(BadData::PastEnd(50)));
        assert_eq!(a.admit(5, 5, None), Err(BadData::BeforeRange));
        assert_eq!(a.admit(u64::MAX, 2, None), Err(BadData::PastEnd(50)));
        let out_of_order = a.admit(30, 10, None).unwrap();
        assert!(
            !out_of_order.in_order,
            "a file may take its ranges out of order"
        );
    }

    #[test]
    fn a_stream_takes_data_in_order_up_to_its_cap_or_max_size() {
        let mut s = Arrival::new((1, 0), (0, 0), Ranges::new(), (true, true, false));
        assert_eq!(
            s.admit(0, 1 << 40, None).map(|a| a.end),
            Ok(1 << 40),
            "no cap"
        );
        assert_eq!(s.admit(0, 11, Some(10)), Err(BadData::PastEnd(10)));
        s.arrived(0, 5);
        let late = BadData::OutOfOrder { offset: 6, due: 5 };
        assert_eq!(s.admit(6, 1, None), Err(late.clone()));
        assert_eq!(
            late.to_string(),
            "data for byte 6 arrived where byte 5 was due"
        );
        let capped = Arrival::new((1, 0), (0, 8), Ranges::new(), (true, true, false));
        assert!(capped.admit(0, 9, None).is_err(), "its cap");
        // a file written to a stream must come in order too
        let written = Arrival::new((1, 9), (0, 9), Ranges::new(), (false, true, true));
        assert!(written.admit(4, 1, None).is_err());
    }

    #[test]
    fn scattered_data_is_bounded() {
        let mut a = file(1 << 30, (0, 1 << 30), &[], true);
        for i in 0..MAX_RANGES as u64 {
            a.arrived(i * 4, i * 4 + 1);
        }
        assert_eq!(a.admit(1 << 20, 1, None), Err(BadData::Scattered));
    }

    #[test]
    fn file_end_decides_complete_incomplete_or_failed() {
        let mut a = file(10, (0, 10), &[(0, 4)], true);
        let other = a.end(&file_end(8, 6, None));
        assert_eq!(other, Err(BadEnd::OtherEntry(8, 7)));
        assert_eq!(
            other.unwrap_err().to_string(),
            "entry 8 ended inside entry 7"
        );
        a.arrived(4, 10);
        let have = Ranges::from_pairs(&[(0, 10)]);
        assert_eq!(a.end(&file_end(7, 6, None)), Ok(Ending::Complete { have }));
        assert!(a.hashed_as_it_came());
        let mut a = file(10, (0, 10), &[], true);
        a.arrived(0, 6);
        assert_eq!(a.end(&file_end(7, 6, None)), Ok(Ending::Incomplete));
        assert!(!a.hashed_as_it_came());
        assert_eq!(
            a.end(&file_end(7, 6, Some("gone"))),
            Ok(Ending::SenderFailed("gone".into()))
        );
        // a range that leaves the file unfinished is complete once it is here
        let mut r = file(10, (2, 5), &[], false);
        r.arrived(2, 5);
        assert!(matches!(
            r.end(&file_end(7, 3, None)),
            Ok(Ending::Complete { .. })
        ));
        assert!(r.hashed_as_it_came(), "the payloads' digest");
    }

    #[test]
    fn a_stream_learns_its_size_at_its_end() {
        let mut s = Arrival::new((1, 0), (0, 0), Ranges::new(), (true, true, false));
        s.arrived(0, 12);
        let more = s.clone().end(&file_end(1, 13, None));
        assert_eq!(more, Err(BadEnd::StreamSize), "more claimed than came");
        assert!(matches!(
            s.end(&file_end(1, 12, None)),
            Ok(Ending::Complete { .. })
        ));
        assert_eq!((s.size, s.range), (12, (0, 12)));
    }

    /// What a display of one file shows of a resume (the driver's
    /// file_start before): where the bytes to come start and how many.
    #[test]
    fn a_resumed_file_says_where_its_data_starts() {
        assert_eq!(file(10, (0, 10), &[], false).resumed(), (0, 10));
        assert_eq!(file(10, (0, 10), &[(0, 4)], false).resumed(), (4, 6));
        assert_eq!(file(10, (0, 10), &[(2, 4)], false).resumed(), (0, 8));
        assert_eq!(file(10, (0, 10), &[(0, 10)], false).resumed(), (10, 0));
        assert_eq!(file(10, (3, 10), &[(0, 5)], false).resumed(), (5, 5));
        assert_eq!(file(0, (0, 0), &[], false).resumed(), (0, 0));
    }
}
