//! A child on a pseudo-terminal, and just enough of a terminal to read
//! what it drew (the bars of tests/scripting.rs and tests/http_server.rs).

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::FromRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{code_of, wait_timeout, Guard, TIMEOUT};

/// Both ends of a new pty, `rows`×`cols`; both close on exec.
pub fn open_pty(rows: u16, cols: u16) -> (File, File) {
    static PTSNAME: Mutex<()> = Mutex::new(());
    #[cfg(target_os = "linux")]
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    #[cfg(not(target_os = "linux"))]
    let flags = libc::O_RDWR | libc::O_NOCTTY;
    // SAFETY: posix_openpt returns a new descriptor (or -1), owned below.
    let fd = unsafe { libc::posix_openpt(flags) };
    assert!(fd >= 0, "posix_openpt: {}", io::Error::last_os_error());
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let master = unsafe { File::from_raw_fd(fd) };
    // SAFETY: fcntl, grantpt, unlockpt and ioctl on the descriptor we own;
    // ptsname's static buffer is read under a lock and copied at once.
    let name = unsafe {
        assert_eq!(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC), 0);
        assert_eq!(libc::grantpt(fd), 0, "{}", io::Error::last_os_error());
        assert_eq!(libc::unlockpt(fd), 0, "{}", io::Error::last_os_error());
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        assert_eq!(libc::ioctl(fd, libc::TIOCSWINSZ, &size), 0);
        let _lock = PTSNAME.lock().unwrap();
        let name = libc::ptsname(fd);
        assert!(!name.is_null(), "ptsname: {}", io::Error::last_os_error());
        CStr::from_ptr(name).to_str().unwrap().to_owned()
    };
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (master, slave)
}

pub const PTY_ROWS: u16 = 40;
pub const PTY_COLS: u16 = 200;

/// A child whose stderr is a terminal; everything it draws is kept.
pub struct OnPty {
    pub child: Guard,
    seen: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl OnPty {
    pub fn spawn(mut cmd: Command) -> OnPty {
        let (master, slave) = open_pty(PTY_ROWS, PTY_COLS);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(slave));
        let child = Guard(cmd.spawn().expect("spawning a child on a pty"));
        // Our copy of the slave goes with the command: the master then reads
        // EIO once the child is gone.
        drop(cmd);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let reader = thread::spawn(move || {
            let mut master = master;
            let mut buf = [0u8; 4096];
            loop {
                match master.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
        OnPty {
            child,
            seen,
            reader,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until what was drawn so far, in whole lines, gives `found`
    /// something; `what` names the child in a failure.
    pub fn wait_for<T>(&mut self, what: &str, found: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.text();
            // Whole lines only: a line still being written is cut short.
            let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            if let Some(got) = found(whole) {
                return got;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what} on a pty exited ({status}) early:\n{text:?}");
            }
            assert!(
                Instant::now() < deadline,
                "{what} on a pty: not seen within {TIMEOUT:?}:\n{text:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn finish(mut self, what: &str) -> (i32, String) {
        let status = wait_timeout(&mut self.child, TIMEOUT, what);
        let deadline = Instant::now() + TIMEOUT;
        while !self.reader.is_finished() {
            assert!(
                Instant::now() < deadline,
                "{what}: the pty never closed after the child exited"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let text = self.text();
        self.reader.join().unwrap();
        (code_of(status), text)
    }
}

/// Just enough of a terminal to replay what indicatif draws: printable
/// characters with wrapping, CR, LF, cursor up/down/column and erasing.
pub struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    cols: usize,
    wrap_next: bool,
}

impl Screen {
    pub fn new(cols: usize) -> Screen {
        Screen {
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            cols,
            wrap_next: false,
        }
    }

    fn line(&mut self) -> &mut Vec<char> {
        while self.rows.len() <= self.row {
            self.rows.push(Vec::new());
        }
        &mut self.rows[self.row]
    }

    fn put(&mut self, ch: char) {
        if self.wrap_next {
            self.row += 1;
            self.col = 0;
            self.wrap_next = false;
        }
        let col = self.col;
        let line = self.line();
        if line.len() <= col {
            line.resize(col + 1, ' ');
        }
        line[col] = ch;
        if col + 1 >= self.cols {
            self.wrap_next = true;
        } else {
            self.col += 1;
        }
    }

    fn csi(&mut self, params: &str, fin: char) {
        let first = params
            .trim_start_matches('?')
            .split(';')
            .next()
            .and_then(|p| p.parse::<usize>().ok());
        self.wrap_next = false;
        match fin {
            'A' => self.row = self.row.saturating_sub(first.unwrap_or(1).max(1)),
            'B' => self.row += first.unwrap_or(1).max(1),
            'G' => self.col = first.unwrap_or(1).max(1) - 1,
            'K' => {
                let col = self.col;
                match first.unwrap_or(0) {
                    0 => self.line().truncate(col),
                    1 => self.line()[..col].iter_mut().for_each(|c| *c = ' '),
                    _ => self.line().clear(),
                }
            }
            'J' => {
                let col = self.col;
                self.line().truncate(col);
                self.rows.truncate(self.row + 1);
            }
            _ => {} // colours, cursor visibility
        }
    }

    pub fn feed(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '\r' => {
                    self.col = 0;
                    self.wrap_next = false;
                }
                '\n' => {
                    self.row += 1;
                    self.wrap_next = false;
                    self.line();
                }
                '\x1b' => {
                    if chars.peek() == Some(&'[') {
                        chars.next();
                        let mut params = String::new();
                        for c in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&c) {
                                self.csi(&params, c);
                                break;
                            }
                            params.push(c);
                        }
                    } else {
                        chars.next();
                    }
                }
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
    }

    /// The rows as text, without trailing blanks or trailing empty rows.
    pub fn text_rows(&self) -> Vec<String> {
        let mut rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        rows
    }
}

pub fn render(text: &str) -> Vec<String> {
    let mut screen = Screen::new(PTY_COLS as usize);
    screen.feed(text);
    screen.text_rows()
}
