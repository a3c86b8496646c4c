//! In-process paths through the library, over a loopback TcpStream:
//! `zc::copy::send_file` through sendfile(2) and through the buffered path;
//! `zc::copy::recv` through splice(2) and through read/write (to /dev/null,
//! to a file, and with SHA-256: in the receive loop, or on the hashing
//! thread of `zc::hash::Pipe` as zc's verifying receiver does); and SHA-256
//! itself (`zc::hash::hash_range` over a cached file, and sha2 over memory).
//!
//! `cargo bench --bench paths [-- FILTER]`; ZC_BENCH_MIB (default 512) sets
//! the bytes per run, ZC_BENCH_REPS (default 3) the runs per case (medians
//! shown), ZC_BENCH_DIR where the files live (default /dev/shm when present).
//! CPU columns: the sending thread's and the receiving thread's own seconds
//! (RUSAGE_THREAD) and the whole process's (every thread, hashing included).
//! On loopback the receiving socket's TCP work runs largely in the sender's
//! thread (softirq at transmit), so the split between sides is loose; the
//! sum is not.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zc::conn::Conn;
use zc::copy::{self, Sink};
use zc::hash;

const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
const IDLE: Duration = Duration::from_secs(30);

/// CPU seconds (user + system) the calling thread has used so far.
fn thread_cpu() -> f64 {
    #[cfg(target_os = "linux")]
    return rusage_cpu(libc::RUSAGE_THREAD);
    #[cfg(not(target_os = "linux"))]
    f64::NAN
}

/// CPU seconds (user + system) every thread of this process has used so far.
fn process_cpu() -> f64 {
    #[cfg(unix)]
    return rusage_cpu(libc::RUSAGE_SELF);
    #[cfg(not(unix))]
    f64::NAN
}

#[cfg(unix)]
fn rusage_cpu(who: libc::c_int) -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills `ru` in full when it returns 0; it is read
    // only then.
    if unsafe { libc::getrusage(who, ru.as_mut_ptr()) } != 0 {
        return f64::NAN;
    }
    // SAFETY: see above.
    let ru = unsafe { ru.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// How a receiver treats the bytes it gets.
#[derive(Clone, Copy)]
enum Hashing {
    No,
    /// SHA-256 in the receive loop, between reads.
    InLoop,
    /// SHA-256 on `zc::hash::Pipe`'s thread.
    Pipe,
}

/// Chunks that are hashed in the receive loop itself.
struct InLoop {
    buf: Option<copy::Buf>,
    hasher: Sha256,
}

impl copy::Chunks for InLoop {
    fn take(&mut self) -> copy::Buf {
        self.buf
            .take()
            .unwrap_or_else(|| copy::Buf::new(copy::BUF_SIZE))
    }
    fn written(&mut self, buf: copy::Buf, len: usize) {
        self.hasher.update(&buf[..len]);
        self.buf = Some(buf);
    }
    fn spliced(&mut self, _: u64) {}
}

/// Chunks handed to a hashing thread, as zc's receiver does.
struct Piped<'a> {
    pipe: &'a hash::Pipe,
    at: u64,
}

impl copy::Chunks for Piped<'_> {
    fn take(&mut self) -> copy::Buf {
        self.pipe.buffer()
    }
    fn written(&mut self, buf: copy::Buf, len: usize) {
        self.pipe.push(self.at, buf, len);
        self.at += len as u64;
    }
    fn spliced(&mut self, _: u64) {}
}

/// One run: wall seconds and each side's CPU seconds.
#[derive(Clone, Copy)]
struct Run {
    wall: f64,
    send_cpu: f64,
    recv_cpu: f64,
    all_cpu: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Bench {
    dir: PathBuf,
    bytes: u64,
    reps: usize,
    filter: Option<String>,
    source: File,
}

/// The sending side of a run: a thread that gets the connected stream.
type Sender = Box<dyn FnOnce(TcpStream) -> f64 + Send>;

impl Bench {
    fn wanted(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }

    /// Connects a pair over loopback; `send` runs on a thread of its own with
    /// the client end, `recv` on this thread with the accepted end. Each
    /// returns its thread's CPU seconds for the work.
    fn pair(&self, send: Sender, recv: impl FnOnce(TcpStream) -> f64) -> Run {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding loopback");
        let addr = listener.local_addr().unwrap();
        let began = Instant::now();
        let sender = thread::spawn(move || {
            let stream = TcpStream::connect(addr).expect("connecting");
            send(stream)
        });
        let all = process_cpu();
        let (stream, _) = listener.accept().expect("accepting");
        let recv_cpu = recv(stream);
        let send_cpu = sender.join().expect("the sending thread");
        Run {
            wall: began.elapsed().as_secs_f64(),
            send_cpu,
            recv_cpu,
            all_cpu: process_cpu() - all,
        }
    }

    fn report(&self, name: &str, mut run: impl FnMut() -> Run) {
        if !self.wanted(name) {
            return;
        }
        let runs: Vec<Run> = (0..self.reps).map(|_| run()).collect();
        let gib = self.bytes as f64 / GIB;
        let wall = median(runs.iter().map(|r| r.wall).collect());
        let send = median(runs.iter().map(|r| r.send_cpu).collect());
        let recv = median(runs.iter().map(|r| r.recv_cpu).collect());
        let all = median(runs.iter().map(|r| r.all_cpu).collect());
        println!(
            "{name:<36} {:>6.2} {:>9.3} {:>9.3} {:>9.3}",
            gib / wall,
            send / gib,
            recv / gib,
            all / gib
        );
    }

    /// A sender thread: the whole source through `zc::copy::send_file`.
    fn file_sender(&self, zero_copy: bool) -> Sender {
        let file = self.source.try_clone().expect("duplicating the source");
        let bytes = self.bytes;
        Box::new(move |stream| {
            let start = thread_cpu();
            let mut conn = Conn::new(stream, IDLE).expect("wrapping the stream");
            let sent = copy::send_file(&file, &mut conn, &[], 0, bytes, zero_copy, &mut |_| {})
                .expect("send_file");
            assert_eq!(sent.bytes, bytes);
            assert_eq!(sent.zero_copy, zero_copy, "{:?}", sent.fallback);
            conn.shutdown_write();
            thread_cpu() - start
        })
    }

    /// A plain receiver: read into a 1 MiB buffer and drop the bytes.
    fn drain(&self) -> impl FnOnce(TcpStream) -> f64 {
        let bytes = self.bytes;
        move |mut stream| {
            let start = thread_cpu();
            let mut buf = vec![0u8; MIB as usize];
            let mut got = 0u64;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("reading: {e}"),
                }
            }
            assert_eq!(got, bytes);
            thread_cpu() - start
        }
    }

    /// A receiver through `zc::copy::recv` into `out`, with or without
    /// splice, hashing the bytes or not.
    fn zc_receiver<'a>(
        &self,
        out: &'a mut File,
        splice: bool,
        hashing: Hashing,
    ) -> impl FnOnce(TcpStream) -> f64 + 'a {
        let bytes = self.bytes;
        move |stream| {
            out.set_len(0).ok(); // fails on /dev/null, which needs nothing
            out.rewind().ok();
            let start = thread_cpu();
            let mut conn = Conn::new(stream, IDLE).expect("wrapping the stream");
            let sink = Sink::File(out);
            let got = match hashing {
                Hashing::No => {
                    let mut chunks = copy::Counted::new(|_| {});
                    copy::recv(&mut conn, sink, Some(bytes), splice, &mut chunks)
                }
                Hashing::InLoop => {
                    let mut chunks = InLoop {
                        buf: None,
                        hasher: Sha256::new(),
                    };
                    let got = copy::recv(&mut conn, sink, Some(bytes), splice, &mut chunks);
                    std::hint::black_box(chunks.hasher.finalize());
                    got
                }
                Hashing::Pipe => {
                    let pipe = hash::Pipe::start(hash::Hashers {
                        sent: Some(Sha256::new()),
                    });
                    let mut chunks = Piped { pipe: &pipe, at: 0 };
                    let got = copy::recv(&mut conn, sink, Some(bytes), splice, &mut chunks);
                    let hashers = pipe.finish();
                    std::hint::black_box(hashers.sent.map(|h| h.finalize()));
                    got
                }
            };
            assert_eq!(got.expect("recv").bytes, bytes);
            thread_cpu() - start
        }
    }
}

/// Whether /proc/cpuinfo lists SHA instructions (x86 `sha_ni`, arm `sha2`).
fn sha_instructions() -> &'static str {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = info
        .lines()
        .find(|l| l.starts_with("flags") || l.starts_with("Features"))
        .unwrap_or("");
    match flags
        .split_whitespace()
        .any(|f| f == "sha_ni" || f == "sha2")
    {
        true => "yes",
        false if flags.is_empty() => "unknown (no /proc/cpuinfo flags)",
        false => "no",
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; anything else not starting with '-' filters.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mib = env_num("ZC_BENCH_MIB", 512).max(1);
    let reps = env_num("ZC_BENCH_REPS", 3).max(1) as usize;
    let dir = std::env::var_os("ZC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            }
        });
    let bytes = mib * MIB;

    // The source: a pseudo-random MiB repeated, read once into the page cache.
    let mut source = tempfile::tempfile_in(&dir).expect("creating the source file");
    let mut block = vec![0u8; MIB as usize];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    for _ in 0..mib {
        source.write_all(&block).expect("writing the source file");
    }
    std::hint::black_box(zc::hash::hash_range(&source, 0, bytes).expect("reading the source"));

    let bench = Bench {
        dir,
        bytes,
        reps,
        filter,
        source,
    };
    println!(
        "zc in-process paths: {mib} MiB per run, median of {reps}, files in {}",
        bench.dir.display()
    );
    println!(
        "{}, {} CPUs; SHA instructions (sha_ni/sha2): {}",
        cpu_model(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        sha_instructions()
    );
    println!("{:<36} {:>6} {:>29}", "", "", "CPU s/GiB");
    println!(
        "{:<36} {:>6} {:>9} {:>9} {:>9}",
        "path", "GiB/s", "send thr", "recv thr", "all"
    );

    for (name, zero_copy) in [
        ("send_file sendfile -> drain", true),
        ("send_file buffered -> drain", false),
    ] {
        bench.report(name, || {
            bench.pair(bench.file_sender(zero_copy), bench.drain())
        });
    }

    let mut devnull = File::options()
        .write(true)
        .open("/dev/null")
        .expect("opening /dev/null");
    let mut file = tempfile::tempfile_in(&bench.dir).expect("creating the output file");
    let cases = [
        ("recv splice -> /dev/null", true, true, Hashing::No),
        ("recv read/write -> /dev/null", true, false, Hashing::No),
        (
            "recv r/w+sha256 in loop -> /dev/null",
            true,
            false,
            Hashing::InLoop,
        ),
        (
            "recv r/w+sha256 Pipe -> /dev/null",
            true,
            false,
            Hashing::Pipe,
        ),
        ("recv splice -> file", false, true, Hashing::No),
        ("recv read/write -> file", false, false, Hashing::No),
        ("recv r/w+sha256 Pipe -> file", false, false, Hashing::Pipe),
        // when the write is itself a copy, whether the thread still pays
        (
            "recv r/w+sha256 in loop -> file",
            false,
            false,
            Hashing::InLoop,
        ),
    ];
    for (name, to_null, splice, hashing) in cases {
        let out = if to_null { &mut devnull } else { &mut file };
        bench.report(name, || {
            bench.pair(
                bench.file_sender(true),
                bench.zc_receiver(out, splice, hashing),
            )
        });
    }
    drop(file);

    // SHA-256 alone: a cached file through hash_range, and memory.
    let gib = bytes as f64 / GIB;
    if bench.wanted("sha256") {
        sha_pass("sha256 hash_range (cached file)", gib, reps, || {
            std::hint::black_box(zc::hash::hash_range(&bench.source, 0, bytes).unwrap());
        });
        sha_pass("sha256 sha2 crate (memory)", gib, reps, || {
            let mut hasher = Sha256::new();
            for _ in 0..mib {
                hasher.update(&block);
            }
            std::hint::black_box(hasher.finalize());
        });
        // what hash_range did before its buffer was placed: a buffer
        // starting 16 bytes into a page, where glibc's malloc puts a block
        // it maps (see `copy::Buf`)
        let mut unplaced = copy::Buf::new(copy::BUF_SIZE);
        unplaced.place(16);
        sha_pass("sha256 pread, 16 bytes into a page", gib, reps, || {
            for at in (0..bytes).step_by(64 << 20) {
                let len = (bytes - at).min(64 << 20);
                let sha = zc::hash::block(&bench.source, at, len, &mut unplaced).unwrap();
                std::hint::black_box(sha);
            }
        });
        #[cfg(target_os = "linux")]
        sha_pass("sha256 mapped 8 MiB windows (cached)", gib, reps, || {
            sha_mapped(&bench.source, bytes)
        });
    }
    if bench.wanted("aes-256-gcm") {
        records(&block, mib, reps);
    }
}

/// The record layer alone over memory, to hold against
/// `openssl speed -evp aes-256-gcm`: `mib` times `block` sealed into TLS
/// records; then one such wire opened `mib` times, straight into a buffer
/// as a receiver does. CPU seconds per GiB of plaintext, this thread's
/// (timed over whole passes: a thread's clock is coarse).
fn records(block: &[u8], mib: u64, reps: usize) {
    use zc::secure::record::{Keys, Opener, Sealer, HEADER, MAX_PLAIN};
    let keys = Keys {
        key: [7; 32],
        iv: [3; 12],
    };
    let gib = (mib * MIB) as f64 / GIB;
    let (mut seal, mut open) = (Vec::new(), Vec::new());
    let mut wire = Vec::with_capacity(block.len() + block.len() / 256);
    let mut plain = vec![0u8; MAX_PLAIN + 1];
    for _ in 0..reps {
        let mut sealer = Sealer::new(&keys);
        let start = thread_cpu();
        for _ in 0..mib {
            wire.clear();
            sealer.seal(block, &mut wire).expect("sealing");
        }
        seal.push((thread_cpu() - start) / gib);
        wire.clear();
        Sealer::new(&keys).seal(block, &mut wire).expect("sealing");
        let start = thread_cpu();
        for _ in 0..mib {
            let mut opener = Opener::new(&keys);
            let mut at = 0;
            while at < wire.len() {
                let len = HEADER + Opener::body_len(&wire[at..at + HEADER]).expect("a header");
                let n = opener.open_into(&wire[at..at + len], &mut plain);
                std::hint::black_box(n.expect("opening"));
                at += len;
            }
        }
        open.push((thread_cpu() - start) / gib);
    }
    println!(
        "{:<36} {:>6} {:>9.3} {:>9.3}",
        "aes-256-gcm records (memory)",
        "",
        median(seal),
        median(open)
    );
}

/// One SHA-256 pass of `gib` GiB, `reps` times: the median GiB/s, and
/// this thread's CPU seconds per GiB (the one number a busy machine does
/// not skew).
fn sha_pass(label: &str, gib: f64, reps: usize, mut pass: impl FnMut()) {
    let (mut rates, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (began, used) = (Instant::now(), thread_cpu());
        pass();
        rates.push(gib / began.elapsed().as_secs_f64());
        cpu.push((thread_cpu() - used) / gib);
    }
    println!(
        "{label:<36} {:>6.2}  {:.3} CPU-s/GiB",
        median(rates),
        median(cpu)
    );
}

/// SHA-256 straight from the page cache through a read-only mapping, a
/// window at a time: what hashing costs without the copy into a buffer.
#[cfg(target_os = "linux")]
fn sha_mapped(file: &File, bytes: u64) {
    use std::os::fd::AsRawFd;
    const WINDOW: usize = 8 << 20;
    let mut hasher = Sha256::new();
    let mut at = 0u64;
    while at < bytes {
        let len = (bytes - at).min(WINDOW as u64) as usize;
        // SAFETY: a read-only mapping of a file this bench made and nobody
        // truncates; unmapped before the next.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                at as libc::off_t,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the mapping is `len` bytes, readable, alive until munmap.
        hasher.update(unsafe { std::slice::from_raw_parts(p as *const u8, len) });
        // SAFETY: unmaps what was mapped above.
        unsafe { libc::munmap(p, len) };
        at += len as u64;
    }
    std::hint::black_box(hasher.finalize());
}
