//! The man page and the completion scripts, generated from the clap
//! definition so they cannot drift from what the binary accepts.

use clap::{Arg, Command, CommandFactory};

use crate::cli::Cli;

/// The exit statuses, as the man page and `--help` describe them.
pub const EXIT_STATUS: [(i32, &str); 7] = [
    (0, "success"),
    (1, "runtime failure: network, I/O, peer vanished, timeout"),
    (2, "usage error (bad flag, bad size, bad address)"),
    (
        3,
        "integrity failure: SHA-256 (or keyed digest) mismatch, or an encrypted record altered in transit",
    ),
    (
        4,
        "refused by the peer: file exists, too large, no space, wrong key or code, protocol version",
    ),
    (
        5,
        "partial: some entries of a tree did not land (unreadable, vanished, changed while sent, refused); the rest did, and the summary lists which",
    ),
    (130, "interrupted (Ctrl-C / SIGINT)"),
];

const EXAMPLES: [(&str, &str); 11] = [
    ("zc recv", "Listen on [::]:9000 and write what arrives into the current directory."),
    ("zc send big.iso otherhost:9000", "Send a file: zero-copy, SHA-256 checked, exit 0 only once it is durable on the other side."),
    ("tar c dir | zc send - host:9000", "Send a stream from stdin."),
    ("zc recv -o - | tar x", "Receive a stream to stdout."),
    ("zc recv -o /data/ -l 127.0.0.1:0", "Listen on a free port (printed as 'listening on ADDR') and write into /data."),
    ("zc recv --raw -o out.bin", "Accept a plain TCP stream, e.g. from 'nc host 9000 < file'."),
    ("zc send --raw file host:9000", "Feed 'nc -l 9000 > file' or socat."),
    ("zc send --limit-rate 10M big.iso host:9000", "Send at most 10 MiB a second, still zero-copy."),
    ("zc send --listen 9000 -k big.iso", "Serve big.iso to every 'zc recv -o /data host:9000' that connects, several at once, until Ctrl-C; the file is hashed once."),
    ("zc recv --code", "Receive one encrypted transfer: prints a one-time code such as 7-plaza-quartz-ember and the command for the sender."),
    ("zc send big.iso host:9000 --code 7-plaza-quartz-ember", "Send it, encrypted (AES-256-GCM); a wrong code is refused before anything is sent, and burns the code."),
];

/// Escapes text for roff: backslashes, hyphens, and a leading dot or quote.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

fn option_lines(arg: &Arg) -> Option<String> {
    if arg.is_positional() || arg.is_hide_set() {
        return None;
    }
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("\\fB\\-{short}\\fR"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", roff(long)));
    }
    let mut head = names.join(", ");
    if arg.get_action().takes_values() {
        if let Some(values) = arg.get_value_names() {
            for v in values {
                head.push_str(&format!(" \\fI{}\\fR", roff(v)));
            }
        }
    }
    let mut help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !possible.is_empty() && arg.get_action().takes_values() {
        help.push_str(&format!(" (one of: {})", possible.join(", ")));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() {
        help.push_str(&format!(" [default: {}]", defaults.join(", ")));
    }
    if let Some(env) = arg.get_env() {
        help.push_str(&format!(" [env: {}]", env.to_string_lossy()));
    }
    Some(format!(".TP\n{head}\n{}\n", roff(&help)))
}

fn usage_of(sub: &Command) -> String {
    let mut usage = sub.clone().render_usage().to_string();
    if let Some(rest) = usage.strip_prefix("Usage: ") {
        usage = rest.to_string();
    }
    usage
}

/// `man/zc.1`: one page for the whole tool, a section per subcommand.
pub fn man_page() -> String {
    let cmd = Cli::command();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let mut page = format!(".TH ZC 1 \"\" \"zc {version}\" \"User Commands\"\n");
    page.push_str(&format!(
        ".SH NAME\nzc \\- {}\n",
        roff(&cmd.get_about().map(|a| a.to_string()).unwrap_or_default())
    ));
    page.push_str(".SH SYNOPSIS\n");
    let subs: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    for sub in &subs {
        page.push_str(&format!(".B {}\n.br\n", roff(&usage_of(&cmd_path(sub)))));
    }
    page.push_str(".SH DESCRIPTION\n");
    for para in cmd
        .get_long_about()
        .map(|a| a.to_string())
        .unwrap_or_default()
        .split("\n\n")
    {
        page.push_str(&format!(".PP\n{}\n", roff(para)));
    }
    for sub in &subs {
        page.push_str(&format!(".SH \"ZC {}\"\n", sub.get_name().to_uppercase()));
        page.push_str(&format!(
            ".PP\n{}\n",
            roff(&sub.get_about().map(|a| a.to_string()).unwrap_or_default())
        ));
        for arg in sub.get_arguments() {
            if let Some(lines) = option_lines(arg) {
                page.push_str(&lines);
            }
        }
    }
    page.push_str(".SH EXAMPLES\n");
    for (command, what) in EXAMPLES {
        page.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(command), roff(what)));
    }
    page.push_str(".SH \"EXIT STATUS\"\n");
    for (code, what) in EXIT_STATUS {
        page.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", roff(what)));
    }
    page.push_str(".SH \"SEE ALSO\"\n\\fBnc\\fR(1), \\fBsocat\\fR(1), \\fBsha256sum\\fR(1)\n");
    page
}

/// A subcommand named as the user types it (`zc send`), for its usage line.
fn cmd_path(sub: &Command) -> Command {
    sub.clone().bin_name(format!("zc {}", sub.get_name()))
}

/// The completion script for `shell`.
pub fn completion(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "zc", &mut out);
    out
}

/// Where each shell's script is committed, relative to the repository.
pub fn completion_path(shell: clap_complete::Shell) -> String {
    use clap_complete::Shell;
    match shell {
        Shell::Bash => "completions/zc.bash".into(),
        Shell::Zsh => "completions/_zc".into(),
        Shell::Fish => "completions/zc.fish".into(),
        Shell::Elvish => "completions/zc.elv".into(),
        Shell::PowerShell => "completions/_zc.ps1".into(),
        _ => format!("completions/zc.{shell}"),
    }
}
