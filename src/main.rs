//! The `zc` binary: parse, build the config, dispatch, map errors to exit codes.

use clap::{CommandFactory, Parser};

use zc::cli::{Cli, Command};
use zc::config::{RecvConfig, SendConfig, Style};
use zc::exit::{self, ExitCode};
use zc::progress::Reporter;
use zc::{interrupt, recv, send};

fn main() {
    let cli = Cli::parse();
    interrupt::install();
    let (style, result) = match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "zc", &mut std::io::stdout());
            return;
        }
        Command::Send(args) => match SendConfig::from_args(args) {
            Ok(cfg) => (
                cfg.common.style,
                send::run(&cfg, &Reporter::new(cfg.common.style)),
            ),
            Err(e) => (style_of(args.common.json), Err(e)),
        },
        Command::Recv(args) => match RecvConfig::from_args(args) {
            Ok(cfg) => (
                cfg.common.style,
                recv::run(&cfg, &Reporter::new(cfg.common.style)),
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

fn style_of(json: bool) -> Style {
    if json {
        Style::Json
    } else {
        Style::Summary
    }
}
