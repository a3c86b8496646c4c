//! `zc peers`: the zc listeners announced on the LAN, listed once on
//! stdout, or (`--watch`) as they come and go until Ctrl-C.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::exit;
use crate::lan::{self, Browser, Change, Found};

/// How a list is printed: a line a peer, or one JSON object a peer.
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    pub json: bool,
    pub watch: bool,
    pub timeout: Duration,
}

pub fn run(listing: Listing) -> Result<()> {
    let mut browser = Browser::start()?;
    let mut out = std::io::stdout().lock();
    if !listing.watch {
        let deadline = Instant::now() + listing.timeout;
        while browser.next(deadline).is_some() {}
        interrupted()?;
        let found = browser.known();
        for peer in &found {
            print(&mut out, listing, Some(peer), None)?;
        }
        if found.is_empty() && !listing.json {
            eprintln!(
                "zc: no zc answered on the LAN within {} s (--find-timeout)",
                listing.timeout.as_secs_f64()
            );
        }
        return Ok(());
    }
    loop {
        match browser.next(Instant::now() + Duration::from_secs(3600)) {
            Some(Change::Seen(peer)) => print(&mut out, listing, Some(&peer), None)?,
            Some(Change::Gone(name)) => print(&mut out, listing, None, Some(&name))?,
            None if browser.closed() => {
                return Err(anyhow::anyhow!("mDNS stopped: no more peers can be heard"))
            }
            None => interrupted()?,
        }
    }
}

fn interrupted() -> Result<()> {
    match crate::interrupt::requested() {
        true => Err(exit::interrupted("interrupted")),
        false => Ok(()),
    }
}

/// One line: a peer seen, or (watching) one gone.
fn print(
    out: &mut impl Write,
    listing: Listing,
    seen: Option<&Found>,
    gone: Option<&str>,
) -> Result<()> {
    let line = match (listing.json, seen, gone) {
        (true, Some(peer), _) => {
            let mut v = serde_json::to_value(peer)?;
            v["event"] = "peer".into();
            v["addrs"] = peer.addrs.iter().map(ToString::to_string).collect();
            v.to_string()
        }
        (true, None, Some(name)) => serde_json::json!({"event": "gone", "name": name}).to_string(),
        (false, Some(peer), _) => {
            let mark = if listing.watch { "+ " } else { "" };
            format!("{mark}{}", lan::line(peer))
        }
        (false, None, Some(name)) => format!("- {}", lan::shown(name)),
        _ => return Ok(()),
    };
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}
