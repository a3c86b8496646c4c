//! Plain HTTP/1.1 for the side that has no zc: `zc send --http` serves the
//! sources to curl, wget and browsers, and `zc recv --http` takes uploads
//! from them ([`upload`]).
//!
//! The pieces are split so that an upload side can reuse them: [`request`]
//! reads one bounded request head, [`target`] turns its path into checked
//! names, [`response`] writes the small heads; file bodies go out through
//! [`crate::copy::send_file`] (sendfile(2) where there is one).

pub mod request;
pub mod response;
pub mod target;

mod door;
mod file;
mod index;
mod server;
mod site;
mod tar;
mod upload;

pub use server::serve;
pub use upload::take_uploads;
