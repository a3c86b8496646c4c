//! Text a peer chose, on its way to a terminal or a log: it arrives in
//! frames, so it lives with them in `protocol::peer_text`; the rest of zc
//! names it here.

pub use crate::protocol::peer_text::{escape, moves_a_terminal, PeerText};
