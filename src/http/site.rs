//! What `--http` serves: the sources under their top names, and a path of
//! checked names resolved to a file or a directory among them, never
//! outside: a symbolic link below a source is not followed.

#[cfg(not(unix))]
use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Payload, SendConfig, Source};
use crate::exit;
use crate::send::walk::Dir;

/// One source, under the name its URL uses.
#[derive(Debug, Clone)]
pub struct Top {
    pub name: Vec<u8>,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub tops: Vec<Top>,
}

/// What a path names.
pub enum Found {
    /// The list of the sources.
    Root,
    /// A regular file, opened, with its name.
    File(File, Vec<u8>),
    /// A directory (a source, or inside one), opened: it is listed
    /// through this handle, not by its path.
    Dir(Dir),
    /// `NAME.tar` beside a directory source `NAME`: the directory whole
    /// ([`super::tar`]), unless a source has that very name.
    Tar(Top),
}

impl Site {
    pub fn new(cfg: &SendConfig) -> Result<Site> {
        let tops = match &cfg.payload {
            Payload::Single(Source::File(path)) => {
                let name = match &cfg.name {
                    Some(name) => name.as_bytes().to_vec(),
                    None => top_name(path)?,
                };
                vec![Top {
                    name,
                    path: path.clone(),
                }]
            }
            Payload::Single(Source::Stdin) => {
                return Err(exit::usage(
                    "--http serves files and directories, not stdin",
                ))
            }
            Payload::Tree(tops) => tops
                .iter()
                .map(|(path, name)| Top {
                    name: name.clone(),
                    path: path.clone(),
                })
                .collect(),
        };
        for top in &tops {
            let meta = fs::metadata(&top.path)
                .map_err(|e| exit::usage(format!("{}: {e}", top.path.display())))?;
            if !meta.is_file() && !meta.is_dir() {
                return Err(exit::usage(format!(
                    "{}: --http serves regular files and directories",
                    top.path.display()
                )));
            }
        }
        Ok(Site { tops })
    }

    /// The one source when it is a file: its URL is the one to print.
    pub fn single_file(&self) -> Option<&Top> {
        match self.tops.as_slice() {
            [top] if top.path.is_file() => Some(top),
            _ => None,
        }
    }

    /// Resolves checked names ([`super::target::names`]); `None` for
    /// anything that is not there, or not a file or directory reached
    /// without a link.
    pub fn find(&self, names: &[Vec<u8>]) -> Option<Found> {
        let Some((first, below)) = names.split_first() else {
            return Some(Found::Root);
        };
        let Some(top) = self.tops.iter().find(|t| t.name == *first) else {
            return self.tar(names);
        };
        let name = names.last().cloned().unwrap_or_default();
        resolve(&top.path, below, name)
    }

    /// The directory source a one-name path `NAME.tar` names.
    fn tar(&self, names: &[Vec<u8>]) -> Option<Found> {
        let [name] = names else { return None };
        let stem = name.strip_suffix(b".tar")?;
        let top = self.tops.iter().find(|t| t.name == stem)?;
        fs::metadata(&top.path)
            .ok()?
            .is_dir()
            .then(|| Found::Tar(top.clone()))
    }
}

/// Opens `below` beneath the source `top` (followed if a link: it was
/// named on the command line) without following a link at any name
/// below it, each name resolved from the handle of the one before: a
/// directory swapped for a link after a walk cannot lead a request out of
/// the source. Never blocks on a FIFO.
#[cfg(unix)]
fn resolve(top: &Path, below: &[Vec<u8>], name: Vec<u8>) -> Option<Found> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(top)
        .ok()?;
    let file = match below {
        [] => dir,
        _ => crate::send::walk::open_beneath(&dir, below)?,
    };
    // what was opened, not what the names meant a moment before
    let opened = file.metadata().ok()?;
    if opened.is_dir() {
        return Some(Found::Dir(Dir::from_file(file)));
    }
    opened.is_file().then_some(Found::File(file, name))
}

/// Without openat: each name is checked with lstat, then the path opened
/// (a component swapped for a link in between is followed).
#[cfg(not(unix))]
fn resolve(top: &Path, below: &[Vec<u8>], name: Vec<u8>) -> Option<Found> {
    let mut path = top.to_path_buf();
    for name in below {
        path.push(os_name(name)?);
        if fs::symlink_metadata(&path).ok()?.file_type().is_symlink() {
            return None;
        }
    }
    if fs::metadata(&path).ok()?.is_dir() {
        return Some(Found::Dir(Dir::open(&path).ok()?));
    }
    let file = File::open(&path).ok()?;
    let opened = file.metadata().ok()?;
    opened.is_file().then_some(Found::File(file, name))
}

fn top_name(path: &Path) -> Result<Vec<u8>> {
    crate::output::top_name(path).ok_or_else(|| {
        exit::usage(format!(
            "{}: no name to serve it under (give --name)",
            path.display()
        ))
    })
}

#[cfg(not(unix))]
fn os_name(name: &[u8]) -> Option<&OsStr> {
    std::str::from_utf8(name).ok().map(OsStr::new)
}
