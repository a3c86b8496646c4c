//! zc: move files between machines over plain TCP as fast as the kernel allows.
//!
//! `main.rs` only parses and dispatches; each module here has one role.

// Syscalls std does not offer live in `sys`, the one module allowed `unsafe`.
#![deny(unsafe_code)]

pub mod admission;
pub mod auth;
pub mod budget;
pub mod cli;
pub mod config;
pub mod conn;
pub mod copy;
pub mod docgen;
pub mod exit;
pub mod file_read;
pub mod hash;
pub mod held;
pub mod http;
pub mod interrupt;
pub mod lan;
pub mod net;
pub mod output;
pub mod peer_text;
pub mod peers;
pub mod progress;
pub mod protocol;
pub mod rate;
pub mod recv;
pub mod secure;
pub mod send;
pub mod serve;
pub mod sys;
pub mod units;
