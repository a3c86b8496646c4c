//! The pages of a directory or of several sources: a plain HTML listing
//! (names escaped, sizes, links; readable on a phone, no script), and
//! SHA256SUMS in `sha256sum`'s format for everything served.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::response::Head;
use super::site::{Site, Top};
use super::target::encode;
use crate::send::digests::Digests;
use crate::send::walk::{self, Dir, Event, Kind, Source, Stat, Type, Walk};

/// One line of a listing.
struct Entry {
    name: Vec<u8>,
    /// A file's size; `None` for a directory.
    size: Option<u64>,
}

/// The listing of the sources (`at` is None) or of directory `at`.
pub fn page(site: &Site, at: Option<&Dir>, title: &[u8]) -> io::Result<(Head, Vec<u8>)> {
    let entries = match at {
        None => site
            .tops
            .iter()
            .filter_map(|top| {
                let stat = fs::metadata(&top.path).ok()?;
                shown(top.name.clone(), &Stat::from(&stat))
            })
            .collect(),
        Some(dir) => listed(dir)?,
    };
    let body = html(title, &entries, at.is_none()).into_bytes();
    let mut head = Head::new(200);
    head.set("Content-Type", "text/html; charset=utf-8")
        .set("Content-Length", body.len())
        .set("X-Content-Type-Options", "nosniff")
        // the URL holds the token: no page may send it on as a referrer
        .set("Referrer-Policy", "no-referrer")
        .set(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        )
        .set("Cache-Control", "no-store");
    Ok((head, body))
}

/// A directory's entries that are served: files and directories, not
/// links (which are not followed), sorted by name. Read through the
/// directory's handle: a directory swapped for a link since it was opened
/// shows nothing of where the link leads.
fn listed(dir: &Dir) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for name in dir.names()? {
        let Ok(stat) = dir.stat(&name, false) else {
            continue; // gone since it was listed
        };
        let name = crate::output::name_bytes(&name).into_owned();
        entries.extend(shown(name, &stat));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// A line for a file or a directory; nothing for anything else.
fn shown(name: Vec<u8>, stat: &Stat) -> Option<Entry> {
    match stat.kind {
        Type::Dir => Some(Entry { name, size: None }),
        Type::File => Some(Entry {
            name,
            size: Some(stat.size),
        }),
        _ => None,
    }
}

fn html(title: &[u8], entries: &[Entry], root: bool) -> String {
    let title = escape_html(&String::from_utf8_lossy(title));
    // rows of .75em around 16px/1.4 text are 46 CSS px: a finger's 44 on a
    // phone (tests/http_browser.rs measures them in Chromium)
    let mut out = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>\
         body{{font:16px/1.4 system-ui,sans-serif;margin:1em auto;max-width:48em;padding:0 .5em}}\
         li{{display:flex;justify-content:space-between;gap:1em;border-bottom:1px solid #ddd}}\
         a{{display:block;padding:.75em 0;overflow-wrap:anywhere}}span{{white-space:nowrap;padding:.75em 0;color:#555}}form{{margin:0}}\
         ul{{list-style:none;padding:0}}</style></head><body><h1>{title}</h1><ul>\n"
    );
    if !root {
        out.push_str("<li><a href=\"../\">../</a><span></span></li>\n");
    }
    for e in entries {
        let shown = escape_html(&String::from_utf8_lossy(&e.name));
        let (slash, size) = match e.size {
            Some(n) => ("", crate::units::human_bytes(n)),
            // a source directory also comes whole as NAME.tar (super::tar),
            // by a form's button: `wget -r`, which follows every link and
            // no form, mirrors the tree and not the tree twice
            None if root => (
                "/",
                format!(
                    "<form action=\"./{}.tar\"><button>{shown}.tar</button></form>",
                    encode(&e.name)
                ),
            ),
            None => ("/", String::new()),
        };
        let _ = writeln!(
            out,
            "<li><a href=\"./{}{slash}\">{shown}{slash}</a><span>{size}</span></li>",
            encode(&e.name)
        );
    }
    out.push_str("</ul>");
    if root {
        out.push_str("<p><a href=\"./SHA256SUMS\">SHA256SUMS</a></p>");
    }
    out.push_str("</body></html>\n");
    out
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `sha256sum`'s lines for every file served, below the sources as
/// `TOP/PATH`, each digest from (or into) the cache shared with the
/// file responses' Repr-Digest.
pub fn sums(site: &Site, digests: &Arc<Digests>) -> io::Result<(Head, Vec<u8>)> {
    let mut body = Vec::new();
    for top in &site.tops {
        let (dir, listed) = files(top)?;
        for entry in listed {
            // opened one at a time, as it is hashed
            let opened = match &dir {
                Some(dir) => super::tar::open_member(dir, &entry),
                None => open_regular(&top.path),
            };
            let Some(file) = opened.filter(|f| f.metadata().is_ok_and(|m| m.is_file())) else {
                continue; // gone, or no longer a file, since it was listed
            };
            let sha = digests.digest(&file)?;
            body.extend_from_slice(&sum_line(&sha, &entry.path));
        }
    }
    let mut head = Head::new(200);
    head.set("Content-Type", "text/plain; charset=utf-8")
        .set("Content-Length", body.len())
        .set("X-Content-Type-Options", "nosniff")
        .set("Cache-Control", "no-store");
    Ok((head, body))
}

/// The files of one source, sorted by name below the root, and the
/// handle of a directory source to open them beneath: walked as a tree
/// transfer walks it (through handles, links not followed), so a directory
/// swapped for a link shows nothing outside; a directory that cannot be
/// read (or was swapped during the walk) fails the whole.
fn files(top: &Top) -> io::Result<(Option<fs::File>, Vec<walk::Entry>)> {
    let dir = match fs::metadata(&top.path)?.is_dir() {
        true => Some(super::tar::open_top(&top.path).map_err(io::Error::other)?),
        false => None,
    };
    let source = Source {
        path: top.path.clone(),
        top: top.name.clone(),
    };
    let mut listed = Vec::new();
    for event in Walk::new(vec![source], false) {
        match event {
            Event::Entry(e) if matches!(e.kind, Kind::File { .. }) => listed.push(e),
            Event::Failed { path, why } => return Err(io::Error::other(format!("{path}: {why}"))),
            _ => {}
        }
    }
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((dir, listed))
}

/// `path` opened if it is still a regular file: a link put at its name
/// since it was listed is not followed, and a FIFO is not waited on.
#[cfg(unix)]
fn open_regular(path: &Path) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

#[cfg(not(unix))]
fn open_regular(path: &Path) -> Option<fs::File> {
    let file = fs::File::open(path).ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// One line as `sha256sum` writes it: a name holding `\` or a newline is
/// escaped and the line starts with `\`.
fn sum_line(sha: &crate::hash::Sha, name: &[u8]) -> Vec<u8> {
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    let escaped = name.iter().any(|&b| b == b'\\' || b == b'\n');
    let mut line = Vec::with_capacity(name.len() + 70);
    if escaped {
        line.push(b'\\');
    }
    line.extend_from_slice(hex.as_bytes());
    line.extend_from_slice(b"  ");
    for &b in name {
        match (escaped, b) {
            (true, b'\\') => line.extend_from_slice(b"\\\\"),
            (true, b'\n') => line.extend_from_slice(b"\\n"),
            _ => line.push(b),
        }
    }
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_index_escapes_names() {
        let entries = [
            Entry {
                name: b"<script>x</script>\"'&.txt".to_vec(),
                size: Some(3),
            },
            Entry {
                name: b"d".to_vec(),
                size: None,
            },
        ];
        let page = html(b"t", &entries, true);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;.txt"));
        assert!(page.contains("href=\"./%3Cscript%3Ex%3C%2Fscript%3E%22%27%26.txt\""));
        assert!(page.contains("href=\"./d/\""));
        let sha = [0u8; 32];
        assert_eq!(sum_line(&sha, b"a b").len(), 64 + 2 + 3 + 1);
        assert!(sum_line(&sha, b"a\nb").starts_with(b"\\0000"));
        assert!(sum_line(&sha, b"a\nb").ends_with(b"  a\\nb\n"));
    }
}
