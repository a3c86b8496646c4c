//! LAN discovery between real network namespaces: a bridge and two or three
//! namespaces joined to it by veth pairs, each with an address from the
//! RFC 2544 benchmarking range 198.18.0.0/15 and a ULA (fd5a:7c00::/64),
//! never a range a real network uses. The real `zc` runs in them through
//! `ip netns exec`, and finds, lists and refuses what is announced there,
//! by real zc listeners and by a responder the test runs itself (mdns-sd,
//! inside a namespace) for the hostile and spoofed cases.
//!
//! Each test builds its own bridge and namespaces (mDNS is multicast: two
//! tests on one bridge would hear each other's receivers) and removes them
//! when it ends, passed or failed ([`Lan`]'s Drop).
//!
//! Needs root (CAP_NET_ADMIN) and `ip` (iproute2); the multicast-dropped case
//! needs `nft` (nftables) or `iptables`. `scripts/test.sh` installs both.
//! Where they are missing the tests say `SKIP: ...` and pass, unless
//! `ZC_NETNS_REQUIRED=1` (set by `.ci/run`), which turns a skip into a failure.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use mdns_sd::{ServiceDaemon, ServiceInfo};

/// How long a test waits for the LAN to show what it expects: generous (a
/// busy 2-core machine), and an outcome is asserted, never a time.
const SETTLE_WAIT: Duration = Duration::from_secs(60);

static NEXT_LAN: AtomicU32 = AtomicU32::new(0);

/// A skip, or under `ZC_NETNS_REQUIRED=1` (CI) a failure.
fn unavailable<T>(why: &str) -> Option<T> {
    let tests = "LAN discovery test between namespaces";
    skip_unless_required("ZC_NETNS_REQUIRED", tests, why);
    None
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    uid.and_then(|u| u.split_whitespace().nth(1)) == Some("0")
}

/// `ip ARGS...`; its stderr when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn ip_ok(args: &[&str]) {
    ip(args).unwrap_or_else(|e| panic!("{e}"));
}

/// Which addresses each namespace gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Both,
    V6Only,
}

/// A bridge and `hosts` namespaces on it, removed on drop. Host `i`
/// (from 1) is 198.18.0.i/24 and fd5a:7c00::i/64.
struct Lan {
    bridge: String,
    namespaces: Vec<String>,
}

impl Lan {
    /// `None` (after saying SKIP) where namespaces cannot be made.
    fn new(hosts: usize, family: Family) -> Option<Lan> {
        if !is_root() {
            return unavailable("not root (network namespaces need CAP_NET_ADMIN)");
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return unavailable("no `ip` command (Debian: iproute2)");
        }
        // per process and per test: tests run in parallel, and interface
        // names are at most 15 bytes ("zcb" + pid (<= 7 digits) + n)
        let (pid, n) = (std::process::id(), NEXT_LAN.fetch_add(1, Ordering::Relaxed));
        let mut lan = Lan {
            bridge: format!("zcb{pid}x{n}"),
            namespaces: Vec::new(),
        };
        // the first step says whether this machine lets us at all
        if let Err(e) = ip(&["link", "add", &lan.bridge, "type", "bridge"]) {
            return unavailable(&e);
        }
        // no IGMP/MLD snooping: mDNS groups are flooded to every port,
        // whether or not a membership report went out yet
        ip_ok(&[
            "link",
            "set",
            &lan.bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip_ok(&["link", "set", &lan.bridge, "up"]);
        for i in 1..=hosts {
            lan.add_host(i, &format!("zcv{pid}x{n}v{i}"), family);
        }
        Some(lan)
    }

    fn add_host(&mut self, i: usize, veth: &str, family: Family) {
        let ns = format!("{}n{i}", self.bridge);
        ip_ok(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        // no duplicate address detection on the link-local address either:
        // IPv6 is usable at once
        in_netns(&ns, || {
            std::fs::write("/proc/sys/net/ipv6/conf/default/accept_dad", "0")
                .expect("turning DAD off in the namespace")
        });
        ip_ok(&[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip_ok(&["link", "set", veth, "master", &self.bridge, "up"]);
        if family == Family::Both {
            ip_ok(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("198.18.0.{i}/24"),
                "dev",
                "eth0",
            ]);
        }
        let v6 = format!("fd5a:7c00::{i}/64");
        ip_ok(&["-n", &ns, "addr", "add", &v6, "dev", "eth0", "nodad"]);
        ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
    }

    fn ns(&self, host: usize) -> &str {
        &self.namespaces[host - 1]
    }

    /// `zc ARGS...` in host `host`'s namespace, with no key from the
    /// test's environment.
    fn zc(&self, host: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(host), env!("CARGO_BIN_EXE_zc")])
            .args(args)
            .env("XDG_CACHE_HOME", CACHE)
            .env_remove("ZC_KEY");
        cmd
    }

    /// `zc ARGS...` on host `host`, to its end.
    fn run(&self, host: usize, args: &[&str]) -> Outcome {
        run(self.zc(host, args), None, TIMEOUT)
    }

    /// A listening `zc ARGS...` on host `host` (recv, or send --listen).
    fn listener(&self, host: usize, args: &[&str]) -> Receiver {
        spawn_receiver(self.zc(host, args), Stdout::Null)
    }

    /// `zc peers --json` from `host` until every name in `names` is
    /// listed; returns the last list.
    fn wait_listed(&self, host: usize, names: &[&str]) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + SETTLE_WAIT;
        loop {
            let peers = self.peers_json(host);
            let listed: BTreeSet<&str> = peers.iter().filter_map(|p| p["name"].as_str()).collect();
            if names.iter().all(|n| listed.contains(n)) {
                return peers;
            }
            assert!(
                Instant::now() < deadline,
                "{names:?} not all listed from host {host} within {SETTLE_WAIT:?}: {peers:?}"
            );
        }
    }

    fn peers_json(&self, host: usize) -> Vec<serde_json::Value> {
        let out = self.run(host, &["peers", "--json", "--find-timeout", "1"]);
        out.expect_clean(0, "zc peers --json");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // deleting a namespace deletes its end of each veth pair, and so the
        // pair; the bridge goes last
        for ns in &self.namespaces {
            if let Err(e) = ip(&["netns", "del", ns]) {
                say(&format!("cleanup: {e}"));
            }
        }
        if let Err(e) = ip(&["link", "del", &self.bridge]) {
            say(&format!("cleanup: {e}"));
        }
    }
}

/// Runs `f` on a thread that lives in namespace `ns`: sockets it opens, and
/// threads it starts (an mdns-sd daemon's), are that namespace's.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns(2) on a descriptor we own, for this thread only;
            // no memory is involved.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("the thread in the namespace panicked")
    })
}

/// An mDNS responder of the test's own, in a namespace: announces whatever
/// a stranger on the LAN could. Withdrawn on drop.
struct Responder(ServiceDaemon);

impl Responder {
    fn start(lan: &Lan, host: usize) -> Responder {
        Responder(in_netns(lan.ns(host), || {
            ServiceDaemon::new().expect("starting the test's mDNS responder")
        }))
    }

    /// Announces `_zc._tcp` instance `name` on `host_name`, at `ip:port`,
    /// without probing first: a stranger need not give way to a name that
    /// is taken (mdns-sd's own probe would rename it "NAME (2)").
    fn announce(&self, name: &str, host_name: &str, ip: &str, port: u16, txt: &[(&str, &str)]) {
        let mut info = ServiceInfo::new("_zc._tcp.local.", name, host_name, ip, port, txt)
            .expect("a test announcement");
        info.set_requires_probe(false);
        self.0
            .register(info)
            .expect("registering a test announcement");
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Ok(done) = self.0.shutdown() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Dirs { _tmp: tmp, root }
    }

    /// An empty directory `name` (an output).
    fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.join(name);
        std::fs::create_dir(&d).unwrap();
        d
    }

    /// A file of test data, `size` bytes.
    fn file(&self, name: &str, size: u64, seed: u64) -> PathBuf {
        let f = self.root.join(name);
        random_file(&f, size, seed);
        f
    }
}

fn names_of(peers: &[serde_json::Value]) -> Vec<String> {
    let names = peers.iter().filter_map(|p| p["name"].as_str());
    names.map(String::from).collect()
}

fn assert_empty(dir: &Path, what: &str) {
    assert!(list_dir(dir).is_empty(), "{what}: {:?}", list_dir(dir));
}

/// `zc peers --watch --json` lines, as they come.
fn watch_lines(cmd: &mut Command) -> (Guard, mpsc::Receiver<serde_json::Value>) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Guard(cmd.spawn().expect("spawning zc peers --watch"));
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits (bounded) for a watched event `event` about `name`.
fn wait_event(rx: &mpsc::Receiver<serde_json::Value>, event: &str, name: &str) {
    let deadline = Instant::now() + SETTLE_WAIT;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) if v["event"] == event && v["name"] == name => return,
            Ok(v) => seen.push(v),
            Err(_) => break,
        }
    }
    panic!("no {event} event for {name} within {SETTLE_WAIT:?}; saw {seen:?}");
}

#[test]
fn peers_lists_a_receiver_and_forgets_it_when_it_exits() {
    let Some(lan) = Lan::new(2, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out) = (dirs.file("a.bin", 4096, 1), dirs.dir("out"));
    let recv = lan.listener(1, &["recv", "-l", "0", "-o", s(&out), "--announce", "one"]);
    let (mut watcher, events) = watch_lines(&mut lan.zc(2, &["peers", "--watch", "--json"]));

    let peers = lan.wait_listed(2, &["one"]);
    // an IPv4 and an IPv6 address, each from its own answer: one listing
    // may close before the second family's answer came, so list again
    // until both are in one line
    let port = recv.addr.port();
    let (v4, v6) = (
        format!("198.18.0.1:{port}"),
        format!("[fd5a:7c00::1]:{port}"),
    );
    let deadline = Instant::now() + SETTLE_WAIT;
    let line = loop {
        let text = lan.run(2, &["peers", "--find-timeout", "1"]);
        let text = String::from_utf8_lossy(&text.stdout).into_owned();
        say(&format!("zc peers printed: {text}"));
        // a listing of one second on a loaded machine may close before
        // any answer came: that is "not yet", as a line with one family is
        let line = line_with(&text, "one  ");
        let both = line.is_some_and(|l| l.contains(&v4) && l.contains(&v6));
        if both || Instant::now() > deadline {
            break line
                .unwrap_or_else(|| panic!("no line for one: {text}"))
                .to_string();
        }
    };
    assert!(line.contains(&v4), "{line}");
    assert!(line.contains(&v6), "{line}");
    assert!(line.ends_with("receiver  plain  protocol 1,2"), "{line}");
    let one = &peers[0];
    assert_eq!(
        (&one["role"], &one["mode"], &one["proto"]),
        (&"receiver".into(), &"plain".into(), &"1,2".into()),
        "{one}"
    );
    wait_event(&events, "peer", "one");

    // the receiver takes one file and exits: its goodbye (TTL 0) withdraws
    // the name long before the records' TTL would
    lan.run(2, &["send", s(&src), "@one"])
        .expect_clean(0, "zc send @one");
    recv.finish(TIMEOUT).expect_clean(0, "zc recv");
    wait_event(&events, "gone", "one");
    assert!(!names_of(&lan.peers_json(2)).contains(&"one".into()));
    sigint(&watcher);
    let status = wait_timeout(&mut watcher, TIMEOUT, "zc peers --watch");
    assert_eq!(code_of(status), 130, "zc peers --watch after Ctrl-C");
}

#[test]
fn send_with_no_address_reaches_the_one_receiver() {
    let Some(lan) = Lan::new(2, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out) = (dirs.file("b.bin", 300_000, 2), dirs.dir("out"));
    let recv = lan.listener(1, &["recv", "-l", "0", "-o", s(&out), "--announce", "solo"]);
    assert!(recv.head.contains("listening on"), "{}", recv.head);
    lan.wait_listed(2, &["solo"]);

    let sent = lan.run(2, &["send", s(&src), "--find-timeout", "3"]);
    say(&format!("zc send (no address) said: {}", sent.stderr));
    sent.expect_clean(0, "zc send with no address");
    let found = line_with(&sent.stderr, "zc: found solo on the LAN at ");
    assert!(found.is_some(), "{}", sent.stderr);
    recv.finish(TIMEOUT).expect_clean(0, "zc recv");
    assert_same_file(&src, &out.join("b.bin"));
}

#[test]
fn two_receivers_need_a_name_and_at_name_picks_one() {
    let Some(lan) = Lan::new(3, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out_a, out_b) = (dirs.file("c.bin", 70_000, 3), dirs.dir("a"), dirs.dir("b"));
    let a = lan.listener(
        1,
        &["recv", "-l", "0", "-o", s(&out_a), "--announce", "alpha"],
    );
    let b = lan.listener(
        2,
        &["recv", "-l", "0", "-o", s(&out_b), "--announce", "beta"],
    );
    lan.wait_listed(3, &["alpha", "beta"]);

    let several = lan.run(3, &["send", s(&src), "--find-timeout", "3"]);
    say(&format!(
        "zc send with two receivers said: {}",
        several.stderr
    ));
    several
        .expect_clean(2, "zc send with two receivers and no address")
        .says(&["name one: zc send SOURCE... @NAME"]);
    // each with an address of its own (which of a receiver's addresses had
    // answered when the answer was certain varies: its port tells)
    for (name, r) in [("  alpha  ", &a), ("  beta  ", &b)] {
        let line = line_with(&several.stderr, name).unwrap_or_else(|| panic!("{name}"));
        assert!(line.contains(&format!(":{}", r.addr.port())), "{line}");
    }

    let named = lan.run(3, &["send", s(&src), "@beta"]);
    say(&format!("zc send @beta said: {}", named.stderr));
    named
        .expect_clean(0, "zc send @beta")
        .says(&["found beta on the LAN"]);
    b.finish(TIMEOUT).expect_clean(0, "beta");
    assert_same_file(&src, &out_b.join("c.bin"));
    assert_empty(&out_a, "alpha took nothing");
}

#[test]
fn a_code_with_no_address_finds_its_nameplate_only() {
    let Some(lan) = Lan::new(3, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out_a, out_b) = (dirs.file("d.bin", 50_000, 4), dirs.dir("a"), dirs.dir("b"));
    let real = lan.listener(
        1,
        &[
            "recv",
            "-l",
            "0",
            "-o",
            s(&out_a),
            "--announce",
            "real",
            "--code",
        ],
    );
    let code = code_in(&real.head);
    say(&format!("zc recv --code said: {}", real.head));
    let run_line = format!("zc send FILE --code {code}\n");
    assert!(
        real.head.contains(&run_line),
        "no address when announced: {}",
        real.head
    );
    // another receiver, another nameplate: a sender with the first code
    // must not take it for its own (nor call the two ambiguous)
    let (plate, words) = code.split_once('-').unwrap();
    let other = format!("{}-{words}", plate.parse::<u32>().unwrap() % 99 + 1);
    let decoy = [
        "recv",
        "-l",
        "0",
        "-o",
        s(&out_b),
        "--announce",
        "decoy",
        "--code",
        &other,
    ];
    let _decoy = lan.listener(2, &decoy);
    lan.wait_listed(3, &["real", "decoy"]);

    let sent = lan.run(
        3,
        &["send", s(&src), "--code", &code, "--find-timeout", "10"],
    );
    say(&format!(
        "zc send --code (no address) said: {}",
        sent.stderr
    ));
    sent.expect_clean(0, "zc send --code with no address")
        .says(&["found real on the LAN"]);
    real.finish(TIMEOUT)
        .expect_clean(0, "the receiver of the code");
    assert_same_file(&src, &out_a.join("d.bin"));
    assert_empty(&out_b, "the other nameplate's receiver");
}

/// The impostor is a real `zc recv --code` with the same nameplate and
/// other words, not announced by itself: the test's responder announces it
/// as "bank". It speaks zc's protocol and would take the file under its own
/// code, so the refusal can only come from the code's handshake (SPAKE2),
/// which fails before any name or byte of the file is sent.
#[test]
fn a_spoofed_announcement_is_refused_by_the_code() {
    let Some(lan) = Lan::new(3, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out) = (dirs.file("secret.bin", 20_000, 5), dirs.dir("impostor"));
    let impostor = lan.listener(
        2,
        &["recv", "-l", "0", "-o", s(&out), "--no-announce", "--code"],
    );
    let its_code = code_in(&impostor.head);
    let (plate, words) = its_code.split_once('-').unwrap();
    let mut words: Vec<&str> = words.split('-').collect();
    words.reverse();
    let code = format!("{plate}-{}", words.join("-"));
    assert_ne!(code, its_code);
    let plate_txt = plate.to_string();

    let responder = Responder::start(&lan, 2);
    let txt = [
        ("proto", "1,2"),
        ("role", "recv"),
        ("mode", "code"),
        ("plate", &plate_txt),
    ];
    responder.announce(
        "bank",
        "bank.local.",
        "198.18.0.2",
        impostor.addr.port(),
        &txt,
    );
    lan.wait_listed(3, &["bank"]);

    let sent = lan.run(
        3,
        &["send", s(&src), "--code", &code, "--find-timeout", "10"],
    );
    say(&format!(
        "zc send --code to the spoofed bank said: {}",
        sent.stderr
    ));
    sent.expect_clean(4, "zc send --code to an impostor")
        .says(&["found bank on the LAN"]);
    assert!(!sent.stderr.contains("sent "), "{}", sent.stderr);
    let impostor = impostor.finish(TIMEOUT);
    say(&format!("the impostor said: {}", impostor.stderr));
    assert!(
        !impostor.stderr.contains("secret.bin"),
        "{}",
        impostor.stderr
    );
    assert_empty(&out, "the impostor");
}

#[test]
fn ipv6_only() {
    let Some(lan) = Lan::new(2, Family::V6Only) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out) = (dirs.file("e.bin", 100_000, 6), dirs.dir("out"));
    let recv = lan.listener(
        1,
        &["recv", "-6", "-l", "0", "-o", s(&out), "--announce", "six"],
    );
    let peers = lan.wait_listed(2, &["six"]);
    say(&format!("zc peers --json (IPv6 only): {peers:?}"));

    let sent = lan.run(2, &["send", s(&src), "@six"]);
    say(&format!("zc send @six (IPv6 only) said: {}", sent.stderr));
    sent.expect_clean(0, "zc send @six over IPv6 only");
    let found = line_with(&sent.stderr, "found six on the LAN at ").unwrap();
    assert!(found.contains("[fd5a:7c00::1]:"), "{found}");
    assert!(!found.contains("198.18."), "{found}");
    recv.finish(TIMEOUT).expect_clean(0, "zc recv -6");
    assert_same_file(&src, &out.join("e.bin"));
}

/// Drops every mDNS packet in and out of `ns` (nftables, else iptables);
/// `false` when neither tool is here.
fn drop_mdns(ns: &str) -> bool {
    let nft = "table inet zc_no_mdns {
        chain input { type filter hook input priority 0; udp dport 5353 drop; udp sport 5353 drop; }
        chain output { type filter hook output priority 0; udp dport 5353 drop; udp sport 5353 drop; }
    }";
    let rules = std::env::temp_dir().join(format!("{ns}.nft"));
    std::fs::write(&rules, nft).unwrap();
    let by_nft = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", s(&rules)])
        .status();
    let _ = std::fs::remove_file(&rules);
    if by_nft.is_ok_and(|s| s.success()) {
        return true;
    }
    let mut all = true;
    for (tool, chain, dir) in [
        ("iptables", "INPUT", "--dport"),
        ("iptables", "OUTPUT", "--dport"),
        ("ip6tables", "INPUT", "--dport"),
        ("ip6tables", "OUTPUT", "--dport"),
    ] {
        let ok = Command::new("ip")
            .args([
                "netns", "exec", ns, tool, "-A", chain, "-p", "udp", dir, "5353", "-j", "DROP",
            ])
            .status();
        all &= ok.is_ok_and(|s| s.success());
    }
    all
}

#[test]
fn where_multicast_is_dropped_send_says_to_give_an_address() {
    let Some(lan) = Lan::new(3, Family::Both) else {
        return;
    };
    if !drop_mdns(lan.ns(2)) {
        unavailable::<()>("neither nft nor iptables drops packets here (Debian: nftables)");
        return;
    }
    let dirs = Dirs::new();
    let (src, out) = (dirs.file("f.bin", 1000, 7), dirs.dir("out"));
    let _recv = lan.listener(
        1,
        &["recv", "-l", "0", "-o", s(&out), "--announce", "there"],
    );
    // it is announced: a host whose multicast passes sees it
    lan.wait_listed(3, &["there"]);

    let sent = lan.run(2, &["send", s(&src), "--find-timeout", "1"]);
    say(&format!(
        "zc send where multicast is dropped said: {}",
        sent.stderr
    ));
    sent.expect_clean(1, "zc send with mDNS dropped");
    let line = line_with(&sent.stderr, "answered on the LAN within 1 s")
        .unwrap_or_else(|| panic!("{}", sent.stderr));
    assert!(line.contains("HOST:PORT"), "{line}");
    assert_empty(&out, "the receiver");
}

/// What a stranger on the LAN may announce: a name of control characters
/// and terminal escapes, a name as long as a DNS label can be (63 bytes,
/// of 2-byte characters), hostile TXT values, and one name from two hosts.
/// A 1 KiB name cannot cross the wire in one label (63 bytes at most) and
/// mdns-sd's parser drops names over 255 bytes, so it never reaches zc:
/// the test's responder is refused it when sending, and the peers that
/// could be sent are still listed.
#[test]
fn hostile_names_are_escaped_bounded_and_never_picked_silently() {
    let Some(lan) = Lan::new(3, Family::Both) else {
        return;
    };
    let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2J\nzc: FORGED \u{9b}31m\u{202e}x";
    let long = format!("{}z", "é".repeat(31));
    assert_eq!(long.len(), 63);
    let kib = "K".repeat(1024);
    let evil_txt = [
        ("proto", "1,2\u{1b}[2J\u{7}"),
        ("role", "recv"),
        ("mode", "plain"),
    ];
    let plain = [("proto", "1,2"), ("role", "recv"), ("mode", "plain")];
    let a = Responder::start(&lan, 1);
    let b = Responder::start(&lan, 2);
    a.announce(hostile, "evil-a.local.", "198.18.0.1", 9, &evil_txt);
    b.announce(hostile, "evil-b.local.", "198.18.0.2", 9, &plain);
    a.announce(&long, "long.local.", "198.18.0.1", 9, &plain);
    a.announce(&kib, "kib.local.", "198.18.0.1", 9, &plain);
    // a TXT that is no zc's: never listed
    a.announce(
        "notzc",
        "nz.local.",
        "198.18.0.1",
        9,
        &[("role", "printer")],
    );

    let peers = lan.wait_listed(3, &[hostile, &long]);
    // both claimants of the hostile name heard in one listing (a responder
    // that answered the last query answers the next up to a second later)
    let deadline = Instant::now() + SETTLE_WAIT;
    let (text, stdout) = loop {
        let text = lan.run(3, &["peers", "--find-timeout", "2"]);
        text.expect_clean(0, "zc peers");
        let stdout = String::from_utf8_lossy(&text.stdout).into_owned();
        if stdout.contains("(claimed by several hosts)") || Instant::now() > deadline {
            break (text, stdout);
        }
    };
    say(&format!("zc peers with hostile names printed:\n{stdout}"));
    assert_terminal_safe(&stdout, "zc peers");
    assert_terminal_safe(&text.stderr, "zc peers");
    for p in &peers {
        let name = p["name"].as_str().unwrap();
        assert!(name.len() <= 63, "{name:?}");
        assert_ne!(name, "notzc");
    }
    assert!(
        stdout.contains("\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\nzc: FORGED"),
        "{stdout}"
    );
    assert!(stdout.contains("(claimed by several hosts)"), "{stdout}");
    assert!(
        stdout.contains(&format!("{long}  198.18.0.1:9")),
        "{stdout}"
    );
    assert!(!stdout.contains("KKKK"), "{stdout}");

    // the name two hosts claim: listed, refused, never one of the two
    let dirs = Dirs::new();
    let src = dirs.file("g.bin", 1000, 8);
    let at = format!("@{hostile}");
    let sent = lan.run(3, &["send", s(&src), &at, "--find-timeout", "10"]);
    say(&format!(
        "zc send @<hostile, claimed twice> said: {}",
        sent.stderr
    ));
    sent.expect_clean(2, "zc send @ a name two hosts claim")
        .says(&["198.18.0.1:9", "198.18.0.2:9"]);
    assert_terminal_safe(&sent.stderr, "zc send @hostile");
    assert!(!sent.stderr.contains("found "), "{}", sent.stderr);
    // the 1 KiB name is no peer's
    let at_kib = format!("@{kib}");
    let none = lan.run(3, &["send", s(&src), &at_kib, "--find-timeout", "1"]);
    none.expect_clean(1, "zc send @<1 KiB>");
    assert!(none.stderr.len() < 4096, "{}", none.stderr.len());
}

#[test]
fn a_keep_open_receiver_and_a_serving_sender_are_found() {
    let Some(lan) = Lan::new(2, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out) = (dirs.file("h.bin", 200_000, 9), dirs.dir("out"));
    let served = dirs.file("served.bin", 150_000, 10);
    let fetched = dirs.dir("fetched");
    let _keep = lan.listener(
        1,
        &["recv", "-l", "0", "-k", "-o", s(&out), "--announce", "keep"],
    );
    let _serve = lan.listener(
        1,
        &[
            "send",
            "--listen",
            "0",
            "-k",
            s(&served),
            "--announce",
            "srv",
        ],
    );
    let peers = lan.wait_listed(2, &["keep", "srv"]);
    say(&format!("zc peers --json: {peers:?}"));
    let role = |name: &str| {
        let p = peers.iter().find(|p| p["name"] == name).unwrap();
        p["role"].as_str().unwrap().to_string()
    };
    assert_eq!(
        (role("keep"), role("srv")),
        ("receiver".into(), "sender".into())
    );

    // twice to the -k receiver, by name and as the one receiver there is
    // (the serving sender is no receiver)
    let by_name = lan.run(2, &["send", s(&src), "@keep"]);
    by_name.expect_clean(0, "zc send @keep");
    let only = lan.run(2, &["send", s(&served), "--find-timeout", "3"]);
    say(&format!(
        "zc send (no address, -k receiver and a serving sender) said: {}",
        only.stderr
    ));
    only.expect_clean(0, "zc send to the one receiver")
        .says(&["found keep on the LAN"]);
    assert_same_file(&src, &out.join("h.bin"));
    assert_same_file(&served, &out.join("served.bin"));

    let got = lan.run(2, &["recv", "@srv", "-o", s(&fetched)]);
    say(&format!("zc recv @srv said: {}", got.stderr));
    got.expect_clean(0, "zc recv @srv")
        .says(&["found srv on the LAN"]);
    assert_same_file(&served, &fetched.join("served.bin"));
}

/// Two real receivers announce one name: each says it announced that name,
/// so `@NAME` must not quietly reach one of them (mdns-sd's probe, left on,
/// renamed the second "NAME (2)" while it printed NAME).
#[test]
fn one_name_from_two_receivers_is_refused_with_both() {
    let Some(lan) = Lan::new(3, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (src, out_a, out_b) = (dirs.file("i.bin", 1000, 11), dirs.dir("a"), dirs.dir("b"));
    let a = lan.listener(
        1,
        &["recv", "-l", "0", "-o", s(&out_a), "--announce", "same"],
    );
    let b = lan.listener(
        2,
        &["recv", "-l", "0", "-o", s(&out_b), "--announce", "same"],
    );
    let peers = lan.wait_listed(3, &["same"]);
    // both hosts answered for it, whichever was heard first
    let deadline = Instant::now() + SETTLE_WAIT;
    let mut listed = String::new();
    while !listed.contains("(claimed by several hosts)") && Instant::now() < deadline {
        let out = lan.run(3, &["peers", "--find-timeout", "2"]);
        listed = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    say(&format!(
        "zc peers with one name from two receivers: {listed}"
    ));
    assert!(!listed.contains("same (2)"), "{listed} {peers:?}");
    assert!(listed.contains("(claimed by several hosts)"), "{listed}");

    let sent = lan.run(3, &["send", s(&src), "@same", "--find-timeout", "10"]);
    say(&format!("zc send @same (two hosts) said: {}", sent.stderr));
    sent.expect_clean(2, "zc send @ a name two receivers announce")
        .says(&["claimed by more than one machine"]);
    // each by its port (which of its addresses mdns-sd had resolved when
    // the name was answered for twice varies)
    for r in [&a, &b] {
        let port = format!(":{}", r.addr.port());
        sent.says(&[&port]);
    }
    assert_empty(&out_a, "the first receiver");
    assert_empty(&out_b, "the second receiver");
}

/// A serving sender with a code announces itself, but the command it
/// prints for the other side keeps its address: a `zc recv --code` with
/// no address would listen too, and the two would wait for each other.
/// That printed command, run as it is, pulls the file.
#[test]
fn a_serving_senders_printed_command_works_as_printed() {
    let Some(lan) = Lan::new(2, Family::Both) else {
        return;
    };
    let dirs = Dirs::new();
    let (served, fetched) = (dirs.file("c.bin", 70_000, 12), dirs.dir("fetched"));
    let tx = lan.listener(
        1,
        &[
            "send",
            "--listen",
            "0",
            "--code",
            s(&served),
            "--announce",
            "tx",
        ],
    );
    say(&format!("zc send --listen --code said: {}", tx.head));
    let line = tx
        .head
        .lines()
        .find_map(|l| l.strip_prefix("zc: on the other side run: "))
        .expect("the command for the other side");
    let args: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(args[..2], ["zc", "recv"], "{line}");
    assert!(args[2].starts_with("198.18.0.1:"), "an address: {line}");
    let mut pull = args[1..].to_vec();
    pull.extend(["-o", s(&fetched)]);
    lan.run(2, &pull).expect_clean(0, "the printed command");
    tx.finish(TIMEOUT).expect_clean(0, "the serving sender");
    assert_same_file(&served, &fetched.join("c.bin"));
}

/// What cannot work is refused before any look-up: no source before
/// `@NAME`, and `--raw`, whose listeners are never announced.
#[test]
fn a_look_up_that_cannot_work_is_a_usage_error() {
    let dirs = Dirs::new();
    let src = dirs.file("u.bin", 10, 13);
    for (args, says) in [
        (vec!["@laptop"], "give SOURCE... before @NAME"),
        (vec!["--raw", s(&src), "@laptop"], "--raw needs HOST:PORT"),
        (vec!["--raw", s(&src)], "--raw needs HOST:PORT"),
        (
            vec![s(&src), "laptop"],
            "neither a file to send nor HOST:PORT",
        ),
    ] {
        let mut cmd = zc();
        cmd.arg("send").args(&args);
        let out = run(cmd, None, TIMEOUT);
        out.expect_clean(2, &format!("zc send {args:?}"))
            .says(&[says]);
    }
}
