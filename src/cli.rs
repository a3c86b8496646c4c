//! The command line, defined once for parsing, completions and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units::{parse_rate, parse_size};

const EXAMPLES: &str = "\
Examples:
  zc recv                               listen on [::]:9000, write into the current directory
  zc send big.iso otherhost:9000        send a file (zero-copy, SHA-256 checked)
  zc send big.iso                       send it to the one receiver on the LAN
  zc send photos/ @laptop               send a directory to the receiver announced as laptop
  zc peers                              list the receivers and serving senders on the LAN
  zc send photos/ a.iso otherhost:9000  send a directory and a file in one session
  tar c dir | zc send - host:9000       send a stream from stdin
  zc recv -o - | tar x                  receive a stream to stdout
  zc send --listen 9000 -k big.iso      serve a file to every 'zc recv host:9000' until Ctrl-C
  zc send --http photos/ a.iso          serve to curl, wget and browsers (prints the URLs)
  zc recv --code                        encrypted: prints a one-time code and the sender's command
  zc send big.iso host:9000 --code 7-plaza-quartz-ember
  zc recv --raw -o out.bin              accept a plain TCP stream (nc host 9000 < file)
  zc send --raw file host:9000          feed 'nc -l 9000 > file'";

#[derive(Debug, Parser)]
#[command(
    name = "zc",
    version,
    about = "Move files between machines over plain TCP as fast as the kernel allows",
    long_about = "Move files between machines over plain TCP as fast as the kernel allows.\n\n\
        'zc recv' listens and writes what arrives; 'zc send FILE HOST:PORT' hands FILE to the \
        kernel with sendfile(2). Every transfer is checked end to end with SHA-256, lands \
        atomically (NAME.zcpart is renamed to NAME only when complete and verified), and \
        ends with an exit code a script can trust.",
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send files and directories ('-' for stdin) to a receiver at
    /// HOST:PORT, or with --listen wait for a receiver to connect (with -k,
    /// for every receiver until interrupted)
    Send(SendArgs),
    /// Listen and receive (default [::]:9000, into the current directory,
    /// announced on the LAN), or connect to a listening sender at HOST:PORT
    /// or announced as @NAME
    Recv(RecvArgs),
    /// List the zc receivers and serving senders announced on the LAN
    Peers(PeersArgs),
    /// Print a completion script for a shell
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// What to send: files, directories (with everything beneath them), or
    /// '-' for stdin (alone); then HOST:PORT, where the receiver listens, or
    /// @NAME, a receiver announced on the LAN; with neither, the one
    /// receiver on the LAN (with --listen every positional is a source)
    // not required when --code may have taken the one source (see config)
    #[arg(value_name = "SOURCE", required_unless_present = "code", num_args = 1.., value_hint = clap::ValueHint::AnyPath)]
    pub paths: Vec<PathBuf>,
    /// Reverse mode: listen here (PORT, HOST:PORT, [V6]:PORT) and send to the
    /// receiver that connects ('zc recv HOST:PORT')
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Start at this byte of FILE; the receiver writes at the same offset
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub offset: Option<u64>,
    /// Send at most this many bytes from the offset
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub count: Option<u64>,
    /// Start at --offset (default 0) even if the receiver holds a partial copy
    #[arg(long)]
    pub no_resume: bool,
    /// The name announced for a single source (default: its base name)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// In a directory, follow symbolic links and send what they point to
    /// (without it, links that stay inside the tree are sent as links)
    #[arg(short = 'L', long)]
    pub dereference: bool,
    /// On a dropped connection, reconnect up to N times with backoff and resume
    /// (framed mode only: not with --raw)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,
    /// With --listen: serve the sources to every receiver that connects,
    /// several at once, until interrupted; each file is hashed once, not
    /// once per receiver
    #[arg(short, long)]
    pub keep_open: bool,
    /// With -k: at most N transfers at once; later receivers wait their
    /// turn (default 256)
    #[arg(long, value_name = "N")]
    pub max_conns: Option<u64>,
    /// Use the buffered copy path instead of sendfile(2)
    #[arg(long)]
    pub no_sendfile: bool,
    /// Serve the sources over plain HTTP/1.1 to any client (curl, wget, a
    /// browser) until interrupted, on --listen ADDR (default [::]:9000);
    /// the URLs carry a random token unless --open; refused with a key or a
    /// code, which plain HTTP cannot carry
    #[arg(long, conflicts_with_all = ["offset", "count", "retry", "no_resume", "raw"])]
    pub http: bool,
    /// With --http: serve without the token in the URLs, to anyone who can
    /// reach the port (a trusted network only)
    #[arg(long, requires = "http")]
    pub open: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Reverse mode: connect to a sender that listens ('zc send --listen'),
    /// at HOST:PORT or announced on the LAN as @NAME
    #[arg(value_name = "HOST:PORT|@NAME", value_hint = clap::ValueHint::Hostname, conflicts_with_all = ["listen", "keep_open"])]
    pub connect: Option<String>,
    /// Where to listen: PORT, HOST:PORT or [V6]:PORT (port 0 picks a free one)
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A file, an existing directory, or '-' for stdout (default: the current directory)
    #[arg(short, long, value_name = "PATH", value_hint = clap::ValueHint::AnyPath)]
    pub output: Option<PathBuf>,
    /// Overwrite an existing complete file
    #[arg(long)]
    pub force: bool,
    /// Give what arrives the sender's permission bits exactly, not less
    /// this side's umask (setuid, setgid and sticky are never set)
    #[arg(short, long)]
    pub preserve_modes: bool,
    /// Keep listening and accept transfers concurrently until interrupted
    #[arg(short, long)]
    pub keep_open: bool,
    /// With -k: at most N transfers at once; later senders wait their turn
    /// (default 256)
    #[arg(long, value_name = "N")]
    pub max_conns: Option<u64>,
    /// Refuse transfers larger than this
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Refuse a tree with more entries than this
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_files: u64,
    /// Refuse a tree whose manifest would take the receiver past this much
    /// memory for manifests (the files asked for, the directories and links
    /// kept for the end): the receiver's whole budget, shared by the
    /// sessions of -k; 256M holds a million entries of ordinary names
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256M")]
    pub max_memory: u64,
    /// With --raw: write from this byte of the output file, without truncating it
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "raw")]
    pub offset: Option<u64>,
    /// Take uploads over plain HTTP/1.1 from any client (curl -T, a
    /// browser's upload page) into the -o directory until interrupted, on
    /// --listen ADDR (default [::]:9000); the URLs carry a random token
    /// unless --open; refused with a key or a code, which plain HTTP
    /// cannot carry
    #[arg(long, conflicts_with_all = ["connect", "raw", "offset"])]
    pub http: bool,
    /// With --http: take uploads without the token in the URLs, from anyone
    /// who can reach the port (a trusted network only)
    #[arg(long, requires = "http")]
    pub open: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options that mean the same on both sides.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Plain bytes, no header or negotiation: talks to nc, socat, /dev/tcp
    #[arg(long)]
    pub raw: bool,
    /// Skip the SHA-256 end-to-end check
    #[arg(long)]
    pub no_verify: bool,
    /// Give up connecting after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Give up when no byte has moved for this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Move at most RATE bytes a second (500K, 10M, 1.5G: the suffixes of
    /// --offset). The sender paces what it hands to sendfile, the receiver
    /// what it reads; either side can set it
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// Use IPv4 only
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only
    #[arg(short = '6')]
    pub ipv6: bool,
    /// No progress and no summary; errors still go to stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// How to show progress on stderr
    #[arg(long, value_name = "MODE", value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Every line written to stderr is one JSON object
    #[arg(long)]
    pub json: bool,
    /// Pre-shared key: both sides must hold it. It authenticates both ends
    /// and encrypts the whole session (names, sizes, data) with AES-256-GCM
    /// after a SPAKE2 handshake; a wrong key is refused before anything
    /// is sent. The bytes then go through user space (no sendfile or
    /// splice; see --no-encrypt). Prefer ZC_KEY: a command line shows in ps
    #[arg(long, value_name = "KEY", env = "ZC_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// A one-time code instead of a key. Alone on the listening side
    /// ('zc recv --code'), zc makes a fresh one and prints it with the
    /// command to run on the other side, which gives it ('--code
    /// 7-plaza-quartz-ember'). Encrypts the session as a key does; one
    /// wrong try burns the code
    #[arg(long, value_name = "CODE", num_args = 0..=1, default_missing_value = "")]
    pub code: Option<String>,
    /// Listening: the name announced on the LAN (default: this host's name)
    #[arg(long, value_name = "NAME")]
    pub announce: Option<String>,
    /// Listening: do not announce on the LAN
    #[arg(long, conflicts_with = "announce")]
    pub no_announce: bool,
    /// Looking for a peer on the LAN (@NAME, or no address): give up after
    /// this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub find_timeout: f64,
    /// With a key: authenticate both ends but send in the clear, so
    /// sendfile(2) and splice(2) stay zero-copy. Anyone on the path can
    /// read names, sizes and data (the digests are keyed, so changes are
    /// still caught). For a trusted link; both sides must agree
    #[arg(long)]
    pub no_encrypt: bool,
}

#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Keep listing, as peers come and go, until interrupted
    #[arg(short, long)]
    pub watch: bool,
    /// One JSON object a line, one per peer
    #[arg(long)]
    pub json: bool,
    /// How long to listen for answers, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub find_timeout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, nothing otherwise
    Auto,
    /// Always a bar
    Bar,
    /// One line per second, for logs
    Plain,
    /// No progress, only the summary
    None,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
