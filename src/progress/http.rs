//! What `zc send --http` and `zc recv --http` say: where to fetch from or
//! upload to, a bar per client while its body moves, and one line per
//! request answered.

use std::io::{self, Read};
use std::net::SocketAddr;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

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

/// One client's request while it is answered: on a terminal (bar style
/// only), a bar with the client, the method and the path, and the body's
/// bytes and rate. It appears when the body starts ([`ClientLine::show`])
/// and is cleared when dropped, before the access line is said: the screen
/// keeps the access lines, not one dead bar per request.
pub struct ClientLine {
    /// The bars, and what the bar is prefixed with; `None` off bar style.
    unshown: Option<(MultiProgress, String)>,
    bar: Option<ProgressBar>,
}

impl ClientLine {
    /// Draws the bar for a body of `total` bytes.
    pub fn show(&mut self, total: u64) {
        let Some((multi, prefix)) = &self.unshown else {
            return;
        };
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let bar = ProgressBar::new(total)
            .with_style(style)
            .with_prefix(prefix.clone());
        self.bar = Some(multi.add(bar));
    }

    /// `bytes` of the body moved so far.
    pub fn update(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
        }
    }

    /// `inner`, with the bytes read through it shown on the bar.
    pub fn meter<R: Read>(&self, inner: R) -> Metered<'_, R> {
        Metered {
            inner,
            line: self,
            read: 0,
        }
    }
}

impl Drop for ClientLine {
    fn drop(&mut self) {
        if let (Some(bar), Some((multi, _))) = (self.bar.take(), &self.unshown) {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
    }
}

/// A body being read, counted on its client's line.
pub struct Metered<'l, R> {
    pub inner: R,
    line: &'l ClientLine,
    read: u64,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.line.update(self.read);
        Ok(n)
    }
}

impl Reporter {
    /// The line of `client`'s request `method path` (the path as the
    /// access line shows it), not drawn until its body starts.
    pub fn http_client(&self, client: &str, method: &str, path: &[u8]) -> ClientLine {
        let unshown = (self.style == Style::Bar).then(|| {
            let prefix = format!(
                "zc: {client} {} {}",
                escape(method.as_bytes()),
                escape(path)
            );
            (self.multi.clone(), prefix)
        });
        ClientLine { unshown, bar: None }
    }

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
