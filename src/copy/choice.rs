//! Which way received bytes reach a regular file on this machine: splice(2)
//! through a pipe, or read/write through a buffer. Neither wins everywhere:
//! into tmpfs, splice cost 0.49 CPU-s/GiB against read/write's 0.79 on an
//! AMD EPYC VM, and no less than read/write on an Intel Xeon VM. So it is
//! measured: the first [`SAMPLE`] bytes per way received into a file system
//! of a type not yet known alternate between the two in [`SEGMENT`]s, each
//! timed on the receiving thread's CPU clock (waiting for the network costs
//! nothing on it), and the cheaper way per byte serves every later byte. The
//! answer is kept for the process and in a cache file ([`cache_path`]), one
//! line per file system type, host and kernel, so one receive measures and
//! the next ones only read it. The bytes on disk are the same either way.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// A way into a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Splice,
    ReadWrite,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Splice => "splice",
            Way::ReadWrite => "read-write",
        }
    }

    fn parse(word: &str) -> Option<Way> {
        [Way::Splice, Way::ReadWrite]
            .into_iter()
            .find(|w| w.name() == word)
    }
}

/// Bytes one timed turn of a way moves while measuring.
pub const SEGMENT: u64 = 4 << 20;
/// Bytes measured per way before choosing.
pub const SAMPLE: u64 = 16 << 20;
/// Read/write must cost this much less per byte to be chosen: within the
/// noise, splice keeps the bytes out of user space.
const MARGIN: f64 = 0.95;

/// What one way cost so far on one file system type.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    bytes: u64,
    ns: u64,
}

impl Cost {
    fn per_mib(self) -> u64 {
        (self.ns as u128 * (1 << 20) / self.bytes.max(1) as u128) as u64
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Probe {
    splice: Cost,
    read_write: Cost,
    chosen: Option<Way>,
}

impl Probe {
    /// The way for the next bytes, and at most how many before asking again.
    fn next(&self) -> (Way, u64) {
        match self.chosen {
            Some(way) => (way, u64::MAX),
            None if self.splice.bytes <= self.read_write.bytes => (Way::Splice, SEGMENT),
            None => (Way::ReadWrite, SEGMENT),
        }
    }

    /// Counts a turn; true when it settled the choice.
    fn add(&mut self, way: Way, bytes: u64, ns: u64) -> bool {
        if self.chosen.is_some() || bytes == 0 {
            return false;
        }
        let cost = match way {
            Way::Splice => &mut self.splice,
            Way::ReadWrite => &mut self.read_write,
        };
        cost.bytes += bytes;
        cost.ns += ns;
        if self.splice.bytes < SAMPLE || self.read_write.bytes < SAMPLE {
            return false;
        }
        let (s, rw) = (self.splice.per_mib(), self.read_write.per_mib());
        self.chosen = Some(match (rw as f64) < s as f64 * MARGIN {
            true => Way::ReadWrite,
            false => Way::Splice,
        });
        true
    }
}

/// What this process knows, by file system type; `None` until the cache
/// file was read.
static KNOWN: Mutex<Option<HashMap<u32, Probe>>> = Mutex::new(None);

fn with_known<T>(f: impl FnOnce(&mut HashMap<u32, Probe>) -> T) -> T {
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    f(known.get_or_insert_with(read_cache))
}

/// The way for the next bytes into a file system of type `fs`, and at most
/// how many bytes to move that way before [`record`].
pub fn next(fs: u32) -> (Way, u64) {
    with_known(|known| known.entry(fs).or_default().next())
}

/// What a turn cost: `bytes` moved `way` in `ns` of this thread's CPU.
pub fn record(fs: u32, way: Way, bytes: u64, ns: u64) {
    let settled = with_known(|known| known.entry(fs).or_default().add(way, bytes, ns));
    if settled {
        // best effort: without the file the next process measures again
        let _ = write_cache(fs);
    }
}

/// `$XDG_CACHE_HOME/zc/recv-paths`, else `~/.cache/zc/recv-paths`.
pub fn cache_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    base.is_absolute()
        .then(|| base.join("zc").join("recv-paths"))
}

/// This machine, as a cache line names it: a home shared by several hosts,
/// or a kernel upgraded, measures again.
fn machine() -> String {
    let host = crate::sys::hostname().unwrap_or_default();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{} {}", word(&host), word(release.trim()))
}

/// Anything as one word of a line (a host name is the user's to set).
fn word(text: &str) -> String {
    let w: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if w.is_empty() {
        "-".into()
    } else {
        w
    }
}

/// A line: `FS-MAGIC HOST KERNEL WAY SPLICE-NS/MIB READ-WRITE-NS/MIB`.
fn parse_line(line: &str, machine: &str) -> Option<(u32, Way)> {
    let mut words = line.split_whitespace();
    let fs = u32::from_str_radix(words.next()?, 16).ok()?;
    let at = format!("{} {}", words.next()?, words.next()?);
    let way = Way::parse(words.next()?)?;
    (at == machine).then_some((fs, way))
}

fn read_cache() -> HashMap<u32, Probe> {
    let machine = machine();
    let text = cache_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| parse_line(l, &machine))
        .map(|(fs, way)| {
            let probe = Probe {
                chosen: Some(way),
                ..Probe::default()
            };
            (fs, probe)
        })
        .collect()
}

/// Adds (or replaces) this machine's line for `fs`, keeping the others:
/// written beside and renamed, so a reader never sees half a file.
fn write_cache(fs: u32) -> std::io::Result<()> {
    let path = cache_path().ok_or(std::io::ErrorKind::NotFound)?;
    let probe = with_known(|known| known.get(&fs).copied()).unwrap_or_default();
    let Some(way) = probe.chosen else {
        return Ok(());
    };
    let machine = machine();
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut text: String = old
        .lines()
        .filter(|l| parse_line(l, &machine).is_none_or(|(f, _)| f != fs))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!(
        "{fs:08x} {machine} {} {} {}\n",
        way.name(),
        probe.splice.per_mib(),
        probe.read_write.per_mib()
    ));
    let dir = path.parent().ok_or(std::io::ErrorKind::NotFound)?;
    std::fs::create_dir_all(dir)?;
    // named for this process and type: two receives settling at once each
    // write their own, and the last rename wins
    let tmp = dir.join(format!(".recv-paths.{}.{fs:x}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_alternate_until_both_ways_are_sampled_then_the_cheaper_serves() {
        let mut probe = Probe::default();
        let mut turns = Vec::new();
        loop {
            let (way, most) = probe.next();
            if most == u64::MAX {
                break;
            }
            turns.push(way);
            // read/write costs 2 ns a byte here, splice 1
            let ns = most * if way == Way::Splice { 1 } else { 2 };
            probe.add(way, most, ns);
        }
        let per_way = (SAMPLE / SEGMENT) as usize;
        assert_eq!(turns.len(), 2 * per_way);
        assert!(turns.windows(2).all(|w| w[0] != w[1]), "{turns:?}");
        assert_eq!(probe.next().0, Way::Splice);

        let mut rw = Probe::default();
        for _ in 0..2 * per_way {
            let (way, most) = rw.next();
            rw.add(way, most, most * if way == Way::Splice { 3 } else { 2 });
        }
        assert_eq!(rw.next(), (Way::ReadWrite, u64::MAX));
    }

    #[test]
    fn within_the_margin_splice_stays() {
        let mut probe = Probe::default();
        probe.add(Way::Splice, SAMPLE, 1000);
        assert!(probe.add(Way::ReadWrite, SAMPLE, 970));
        assert_eq!(probe.chosen, Some(Way::Splice));
    }

    #[test]
    fn cache_lines_count_only_for_this_machine() {
        let here = "box 6.18.44";
        assert_eq!(
            parse_line("01021994 box 6.18.44 read-write 500 400", here),
            Some((0x0102_1994, Way::ReadWrite))
        );
        assert_eq!(
            parse_line("0000ef53 box 6.18.44 splice", here),
            Some((0xef53, Way::Splice))
        );
        for other in [
            "01021994 box 6.1.0 splice 1 2",
            "01021994 other 6.18.44 splice 1 2",
            "01021994 box 6.18.44 mmap 1 2",
            "zz box 6.18.44 splice 1 2",
            "",
        ] {
            assert_eq!(parse_line(other, here), None, "{other:?}");
        }
        assert_eq!(word("a b\u{e9}"), "a_b_");
    }
}
