//! A served directory whole as one tar stream (`GET /TOKEN/NAME.tar`),
//! built on the fly from the walk a tree transfer uses: what a tree
//! transfer sends (files, directories, links that stay inside) is in it,
//! what it leaves out (links leaving the tree, devices, FIFOs) is left out.
//!
//! The archive is ustar, with a PAX extended header before a member whose
//! path does not fit ustar's 100+155 split or is not ASCII, whose link
//! target is over 100 bytes or not ASCII, or whose size is over ustar's 11
//! octal digits. Its length is known from the walk before the first byte
//! (`Content-Length`); each file body goes out by sendfile(2) behind the
//! small writes (headers, padding) that precede it. Each file is opened
//! beneath the source's handle ([`walk::open_beneath`]: no link
//! followed, no blocking on a FIFO). A file that no longer has the size
//! the length was computed from, or changes while it is sent, or cannot be
//! opened, cuts the connection short: the client sees fewer bytes than
//! promised and reports a truncated transfer, never a quietly wrong
//! archive.

use std::fs::File;
use std::io;

use super::file::disposition;
use super::response::Head;
use super::site::Top;
use crate::conn::Conn;
use crate::peer_text::escape;
use crate::send::digests::FileId;
use crate::send::walk::{self, Entry, Event, Kind, Source};

const BLOCK: u64 = 512;
/// The largest size and mtime ustar's 11 octal digits hold.
const OCTAL_11: u64 = 0o77_777_777_777;
/// Small writes (headers, padding) gathered up to this before they go out
/// on their own; otherwise they go in front of the next file's body.
const GATHER: usize = 64 << 10;

/// A file this small is read in among the headers rather than sent by
/// sendfile(2) on its own: two syscalls a file cost more than its bytes.
const SMALL_FILE: u64 = 32 << 10;

/// A directory's archive as listed: the bytes each member takes, in the
/// walk's order, and the whole length. 8 bytes a member, not the entries:
/// the tree is walked again as the archive goes out, each member checked
/// against its listed length.
pub struct Plan {
    source: Source,
    /// The source, opened once: each file is opened beneath it, never by
    /// its path (a directory swapped for a link cannot lead outside).
    dir: File,
    lengths: Vec<u64>,
    pub length: u64,
}

/// Walks `top` and sizes its archive. Refused (the reason) when the walk
/// cannot read part of the tree: an archive missing it would look whole.
pub fn plan(top: &Top) -> Result<Plan, String> {
    let source = Source {
        path: top.path.clone(),
        top: top.name.clone(),
    };
    let dir = open_top(&top.path)?;
    let mut lengths = Vec::new();
    // sparse files can claim sizes whose sum no u64 holds
    let too_long = || format!("{}: over 2^64 bytes as a tar stream", escape(&top.name));
    let mut length = 2 * BLOCK;
    for member in members(&source) {
        let (entry, pax) = member?;
        let bytes = member_length(&entry, &pax).ok_or_else(too_long)?;
        length = length.checked_add(bytes).ok_or_else(too_long)?;
        lengths.push(bytes);
    }
    Ok(Plan {
        source,
        dir,
        lengths,
        length,
    })
}

/// The source directory (followed if a link: it was named on the command
/// line), never blocking on what it may have become.
pub(super) fn open_top(path: &std::path::Path) -> Result<File, String> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_DIRECTORY | libc::O_NONBLOCK,
    );
    // FILE_FLAG_BACKUP_SEMANTICS: what opens a directory there
    #[cfg(windows)]
    std::os::windows::fs::OpenOptionsExt::custom_flags(&mut options, 0x0200_0000);
    options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The members of the walk of `source`, each with its PAX records (empty:
/// none needed); what the walk could not read, as an error.
fn members(source: &Source) -> impl Iterator<Item = Result<(Entry, Vec<u8>), String>> {
    walk::Walk::new(vec![source.clone()], false).filter_map(|event| match event {
        Event::Entry(entry) => {
            let pax = pax_records(&entry);
            Some(Ok((entry, pax)))
        }
        // a tree transfer leaves these out too (with a warning)
        Event::Skipped { .. } => None,
        Event::Failed { path, why } => Some(Err(format!("{path}: {why}"))),
    })
}

/// The head of a 200 to GET or HEAD: whole always, ranges refused by
/// ignoring them (no resume is promised: a tree can change between two
/// requests, and a range of another archive would splice two states).
pub fn head(top: &Top, plan: &Plan) -> Head {
    let mut name = top.name.clone();
    name.extend_from_slice(b".tar");
    let mut head = Head::new(200);
    head.set("Content-Type", "application/x-tar")
        .set("Content-Length", plan.length)
        .set("Content-Disposition", disposition(&name))
        .set("Accept-Ranges", "none")
        .set("Cache-Control", "no-store")
        .set("X-Content-Type-Options", "nosniff");
    head
}

/// Sends `head` (the HTTP head) and the archive. `sent` follows the bytes
/// of the archive written, and `progress` hears them as they go. An error
/// means the stream was cut short: the caller must close the connection.
pub fn send(
    plan: &Plan,
    conn: &mut Conn,
    head: Vec<u8>,
    zero_copy: bool,
    sent: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let head_len = head.len() as u64;
    let mut out = Stream {
        conn,
        small: head,
        written: 0,
        owed: 0,
        zero_copy,
        progress: &mut |n| progress(n.saturating_sub(head_len)),
    };
    let mut listed = plan.lengths.iter();
    for member in members(&plan.source) {
        *sent = out.written.saturating_sub(head_len);
        let done = member.and_then(|(entry, pax)| {
            let path = escape(&entry.path);
            match (listed.next(), member_length(&entry, &pax)) {
                (Some(&then), Some(now)) if then == now => out.member(&plan.dir, &entry, &pax),
                (Some(then), now) => Err(format!(
                    "{path}: changed since the tree was listed \
                     ({then} bytes in the archive then, {} now)",
                    now.map_or("over 2^64".into(), |n| n.to_string())
                )),
                (None, _) => Err(format!("{path}: new since the tree was listed")),
            }
        });
        *sent = out.written.saturating_sub(head_len);
        if let Err(why) = done {
            out.poison(&why);
            return Err(cut_short(*sent, plan.length, why));
        }
    }
    let gone = listed.count();
    if gone > 0 {
        let why = format!("{gone} of the entries listed are gone");
        out.poison(&why);
        return Err(cut_short(*sent, plan.length, why));
    }
    out.small.extend_from_slice(&[0; 2 * BLOCK as usize]);
    out.flush()?;
    *sent = out.written.saturating_sub(head_len);
    Ok(())
}

/// An archive going out: the small writes gathered, the bytes written
/// (the HTTP head's too), and who hears of them.
struct Stream<'c> {
    conn: &'c mut Conn,
    small: Vec<u8>,
    written: u64,
    /// What is left of the file body (padding included) being sent: a
    /// cut inside it must first fill it, so that the marker falls at a
    /// header position.
    owed: u64,
    zero_copy: bool,
    progress: &'c mut dyn FnMut(u64),
}

impl Stream<'_> {
    /// One member's PAX header and records if any, its header, and a
    /// file's body.
    fn member(&mut self, dir: &File, entry: &Entry, pax: &[u8]) -> Result<(), String> {
        if !pax.is_empty() {
            let size = pax.len() as u64;
            self.small.extend_from_slice(&pax_header(entry, size));
            self.small.extend_from_slice(pax);
            pad(&mut self.small, size);
        }
        let Kind::File { size } = entry.kind else {
            self.small.extend_from_slice(&header(entry));
            if self.small.len() >= GATHER {
                self.flush().map_err(|e| e.to_string())?;
            }
            return Ok(());
        };
        let path = escape(&entry.path);
        self.file(dir, entry, size)
            .map_err(|why| format!("{path}: {why}"))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::write_all(self.conn, &self.small)?;
        self.written += self.small.len() as u64;
        self.small.clear();
        (self.progress)(self.written);
        Ok(())
    }

    /// A file's header and body (sendfile, behind what is gathered), if
    /// the file is still what was listed and stays so while it is sent.
    fn file(&mut self, dir: &File, planned: &Entry, size: u64) -> Result<(), String> {
        let (file, opened, identity) = open_unchanged(dir, planned)?;
        self.small.extend_from_slice(&header(&opened));
        if size <= SMALL_FILE {
            return self.gathered(&file, identity, size);
        }
        let mut moved = 0;
        let head = std::mem::take(&mut self.small);
        let before = self.written + head.len() as u64;
        let progress = &mut self.progress;
        let outcome =
            crate::copy::send_file(&file, self.conn, &head, 0, size, self.zero_copy, &mut |n| {
                moved = n;
                progress(before + n);
            });
        self.written = before + moved;
        self.owed = padded(size) - moved;
        outcome.map_err(|e| e.to_string())?;
        // the bytes sent are the file's as it was opened, or the archive is cut
        same_file(&file, identity, size)?;
        pad(&mut self.small, size);
        self.owed = 0;
        Ok(())
    }

    /// A small file's body read in among the headers, so that a tree of
    /// small files goes out in writes of [`GATHER`], not in a sendfile
    /// and a write each. A file that changed leaves only its header
    /// gathered, its whole body owed.
    fn gathered(&mut self, file: &File, identity: FileId, size: u64) -> Result<(), String> {
        let start = self.small.len();
        self.small.resize(start + size as usize, 0);
        let read = crate::file_read::read_exact_at(file, &mut self.small[start..], 0)
            .map_err(|e| e.to_string())
            .and_then(|()| same_file(file, identity, size));
        if let Err(why) = read {
            self.small.truncate(start);
            self.owed = padded(size);
            return Err(why);
        }
        pad(&mut self.small, size);
        if self.small.len() >= GATHER {
            self.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Before the connection is cut: what was gathered, then a block that
    /// is no header, so that a reader fails even where the cut falls
    /// between two members (GNU tar takes an archive ending there without
    /// its zero blocks as whole). A cut inside a file's body first fills
    /// the body to its end, so that the block falls where a header is
    /// read (GNU tar 1.34 takes a stream whose last block there is partial
    /// as whole too); unless more than [`GATHER`] is owed: the stream then
    /// ends inside the body, which a reader fails on. Still short of the
    /// length promised: at least the two zero blocks are missing. Best
    /// effort: the client may be gone.
    fn poison(&mut self, why: &str) {
        if self.owed <= GATHER as u64 {
            self.small.resize(self.small.len() + self.owed as usize, 0);
        }
        let mut block = [b'!'; BLOCK as usize];
        put(
            &mut block,
            format!("zc: this archive was cut short: {why}").as_bytes(),
        );
        self.small.extend_from_slice(&block);
        let _ = io::Write::write_all(self.conn, &self.small);
    }
}

fn cut_short(at: u64, length: u64, why: String) -> io::Error {
    io::Error::other(format!(
        "the tar stream was cut short after {at} of {length} bytes: {why}"
    ))
}

/// Opens a file of the plan beneath `dir`, the source, if it is still a
/// regular file of the planned size: the entry it is now (mode, mtime for
/// its header) and its identity. A link at any name below the source is
/// not followed, and a FIFO put in its place does not block.
fn open_unchanged(dir: &File, planned: &Entry) -> Result<(File, Entry, FileId), String> {
    let file = open_member(dir, planned)
        .ok_or("cannot open it beneath the directory served (gone, or a link now)")?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("no longer a regular file".into());
    }
    if planned.kind != (Kind::File { size: meta.len() }) {
        return Err(changed(&planned.kind, meta.len()));
    }
    let (source, path) = (planned.source.clone(), planned.path.clone());
    let entry = walk::entry(source, path, planned.kind.clone(), &walk::Stat::from(&meta));
    Ok((file, entry, FileId::of(&meta)))
}

#[cfg(unix)]
pub(super) fn open_member(dir: &File, planned: &Entry) -> Option<File> {
    // the entry's path below the top name
    let below: Vec<Vec<u8>> = planned
        .path
        .split(|&b| b == b'/')
        .skip(1)
        .map(<[u8]>::to_vec)
        .collect();
    walk::open_beneath(dir, &below)
}

/// Without openat: by its path, as the walk checked it.
#[cfg(not(unix))]
pub(super) fn open_member(_dir: &File, planned: &Entry) -> Option<File> {
    File::open(&planned.source).ok()
}

/// Whether the file is still the one opened: same identity, ctime
/// included (any write since shows).
fn same_file(file: &File, opened: FileId, size: u64) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    match FileId::of(&meta) == opened {
        true => Ok(()),
        false => Err(format!(
            "changed while it was being sent ({size} bytes then, {} now)",
            meta.len()
        )),
    }
}

fn changed(planned: &Kind, now: u64) -> String {
    match planned {
        Kind::File { size } => format!("{size} bytes when listed, {now} now"),
        _ => "no longer what was listed".into(),
    }
}

/// The bytes one member takes: its PAX header and records if any, its
/// header, and a file's body padded to a block; `None` past a u64.
fn member_length(entry: &Entry, pax: &[u8]) -> Option<u64> {
    let pax = match pax.is_empty() {
        true => 0,
        false => BLOCK + padded(pax.len() as u64),
    };
    let body = match entry.kind {
        Kind::File { size } => size.div_ceil(BLOCK).checked_mul(BLOCK)?,
        _ => 0,
    };
    (pax + BLOCK).checked_add(body)
}

fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

fn pad(out: &mut Vec<u8>, n: u64) {
    out.resize(out.len() + (padded(n) - n) as usize, 0);
}

/// The member's name in the archive: a directory's ends with `/`.
fn tar_name(entry: &Entry) -> Vec<u8> {
    let mut name = entry.path.clone();
    if entry.kind == Kind::Dir {
        name.push(b'/');
    }
    name
}

/// Where ustar can hold `name` as (prefix, name): 100 bytes, or a prefix
/// of up to 155 split off at a `/`; ASCII only (PAX's `path` is UTF-8).
fn ustar_split(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some((b"", name));
    }
    // the last `/` that leaves at most 100 bytes after it (a directory's
    // own trailing `/` is no split point: the name would be empty)
    let body = name.strip_suffix(b"/").unwrap_or(name);
    (0..body.len())
        .rev()
        .filter(|&i| body[i] == b'/')
        .find(|&i| name.len() - i - 1 <= 100)
        .filter(|&i| i <= 155 && i > 0)
        .map(|i| (&name[..i], &name[i + 1..]))
}

/// The PAX records a member needs, concatenated (empty when none).
///
/// A name that is not UTF-8 goes as the bytes it is, without
/// `hdrcharset=BINARY`: GNU tar (1.34) warns about that keyword, and
/// restores the bytes either way.
fn pax_records(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    let name = tar_name(entry);
    if ustar_split(&name).is_none() {
        out.extend(record("path", &name));
    }
    match &entry.kind {
        Kind::Link { target } if target.len() > 100 || !target.is_ascii() => {
            out.extend(record("linkpath", target));
        }
        Kind::File { size } if *size > OCTAL_11 => {
            out.extend(record("size", size.to_string().as_bytes()));
        }
        _ => {}
    }
    out
}

/// `LEN key=value\n`, LEN counting its own digits.
fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// The ustar header of a member. Fields PAX carries get what fits: an
/// ASCII stand-in for the name, a truncated link target, size 0 past
/// ustar's reach (PAX's `size` wins).
fn header(entry: &Entry) -> [u8; 512] {
    let name = tar_name(entry);
    let (kind, size, link): (u8, u64, &[u8]) = match &entry.kind {
        Kind::File { size } => (b'0', *size, b""),
        Kind::Dir => (b'5', 0, b""),
        Kind::Link { target } => (b'2', 0, target),
    };
    let mtime = (entry.mtime_ns / 1_000_000_000).min(OCTAL_11);
    let mut h = [0u8; 512];
    match ustar_split(&name) {
        Some((prefix, rest)) => {
            put(&mut h[0..100], rest);
            put(&mut h[345..500], prefix);
        }
        None => put(&mut h[0..100], &stand_in(&name)),
    }
    octal(&mut h[100..108], u64::from(entry.mode & 0o777));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], if size > OCTAL_11 { 0 } else { size });
    octal(&mut h[136..148], mtime);
    h[156] = kind;
    put(&mut h[157..257], link);
    finish(h)
}

/// The extended header before a member: typeflag `x`, `size` bytes of
/// records.
fn pax_header(entry: &Entry, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    put(&mut h[0..100], b"././@PaxHeader");
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(
        &mut h[136..148],
        (entry.mtime_ns / 1_000_000_000).min(OCTAL_11),
    );
    h[156] = b'x';
    finish(h)
}

/// The magic, version, device numbers and checksum every header has.
fn finish(mut h: [u8; 512]) -> [u8; 512] {
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    // six digits, NUL, space: what GNU tar and POSIX write
    let digits = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(digits.as_bytes());
    h
}

/// Octal digits filling all but the last byte of `field`, then NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    field[..width].copy_from_slice(&digits.as_bytes()[digits.len() - width..]);
    field[width] = 0;
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// What a reader without PAX sees for a name ustar cannot hold: ASCII, at
/// most 100 bytes, the end of the name kept.
fn stand_in(name: &[u8]) -> Vec<u8> {
    let ascii: Vec<u8> = name
        .iter()
        .map(|&b| if b.is_ascii() && b != 0 { b } else { b'_' })
        .collect();
    ascii[ascii.len().saturating_sub(100)..].to_vec()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Stdio};

    fn run(cmd: &mut Command) -> Vec<u8> {
        let out = cmd
            .output()
            .expect("tar runs (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The archive `send` writes for `top`, made in memory with the same
    /// pieces, each file read whole.
    fn archive(top: &Top) -> (Vec<u8>, u64) {
        let plan = plan(top).unwrap();
        let mut out = Vec::new();
        for member in members(&plan.source) {
            let (entry, pax) = member.unwrap();
            if !pax.is_empty() {
                out.extend_from_slice(&pax_header(&entry, pax.len() as u64));
                out.extend_from_slice(&pax);
                pad(&mut out, pax.len() as u64);
            }
            out.extend_from_slice(&header(&entry));
            if let Kind::File { size } = entry.kind {
                out.extend(std::fs::read(&entry.source).unwrap());
                pad(&mut out, size);
            }
        }
        out.extend_from_slice(&[0; 1024]);
        (out, plan.length)
    }

    fn top(path: &Path, name: &str) -> Top {
        let (path, name) = (path.to_path_buf(), name.as_bytes().to_vec());
        Top { name, path }
    }

    #[test]
    fn tar_headers_are_what_gnu_tar_writes() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("f.txt"), b"hello").unwrap();
        std::os::unix::fs::symlink("f.txt", d.join("l")).unwrap();
        let mode = |p: &str, m| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d.join(p), std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode("f.txt", 0o640);
        mode(".", 0o750);
        let touch = ["-h", "-d", "@1600000000"];
        run(Command::new("touch")
            .args(touch)
            .args(["d/l", "d/f.txt", "d"])
            .current_dir(t.path()));
        let gnu = run(Command::new("tar")
            .args([
                "--format=ustar",
                "--numeric-owner",
                "--owner=0",
                "--group=0",
            ])
            .args(["--no-recursion", "-cf", "-", "d", "d/f.txt", "d/l"])
            .current_dir(t.path()));
        let (ours, length) = archive(&top(&d, "d"));
        assert_eq!(length, ours.len() as u64);
        assert_eq!(ours.len(), 4 * 512 + 1024);
        // GNU tar pads to its 10 KiB record with zeros
        assert_eq!(&gnu[..ours.len()], &ours[..]);
        assert!(gnu[ours.len()..].iter().all(|&b| b == 0));
    }

    /// What `tar tvf` (or `tf`) lists of an archive.
    fn listed(archive: &[u8], verbose: bool) -> Vec<String> {
        let mut tar = Command::new("tar")
            .arg(if verbose { "tvf" } else { "tf" })
            .arg("-")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar runs (scripts/test.sh installs it)");
        io::Write::write_all(&mut tar.stdin.take().unwrap(), archive).unwrap();
        let out = tar.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn tar_pax_names_and_links_read_back() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        // 150 bytes below d/ with no `/` to split at: PAX path
        let long = "n".repeat(150);
        // 58 + 1 + 89 below d/: ustar's prefix and name, no PAX
        let split = format!("{}/{}", "p".repeat(58), "s".repeat(89));
        // 112 bytes: PAX linkpath
        let target = format!("{}/y", "x".repeat(110));
        std::fs::create_dir_all(d.join(&split).parent().unwrap()).unwrap();
        std::fs::create_dir(d.join("x".repeat(110))).unwrap();
        for name in [long.as_str(), split.as_str(), "é ü.txt", &target] {
            std::fs::write(d.join(name), name).unwrap();
        }
        std::os::unix::fs::symlink(&target, d.join("link")).unwrap();
        let (ours, length) = archive(&top(&d, "d"));
        assert_eq!(length, ours.len() as u64);
        let plan = plan(&top(&d, "d")).unwrap();
        let paxed = members(&plan.source)
            .filter(|m| !m.as_ref().unwrap().1.is_empty())
            .count();
        // the 150 bytes, the non-ASCII name, the link, and d/xxx/ (111 bytes
        // after its one split point)
        assert_eq!(paxed, 4);
        let names = listed(&ours, false);
        for want in [
            format!("d/{long}"),
            format!("d/{split}"),
            "d/é ü.txt".into(),
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        assert_eq!(names.len(), plan.lengths.len());
        let link = format!("d/link -> {target}");
        assert!(listed(&ours, true).iter().any(|l| l.ends_with(&link)));
    }

    #[test]
    fn tar_names_not_utf8_go_as_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        let odd = std::ffi::OsStr::from_bytes(b"bad\xff");
        std::fs::write(d.join(odd), b"x").unwrap();
        let plan = plan(&top(&d, "d")).unwrap();
        let (_, pax) = members(&plan.source).nth(1).unwrap().unwrap();
        assert_eq!(pax, b"15 path=d/bad\xff\n");
        let (ours, _) = archive(&top(&d, "d"));
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let mut tar = Command::new("tar")
            .args(["xf", "-", "-C"])
            .arg(&out)
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        io::Write::write_all(&mut tar.stdin.take().unwrap(), &ours).unwrap();
        let done = tar.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert!(done.status.success() && stderr.is_empty(), "{stderr}");
        assert_eq!(std::fs::read(out.join("d").join(odd)).unwrap(), b"x");
    }

    #[test]
    fn tar_records_count_their_own_length() {
        for n in [0, 1, 88, 89, 90, 91, 985, 986, 987, 9990] {
            let r = record("path", &vec![b'a'; n]);
            let (len, _) = std::str::from_utf8(&r).unwrap().split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{n}");
        }
        assert_eq!(record("path", b"a/b"), b"12 path=a/b\n");
    }

    #[test]
    fn tar_ustar_splits_at_a_slash() {
        let name = |n: usize| "a".repeat(n).into_bytes();
        assert_eq!(ustar_split(&name(100)), Some((&b""[..], &name(100)[..])));
        assert_eq!(ustar_split(&name(101)), None);
        let two = [name(155), b"/".to_vec(), name(100)].concat();
        assert_eq!(ustar_split(&two), Some((&name(155)[..], &name(100)[..])));
        let too_long = [name(156), b"/".to_vec(), name(10)].concat();
        assert_eq!(ustar_split(&too_long), None);
        let dir = [name(50), b"/".to_vec(), name(99), b"/".to_vec()].concat();
        assert_eq!(ustar_split(&dir).unwrap().1.len(), 100);
        assert_eq!(ustar_split("é".as_bytes()), None);
    }

    fn planned(source: &Path, path: &str, size: u64) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            source: source.to_path_buf(),
            kind: Kind::File { size },
            mode: 0o644,
            mtime_ns: 0,
        }
    }

    #[test]
    fn tar_a_fifo_put_in_a_files_place_does_not_block_its_open() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        run(Command::new("mkfifo").arg(d.join("p")));
        let dir = open_top(&d).unwrap();
        let entry = planned(&d.join("p"), "d/p", 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(open_unchanged(&dir, &entry).err()));
        // generous: the open returns at once, or never (no writer comes)
        let why = rx.recv_timeout(std::time::Duration::from_secs(60));
        let why = why.expect("the open of a FIFO returned").unwrap();
        assert!(why.contains("no longer a regular file"), "{why}");
    }

    #[test]
    fn tar_lengths_past_a_u64_are_refused_not_wrapped() {
        let p = Path::new("/nowhere");
        assert_eq!(member_length(&planned(p, "d/f", u64::MAX - 10), b""), None);
        let near = 1 << 63;
        assert_eq!(
            member_length(&planned(p, "d/f", near), b""),
            Some(near + BLOCK)
        );
        // tmpfs holds sparse files of 2^63 - 1 bytes (ext4: 16 TiB)
        let Ok(t) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        // three sparse files of 2^62 + 2^61 bytes: each fits, their sum does not
        for name in ["a", "b", "c"] {
            let f = File::create(d.join(name)).unwrap();
            if f.set_len((1 << 62) + (1 << 61)).is_err() {
                return; // a file system that cannot hold them
            }
        }
        let why = plan(&top(&d, "d")).err().expect("refused");
        assert!(why.contains("over 2^64 bytes"), "{why}");
    }
}
