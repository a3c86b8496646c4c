//! What a pre-shared key adds to a session, as both machines see it: the
//! crypto lives in `auth`, which implements this, so protocol/ has none.

/// What a pre-shared key adds to a session: MACs over the receiver's
/// answers and a keyed digest in FILE END. `auth::Session` is the real one;
/// each side's machine takes one when the session has a key.
pub trait Keyed {
    /// A whole-file digest as it goes on the wire.
    fn keyed_digest(&self, digest: &[u8; 32]) -> [u8; 32];
    /// The MAC over the receiver's RESULT.
    fn result_mac(&self, status: u8, held: u64) -> [u8; 32];
    /// The MAC over one entry's FILE RESULT.
    fn file_result_mac(&self, id: u64, status: u8, held: u64) -> [u8; 32];
    /// Constant-time check of a RESULT's MAC.
    fn check_result(&self, status: u8, held: u64, mac: &[u8]) -> bool;
    /// Constant-time check of a FILE RESULT's MAC.
    fn check_file_result(&self, id: u64, status: u8, held: u64, mac: &[u8]) -> bool;
}
