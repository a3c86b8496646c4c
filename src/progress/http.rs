//! What `zc send --http` says: where to fetch from, and one line per
//! request answered.

use std::net::SocketAddr;

use super::event::Event;
use super::{Reporter, Style};
use crate::peer_text::escape;

/// The browser URL and the commands for the other side.
#[derive(Debug, Clone)]
pub struct Urls {
    pub browse: String,
    pub curl: String,
    pub wget: String,
}

/// One request answered, for the access line.
#[derive(Debug, Clone)]
pub struct Access {
    pub client: String,
    pub method: String,
    /// The path, with the token replaced by `TOKEN`.
    pub path: Vec<u8>,
    pub status: u16,
    pub range: Option<String>,
    pub bytes: u64,
    pub seconds: f64,
}

impl Reporter {
    /// Said even with `-q`: without the URL the other side cannot fetch.
    pub fn http_listening(&self, addr: SocketAddr, urls: &Urls) {
        if self.style == Style::Json {
            return Event::HttpListening {
                addr: addr.to_string(),
                url: &urls.browse,
                curl: &urls.curl,
                wget: &urls.wget,
            }
            .emit();
        }
        self.say(&format!("zc: serving over plain HTTP on {addr}"));
        self.say(&format!("zc: browser: {}", urls.browse));
        self.say(&format!("zc: curl:    {}", urls.curl));
        self.say(&format!("zc: wget:    {}", urls.wget));
    }

    pub fn http_access(&self, access: &Access) {
        let path = escape(&access.path);
        match self.style {
            Style::Json => Event::Request {
                client: &access.client,
                method: &access.method,
                path: &path,
                status: access.status,
                range: access.range.as_deref(),
                bytes: access.bytes,
                seconds: access.seconds,
            }
            .emit(),
            Style::Quiet => {}
            _ => {
                let range = access
                    .range
                    .as_deref()
                    .map(|r| format!(" ({})", escape(r.as_bytes())))
                    .unwrap_or_default();
                self.say(&format!(
                    "zc: {} {} {} {}{range} {} bytes in {:.2} s",
                    access.client,
                    escape(access.method.as_bytes()),
                    path,
                    access.status,
                    access.bytes,
                    access.seconds
                ));
            }
        }
    }
}
