//! The `zc` binary: parse, build the config, dispatch, map errors to exit codes.

use clap::{CommandFactory, Parser as _};

use zc::cli::{Cli, Command};
use zc::config::{RecvConfig, SendConfig};
use zc::exit::{self, ExitCode};
use zc::progress::{Reporter, Style};
use zc::{interrupt, recv, send};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => parse_failed(err),
    };
    if matches!(cli.command, Command::Recv(_)) {
        recv::prepare(); // before the Ctrl-C handler's thread
    }
    interrupt::install();
    let (style, result) = match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "zc", &mut std::io::stdout());
            return;
        }
        Command::Send(args) => match SendConfig::from_args(args) {
            Ok(cfg) => (
                cfg.common.style,
                send(&cfg, &Reporter::new(cfg.common.style)),
            ),
            Err(e) => (style_of(args.common.json), Err(e)),
        },
        Command::Peers(args) => (
            style_of(args.json),
            zc::config::listing(args).and_then(zc::peers::run),
        ),
        Command::Recv(args) => match RecvConfig::from_args(args) {
            Ok(cfg) => (
                cfg.common.style,
                recv(&cfg, &Reporter::new(cfg.common.style)),
            ),
            Err(e) => (style_of(args.common.json), Err(e)),
        },
    };
    if let Err(err) = result {
        let code = exit::code_of(&err);
        Reporter::new(style).error(&exit::message_of(&err), code);
        std::process::exit(code.code());
    }
    std::process::exit(ExitCode::Success.code());
}

/// A command line clap refused: with `--json` on it, the error is an event
/// like every other line; otherwise clap's own message. Help and version
/// go to stdout as usual.
fn parse_failed(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let wants_json = std::env::args()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let is_output = matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if !wants_json || is_output {
        err.exit();
    }
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("bad command line");
    let message = first.strip_prefix("error: ").unwrap_or(first);
    Reporter::new(Style::Json).error(message, ExitCode::Usage);
    std::process::exit(ExitCode::Usage.code());
}

fn style_of(json: bool) -> Style {
    if json {
        Style::Json
    } else {
        Style::Summary
    }
}

/// `zc send`: to a zc receiver, or to any HTTP client (`--http`).
fn send(cfg: &SendConfig, reporter: &Reporter) -> anyhow::Result<()> {
    match cfg.http {
        Some(http) => zc::http::serve(cfg, http, reporter),
        None => send::run(cfg, reporter),
    }
}

/// `zc recv`: from a zc sender, or uploads from any HTTP client (`--http`).
fn recv(cfg: &RecvConfig, reporter: &Reporter) -> anyhow::Result<()> {
    match cfg.http {
        Some(http) => {
            recv::check_output(cfg)?;
            zc::http::take_uploads(cfg, http, reporter)
        }
        None => recv::run(cfg, reporter),
    }
}
