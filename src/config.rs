//! Plain settings built from the command line: the core never sees clap.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::cli::{CommonArgs, ProgressMode, RecvArgs, SendArgs};
use crate::exit;
use crate::lan::{Role, Want};
use crate::net::{self, Family};
use crate::progress::Style;
use crate::secure::Secret;

mod lan;
pub use lan::listing;
use lan::{announced_name, check_found, destination};
mod secrets;
use secrets::{listening_code, secrets};

/// Settings shared by both roles.
#[derive(Debug, Clone)]
pub struct Common {
    pub raw: bool,
    pub verify: bool,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub family: Family,
    pub style: Style,
    /// A key with `--no-encrypt`: authenticated plaintext (HMAC handshake
    /// and keyed digests), the one mode that keeps zero-copy with a key.
    pub key: Option<crate::auth::Key>,
    /// A code or a key that encrypts the session.
    pub secret: Option<Secret>,
    /// A code this side made (`--code` alone, listening): said with the
    /// address it listens on, with the command for the other side.
    pub fresh_code: Option<String>,
    /// `--limit-rate`, in bytes a second: a sender paces its writes, a
    /// receiver its reads.
    pub limit_rate: Option<u64>,
    /// The name a listener announces on the LAN (`None`: `--no-announce`).
    pub announce: Option<String>,
    /// How long to look for a peer on the LAN.
    pub find_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

/// Who connects to whom.
#[derive(Debug, Clone)]
pub enum Peer {
    /// Connect to this HOST:PORT.
    Connect(String),
    /// Listen here and wait (reverse mode).
    Listen(SocketAddr),
    /// Connect to a peer announced on the LAN (`@NAME`, or the one there is).
    Find(Want),
}

/// What a send moves: one source as a single transfer, or a tree session
/// (a directory, or several sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Single(Source),
    /// Each source with the top name it lands under.
    Tree(Vec<(PathBuf, Vec<u8>)>),
}

#[derive(Debug, Clone)]
pub struct SendConfig {
    pub payload: Payload,
    /// `-L`: follow links inside a tree.
    pub dereference: bool,
    pub peer: Peer,
    /// `--offset`: where to start, overriding what the receiver holds.
    pub offset: Option<u64>,
    pub count: Option<u64>,
    pub name: Option<String>,
    pub sendfile: bool,
    pub resume: bool,
    pub retry: u32,
    /// `-k` (with `--listen`): serve every receiver that connects.
    pub keep_open: bool,
    /// `--max-conns`: sessions at once under `-k`.
    pub max_conns: usize,
    /// `--http`: serve the sources to HTTP clients instead.
    pub http: Option<Http>,
    pub common: Common,
}

/// `zc send --http`: how the sources are served to HTTP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http {
    /// `--open`: no token in the URLs.
    pub open: bool,
}

/// Where received bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An existing directory; the sender's name is used inside it.
    Dir(PathBuf),
    /// This exact file, written as `FILE.zcpart` and renamed when complete.
    File(PathBuf),
    /// An existing device, FIFO or socket (`/dev/null`, a named pipe):
    /// written in order, like stdout, never replaced or renamed over.
    Stream(PathBuf),
    Stdout,
}

#[derive(Debug, Clone)]
pub struct RecvConfig {
    /// Listen here, or (reverse mode) connect to a listening sender.
    pub peer: Peer,
    pub output: Output,
    pub force: bool,
    /// `--preserve-modes`: the sender's permission bits, not less the umask.
    pub preserve_modes: bool,
    pub keep_open: bool,
    /// `--max-conns`: transfers at once under `-k`.
    pub max_conns: usize,
    pub max_size: Option<u64>,
    pub max_files: u64,
    /// `--http`: take uploads from HTTP clients instead.
    pub http: Option<Http>,
    /// `--max-memory`: what the manifests of all sessions at once may hold
    /// in memory (shared by the clones of this config).
    pub max_memory: crate::budget::Budget,
    /// `--raw --offset`: write from this byte without truncating.
    pub raw_offset: Option<u64>,
    pub common: Common,
}

/// Why `-k` takes no code: a code is for one transfer (and its
/// reconnections); many transfers share a key.
const ONE_CODE_ONE_TRANSFER: &str =
    "-k serves many transfers and a code is for one: use a key (ZC_KEY on both sides)";

/// Transfers at once under `-k` when `--max-conns` is not given: room for
/// a lab of receivers and a burst of idle junk (each held at most
/// `HELLO_WAIT` before it speaks), far below the descriptors a process may hold.
pub const DEFAULT_MAX_CONNS: usize = 256;

/// `--max-conns`: only with `-k`, and at least one.
fn max_conns(given: Option<u64>, keep_open: bool) -> Result<usize> {
    match given {
        None => Ok(DEFAULT_MAX_CONNS),
        Some(_) if !keep_open => Err(exit::usage(
            "--max-conns limits -k (keep serving); give -k, or drop --max-conns",
        )),
        Some(0) => Err(exit::usage("--max-conns takes 1 or more")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value < 1e9) {
        return Err(exit::usage(format!(
            "{flag} takes a positive number of seconds"
        )));
    }
    Ok(Duration::from_secs_f64(value))
}

impl Common {
    /// `listening`: this side waits for the other to connect (a code can
    /// be made only here).
    pub fn from_args(args: &CommonArgs, listening: bool) -> Result<Self> {
        Self::with_code(args, listening, args.code.as_deref())
    }

    /// As [`Common::from_args`], with `code` in place of `--code`'s value.
    fn with_code(args: &CommonArgs, listening: bool, code: Option<&str>) -> Result<Self> {
        let family = match (args.ipv4, args.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        };
        let style = if args.json {
            Style::Json
        } else if args.quiet {
            Style::Quiet
        } else {
            match args.progress {
                ProgressMode::Auto if std::io::stderr().is_terminal() => Style::Bar,
                ProgressMode::Auto | ProgressMode::None => Style::Summary,
                ProgressMode::Bar => Style::Bar,
                ProgressMode::Plain => Style::Plain,
            }
        };
        let (key, secret, fresh_code) = secrets(args, listening, code)?;
        let announce = match (&args.announce, args.no_announce) {
            // a raw listener speaks to nc, not to a zc that looks for it
            (_, true) => None,
            (_, false) if args.raw => None,
            (Some(name), _) => Some(announced_name(name)?),
            (None, false) => Some(crate::lan::host_name()),
        };
        Ok(Common {
            announce,
            find_timeout: seconds(args.find_timeout, "--find-timeout")?,
            key,
            secret,
            fresh_code,
            raw: args.raw,
            verify: !args.no_verify,
            connect_timeout: seconds(args.connect_timeout, "--connect-timeout")?,
            idle_timeout: seconds(args.timeout, "--timeout")?,
            family,
            style,
            limit_rate: args.limit_rate,
        })
    }
}

impl SendConfig {
    pub fn from_args(args: &SendArgs) -> Result<Self> {
        if args.http {
            return Self::http(args);
        }
        let mut paths = args.paths.clone();
        let code = listening_code(args, &mut paths);
        let common = Common::with_code(&args.common, args.listen.is_some(), code)?;
        if args.keep_open && args.listen.is_none() {
            // said before the positionals are read as SOURCE... HOST:PORT
            return Err(exit::usage(
                "-k serves the receivers that connect: it needs --listen ADDR \
                 ('zc send --listen 9000 -k FILE')",
            ));
        }
        let peer = match &args.listen {
            Some(_) if paths.is_empty() => {
                return Err(exit::usage(
                    "give the SOURCE... to send after --listen ADDR",
                ))
            }
            Some(listen) => Peer::Listen(net::parse_listen(listen, common.family)?),
            None => destination(&mut paths, &common, Role::Receiver)?,
        };
        check_found(&peer, &common)?;
        if paths.is_empty() {
            return Err(exit::usage(
                "give SOURCE... before @NAME (a file whose name starts with @ is ./@NAME)",
            ));
        }
        if let Some(name) = &args.name {
            check_name_flag(name)?;
        }
        let payload = payload_of(paths, args)?;
        let stdin = payload == Payload::Single(Source::Stdin);
        if stdin && args.offset.unwrap_or(0) != 0 {
            return Err(exit::usage("--offset needs a file, not stdin"));
        }
        if common.raw && args.name.is_some() {
            return Err(exit::usage(
                "--name has no meaning with --raw (no header is sent)",
            ));
        }
        if common.raw && args.retry > 0 {
            return Err(exit::usage(
                "--retry needs framed mode, not --raw: a raw receiver cannot say \
                 what it holds, so a new connection could not resume",
            ));
        }
        if let Payload::Tree(_) = payload {
            check_tree_flags(args, &common)?;
        }
        if args.keep_open {
            check_keep_open(args, stdin, &common)?;
        }
        Ok(SendConfig {
            payload,
            dereference: args.dereference,
            peer,
            offset: args.offset,
            count: args.count,
            name: args.name.clone(),
            sendfile: !args.no_sendfile,
            resume: !args.no_resume,
            retry: args.retry,
            keep_open: args.keep_open,
            max_conns: max_conns(args.max_conns, args.keep_open)?,
            http: None,
            common,
        })
    }

    /// `--http`: every positional is a source, served until Ctrl-C on
    /// `--listen` (default `[::]:9000`), never announced to zc peers (it
    /// does not speak their protocol).
    fn http(args: &SendArgs) -> Result<Self> {
        no_secret_over_http(&args.common, "serves", "send")?;
        let mut common = Common::with_code(&args.common, true, None)?;
        common.announce = None;
        let addr = match &args.listen {
            Some(listen) => net::parse_listen(listen, common.family)?,
            None => net::default_listen(common.family),
        };
        if args.paths.iter().any(|p| p.as_os_str() == "-") {
            return Err(exit::usage(
                "--http serves files and directories, not stdin (a client may ask for any byte again)",
            ));
        }
        if let Some(name) = &args.name {
            check_name_flag(name)?;
        }
        let payload = payload_of(args.paths.clone(), args)?;
        Ok(SendConfig {
            payload,
            dereference: args.dereference,
            peer: Peer::Listen(addr),
            offset: None,
            count: None,
            name: args.name.clone(),
            sendfile: !args.no_sendfile,
            resume: true,
            retry: 0,
            keep_open: true,
            max_conns: max_conns(args.max_conns, true)?,
            http: Some(Http { open: args.open }),
            common,
        })
    }
}

/// `--http` is plain HTTP: a key or a code given for it would protect
/// nothing, so it is refused rather than ignored. Checked before the code
/// is parsed (on a listening sender `--code` may have taken a source).
fn no_secret_over_http(args: &CommonArgs, serves: &str, zc_does: &str) -> Result<()> {
    let given = match (&args.key, &args.code) {
        (Some(_), _) => "a key (--key, or ZC_KEY in the environment)",
        (None, Some(_)) => "--code",
        (None, None) => return Ok(()),
    };
    Err(exit::usage(format!(
        "--http {serves} plain HTTP, which {given} cannot protect: drop it (unset \
         ZC_KEY), or {zc_does} with zc"
    )))
}

/// `send -k` (with `--listen`) serves whoever connects: only what can be
/// read again for each receiver.
fn check_keep_open(args: &SendArgs, stdin: bool, common: &Common) -> Result<()> {
    let why = if stdin {
        "-k sends the source to every receiver, and stdin can be read only once"
    } else if args.common.code.is_some() {
        ONE_CODE_ONE_TRANSFER
    } else if common.raw {
        "-k needs framed transfers, not --raw"
    } else if args.retry > 0 {
        "--retry has no meaning with -k: a receiver that reconnects is served again (and resumes)"
    } else {
        return Ok(());
    };
    Err(exit::usage(why))
}

/// A `--name` must be one plain file name: what the receiver would refuse
/// is refused here, before connecting, and nothing is silently rewritten.
fn check_name_flag(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= crate::protocol::MAX_NAME
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if plain {
        Ok(())
    } else {
        Err(exit::usage(format!(
            "--name '{}' is not one plain file name (no '/', '\\', '..', control characters; at most {} bytes)",
            name.escape_debug(),
            crate::protocol::MAX_NAME
        )))
    }
}

/// One file or stdin is a single transfer; a directory or several sources
/// make a tree session.
fn payload_of(paths: Vec<PathBuf>, args: &SendArgs) -> Result<Payload> {
    let is_stdin = |p: &PathBuf| p.as_os_str() == "-";
    if paths.len() == 1 {
        let path = &paths[0];
        if is_stdin(path) {
            return Ok(Payload::Single(Source::Stdin));
        }
        // a missing source is reported where it is opened, with its error
        if !path.is_dir() {
            return Ok(Payload::Single(Source::File(path.clone())));
        }
    }
    if paths.iter().any(is_stdin) {
        return Err(exit::usage("'-' (stdin) must be the only source"));
    }
    if args.name.is_some() && paths.len() > 1 {
        return Err(exit::usage("--name renames a single source, not several"));
    }
    let mut tops: Vec<(PathBuf, Vec<u8>)> = Vec::with_capacity(paths.len());
    for path in paths {
        let top = match &args.name {
            Some(name) => name.as_bytes().to_vec(),
            None => crate::output::top_name(&path).ok_or_else(|| {
                exit::usage(format!(
                    "{}: no name to send it under (name what is inside it instead)",
                    path.display()
                ))
            })?,
        };
        if tops.iter().any(|(_, t)| *t == top) {
            return Err(exit::usage(format!(
                "two sources would land as '{}': send them in separate sessions",
                String::from_utf8_lossy(&top)
            )));
        }
        tops.push((path, top));
    }
    Ok(Payload::Tree(tops))
}

fn check_tree_flags(args: &SendArgs, common: &Common) -> Result<()> {
    if common.raw {
        return Err(exit::usage(
            "--raw sends one file or stdin; for a directory or several files use \
             'tar c SOURCE... | zc send --raw - HOST:PORT' (or drop --raw)",
        ));
    }
    if args.offset.is_some() || args.count.is_some() {
        return Err(exit::usage(
            "--offset and --count take a single file, not a directory or several sources",
        ));
    }
    Ok(())
}

fn output_of(path: Option<&Path>, raw: bool) -> Result<Output> {
    let Some(path) = path else {
        return Ok(if raw {
            Output::Stdout
        } else {
            Output::Dir(PathBuf::from("."))
        });
    };
    if path.as_os_str() == "-" {
        return Ok(Output::Stdout);
    }
    let meta = std::fs::metadata(path).ok();
    if meta.as_ref().is_some_and(|m| !m.is_file() && !m.is_dir()) {
        return Ok(Output::Stream(path.to_path_buf()));
    }
    if path.is_dir() {
        if raw {
            return Err(exit::usage(format!(
                "{}: with --raw, -o names a file (no name is sent)",
                path.display()
            )));
        }
        return Ok(Output::Dir(path.to_path_buf()));
    }
    let text = path.to_string_lossy();
    if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(exit::usage(format!(
            "{}: no such directory",
            path.display()
        )));
    }
    Ok(Output::File(path.to_path_buf()))
}

impl RecvConfig {
    pub fn from_args(args: &RecvArgs) -> Result<Self> {
        if args.http {
            return Self::http(args);
        }
        if args.keep_open && args.common.code.is_some() {
            return Err(exit::usage(ONE_CODE_ONE_TRANSFER));
        }
        let common = Common::from_args(&args.common, args.connect.is_none())?;
        let peer = match (&args.connect, &args.listen) {
            (Some(sender), _) => {
                let mut given = vec![PathBuf::from(sender)];
                match destination(&mut given, &common, Role::Sender)? {
                    // a lone positional is always where the sender is
                    Peer::Find(want) if want.name.is_none() => {
                        net::split_host_port(sender)?;
                        Peer::Connect(sender.clone())
                    }
                    peer => peer,
                }
            }
            (None, Some(text)) => Peer::Listen(net::parse_listen(text, common.family)?),
            (None, None) => Peer::Listen(net::default_listen(common.family)),
        };
        check_found(&peer, &common)?;
        let output = output_of(args.output.as_deref(), common.raw)?;
        if args.offset.is_some() && !matches!(output, Output::File(_)) {
            // a device or a pipe has no byte N to start from
            return Err(exit::usage("--raw --offset needs -o FILE to write into"));
        }
        Ok(RecvConfig {
            peer,
            output,
            force: args.force,
            preserve_modes: args.preserve_modes,
            keep_open: args.keep_open,
            max_conns: max_conns(args.max_conns, args.keep_open)?,
            max_size: args.max_size,
            max_files: args.max_files,
            max_memory: crate::budget::Budget::new(args.max_memory),
            raw_offset: args.offset,
            http: args.http.then_some(Http { open: args.open }),
            common,
        })
    }
}

impl RecvConfig {
    /// `--http`: uploads into the `-o` directory until Ctrl-C on
    /// `--listen` (default `[::]:9000`), never announced to zc peers.
    fn http(args: &RecvArgs) -> Result<Self> {
        no_secret_over_http(&args.common, "takes", "receive")?;
        let mut common = Common::from_args(&args.common, true)?;
        common.announce = None;
        let addr = match &args.listen {
            Some(listen) => net::parse_listen(listen, common.family)?,
            None => net::default_listen(common.family),
        };
        let output = output_of(args.output.as_deref(), false)?;
        if !matches!(output, Output::Dir(_)) {
            return Err(exit::usage(
                "--http writes what each client names: -o must be a directory",
            ));
        }
        Ok(RecvConfig {
            peer: Peer::Listen(addr),
            output,
            force: args.force,
            preserve_modes: false,
            keep_open: true,
            max_conns: max_conns(args.max_conns, true)?,
            max_size: args.max_size,
            max_files: args.max_files,
            max_memory: crate::budget::Budget::new(args.max_memory),
            raw_offset: None,
            http: Some(Http { open: args.open }),
            common,
        })
    }
}
