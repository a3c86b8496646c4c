//! `zc send --http` against real clients: curl, wget, and hostile requests
//! written on raw sockets.

#![cfg(unix)]
#![allow(dead_code)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::http::*;
use common::*;

#[test]
fn http_curl_gets_heads_and_ranges_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    random_file(&src, 3_000_000, 1);
    let server = serve(&[], &[&src]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // the printed command, as a user pastes it
    shell(&server.curl, &out);
    assert_same_file(&src, &out.join("big.bin"));

    let head = curl(&["-I", &server.url]);
    let head = String::from_utf8_lossy(&head.stdout).to_string();
    assert_eq!(status_of(&head), 200, "{head}");
    assert_eq!(header(&head, "content-length"), Some("3000000"), "{head}");
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"));
    assert!(header(&head, "etag").is_some_and(|t| t.starts_with('"') && !t.starts_with("W/")));
    assert!(header(&head, "last-modified").is_some_and(|t| t.ends_with(" GMT")));
    assert_eq!(
        header(&head, "content-disposition"),
        Some("attachment; filename=\"big.bin\"")
    );

    let part = curl(&["-i", "-r", "1000-1999", &server.url]);
    let text = String::from_utf8_lossy(&part.stdout).to_string();
    assert_eq!(status_of(&text), 206);
    assert_eq!(
        header(&text, "content-range"),
        Some("bytes 1000-1999/3000000")
    );
    let body = &part.stdout[part.stdout.len() - 1000..];
    assert_eq!(body, &std::fs::read(&src).unwrap()[1000..2000]);

    let requests = server.requests_at_least(3);
    let ranged = requests
        .iter()
        .find(|r| r["status"] == 206)
        .expect("an access event for the range");
    assert_eq!(ranged["range"], "bytes=1000-1999");
    assert_eq!(ranged["bytes"], 1000);
    assert_eq!(ranged["method"], "GET");
    assert!(ranged["path"].as_str().unwrap().starts_with("/TOKEN/"));
    assert!(ranged["client"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn http_curl_and_wget_resume_a_cut_download() {
    require("wget");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("data.bin");
    random_file(&src, 2_000_000, 2);
    let server = serve(&[], &[&src]);
    for (tool, line) in [
        ("curl", format!("curl -fsS -C - -O {}", server.url)),
        ("wget", format!("wget -q -c {}", server.url)),
    ] {
        let out = dir.path().join(tool);
        std::fs::create_dir(&out).unwrap();
        // a download cut short: the first 700,001 bytes
        let cut = curl(&[
            "-f",
            "-r",
            "0-700000",
            "-o",
            out.join("data.bin").to_str().unwrap(),
            &server.url,
        ]);
        assert!(cut.status.success());
        assert_eq!(
            std::fs::metadata(out.join("data.bin")).unwrap().len(),
            700_001
        );
        shell(&line, &out);
        assert_same_file(&src, &out.join("data.bin"));
    }
    let resumed = server
        .requests_at_least(4)
        .iter()
        .filter(|r| r["status"] == 206 && r["range"] == "bytes=700001-")
        .count();
    assert_eq!(resumed, 2, "curl -C - and wget -c both asked for the rest");
}

#[test]
fn http_ranges_past_the_end_and_if_range() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    random_file(&src, 1000, 3);
    let server = serve(&[], &[&src]);
    let path = server.path();
    let past = raw(server.addr, &get(&path, "Range: bytes=1000-\r\n"));
    assert_eq!(status_of(&past), 416, "{past}");
    assert_eq!(header(&past, "content-range"), Some("bytes */1000"));
    let tail = raw(server.addr, &get(&path, "Range: bytes=-10\r\n"));
    assert_eq!(header(&tail, "content-range"), Some("bytes 990-999/1000"));
    let etag = header(&tail, "etag").unwrap().to_string();
    let fresh = raw(
        server.addr,
        &get(&path, &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n")),
    );
    assert_eq!(status_of(&fresh), 206);
    // a client holding another version gets the whole file, not a splice
    let stale = raw(
        server.addr,
        &get(&path, "Range: bytes=0-9\r\nIf-Range: \"old\"\r\n"),
    );
    assert_eq!(status_of(&stale), 200);
    assert_eq!(header(&stale, "content-length"), Some("1000"));
    let same = raw(
        server.addr,
        &get(&path, &format!("If-None-Match: {etag}\r\n")),
    );
    assert_eq!(status_of(&same), 304);
}

#[test]
fn http_hostile_requests_get_a_clean_4xx_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    random_file(&src, 1000, 4);
    std::fs::write(dir.path().join("secret"), b"not served").unwrap();
    let server = serve(&[], &[&src]);
    let p = server.prefix();
    let a = server.addr;
    let host = "Host: t\r\n";
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("two Content-Length", format!("GET {p}f HTTP/1.1\r\n{host}Content-Length: 0\r\nContent-Length: 4\r\n\r\nabcd").into_bytes(), 400),
        ("TE and CL", format!("GET {p}f HTTP/1.1\r\n{host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").into_bytes(), 400),
        ("a body on GET", format!("GET {p}f HTTP/1.1\r\n{host}Content-Length: 4\r\n\r\nGET /").into_bytes(), 400),
        ("chunked GET", format!("GET {p}f HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").into_bytes(), 400),
        ("1 MB request line", { let mut v = format!("GET {p}").into_bytes(); v.resize(1 << 20, b'a'); v }, 414),
        ("header flood", { let mut v = format!("GET {p}f HTTP/1.1\r\n{host}").into_bytes(); for i in 0..1000 { v.extend_from_slice(format!("X-{i}: y\r\n").as_bytes()); } v.extend_from_slice(b"\r\n"); v }, 431),
        ("huge header", { let mut v = format!("GET {p}f HTTP/1.1\r\n{host}X: ").into_bytes(); v.resize(100_000, b'a'); v }, 431),
        ("..", get(&format!("{p}../secret"), ""), 400),
        ("%2e%2e", get(&format!("{p}%2e%2e/secret"), ""), 400),
        ("%2f", get(&format!("{p}..%2fsecret"), ""), 400),
        ("NUL", get(&format!("{p}f%00"), ""), 400),
        ("no Host", format!("GET {p}f HTTP/1.1\r\n\r\n").into_bytes(), 400),
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400),
        ("POST", format!("POST {p}f HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n").into_bytes(), 405),
        ("wrong token", get("/00000000000000000000000000000000/f", ""), 404),
        ("no token", get("/f", ""), 404),
        ("a name not served", get(&format!("{p}secret"), ""), 404),
    ];
    for (what, bytes, want) in cases {
        let got = raw(a, &bytes);
        assert_eq!(status_of(&got), want, "{what}: {:?}", got.lines().next());
        assert!(!got.contains("not served"), "{what}: {got}");
    }
    let ok = raw(a, &get(&format!("{p}f"), ""));
    assert_eq!(status_of(&ok), 200, "still serving after all that");
    assert_eq!(
        server.requests_at_least(18).len(),
        18,
        "one access event per request"
    );
}

#[test]
fn http_a_slowloris_is_cut_while_a_real_client_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    random_file(&src, 100_000, 5);
    let server = serve(&["--max-conns", "2"], &[&src]);
    // two clients that trickle a head that never ends: every place taken
    let mut slow = Vec::new();
    for _ in 0..2 {
        let s = TcpStream::connect(server.addr).unwrap();
        let mut w = s.try_clone().unwrap();
        thread::spawn(move || {
            let _ = w.write_all(b"GET / HTTP/1.1\r\nX-a: ");
            for _ in 0..400 {
                if w.write_all(b"b").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        slow.push(s);
    }
    thread::sleep(Duration::from_millis(300));
    let got = curl(&["-f", "-o", "/dev/null", "-w", "%{http_code}", &server.url]);
    assert_eq!(String::from_utf8_lossy(&got.stdout), "200");
    for mut s in slow {
        // cut: the server closes (or resets) long before the trickle ends
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut said = Vec::new();
        let end = s.read_to_end(&mut said);
        let timed_out = matches!(&end, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        assert!(!timed_out, "the slow client was not cut: {end:?}");
    }
}

#[test]
fn http_open_serves_without_a_token_and_names_non_ascii_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("résumé 1.txt");
    std::fs::write(&src, b"hello").unwrap();
    let server = serve(&["--open"], &[&src]);
    assert_eq!(server.path(), "/r%C3%A9sum%C3%A9%201.txt");
    let got = raw(server.addr, &get(&server.path(), ""));
    assert_eq!(status_of(&got), 200, "{got}");
    assert!(got.ends_with("hello"));
    assert_eq!(
        header(&got, "content-disposition"),
        Some("attachment; filename=\"r_sum_ 1.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.txt")
    );
}

#[test]
fn http_ctrl_c_stops_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    std::fs::write(&src, b"x").unwrap();
    let mut server = serve(&[], &[&src]);
    sigint(&server.child);
    let status = wait_timeout(&mut server.child, Duration::from_secs(20), "zc send --http");
    assert_eq!(code_of(status), 130);
}

/// `photos/` with a subdirectory, a name that is HTML, and a link to a
/// file outside; and `top.txt` beside it.
fn tree(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let photos = root.join("photos");
    std::fs::create_dir_all(photos.join("2024 trip")).unwrap();
    random_file(&photos.join("a.jpg"), 200_000, 6);
    random_file(&photos.join("2024 trip/b é.jpg"), 50_000, 7);
    std::fs::write(photos.join("<b>x&y<i>.txt"), b"html name").unwrap();
    std::fs::write(root.join("secret"), b"not served").unwrap();
    std::os::unix::fs::symlink(root.join("secret"), photos.join("link")).unwrap();
    let top = root.join("top.txt");
    std::fs::write(&top, b"top").unwrap();
    (photos, top)
}

#[test]
fn http_index_pages_list_a_tree_and_wget_mirrors_it() {
    require("wget");
    let dir = tempfile::tempdir().unwrap();
    let (photos, top) = tree(dir.path());
    let server = serve(&[], &[&photos, &top]);
    assert!(server.url.ends_with('/'), "several sources: the index");
    let p = server.prefix();
    let root = raw(server.addr, &get(&p, ""));
    assert_eq!(status_of(&root), 200, "{root}");
    assert!(root.contains("href=\"./photos/\"") && root.contains("href=\"./top.txt\""));
    assert_eq!(header(&root, "referrer-policy"), Some("no-referrer"));
    let moved = raw(server.addr, &get(&format!("{p}photos"), ""));
    assert_eq!(status_of(&moved), 301);
    assert_eq!(
        header(&moved, "location"),
        Some(format!("{p}photos/").as_str())
    );
    let page = raw(server.addr, &get(&format!("{p}photos/"), ""));
    assert!(page.contains("&lt;b&gt;x&amp;y&lt;i&gt;.txt"), "{page}");
    assert!(!page.contains("<b>x"), "a name is never markup");
    assert!(page.contains("href=\"./2024%20trip/\""));
    assert!(
        !page.contains("link"),
        "a link below a source is not listed"
    );
    let link = raw(server.addr, &get(&format!("{p}photos/link"), ""));
    assert_eq!(status_of(&link), 404, "nor served");

    let out = dir.path().join("mirror");
    std::fs::create_dir(&out).unwrap();
    shell(&format!("{} -q", server.wget), &out);
    assert_same_file(&photos.join("a.jpg"), &out.join("photos/a.jpg"));
    assert_same_file(
        &photos.join("2024 trip/b é.jpg"),
        &out.join("photos/2024 trip/b é.jpg"),
    );
    assert_same_file(&top, &out.join("top.txt"));
    assert!(!out.join("photos/link").exists());
}

#[test]
fn http_sha256sums_lists_every_file_and_then_repr_digest_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, top) = tree(dir.path());
    // a digest is kept only for a file that has not changed for a while
    thread::sleep(Duration::from_millis(2500));
    let server = serve(&[], &[&photos, &top]);
    let p = server.prefix();
    let file = format!("{p}photos/a.jpg");
    let before = raw(server.addr, &get(&file, ""));
    assert_eq!(
        header(&before, "repr-digest"),
        None,
        "not hashed yet: not held back"
    );
    let sums = curl(&["-f", &format!("{}SHA256SUMS", server.url)]);
    let sums = String::from_utf8(sums.stdout).unwrap();
    let want = [
        ("photos/2024 trip/b é.jpg", photos.join("2024 trip/b é.jpg")),
        ("photos/<b>x&y<i>.txt", photos.join("<b>x&y<i>.txt")),
        ("photos/a.jpg", photos.join("a.jpg")),
        ("top.txt", top.clone()),
    ];
    let expected: String = want
        .iter()
        .map(|(name, path)| format!("{}  {name}\n", sha256_file(path)))
        .collect();
    assert_eq!(sums, expected);
    let after = raw(server.addr, &get(&format!("{p}photos/a.jpg"), ""));
    let sha = sha256_file(&photos.join("a.jpg"));
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&sha[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let b64 = base64(&bytes);
    assert_eq!(
        header(&after, "repr-digest"),
        Some(format!("sha-256=:{b64}:").as_str())
    );
}

#[test]
fn http_keeps_a_connection_alive_and_serves_buffered_with_no_sendfile() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    random_file(&src, 300_000, 8);
    for extra in [&[][..], &["--no-sendfile"][..]] {
        let server = serve(extra, &[&src]);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (a_path, b_path) = (a.to_str().unwrap(), b.to_str().unwrap());
        let url = server.url.as_str();
        let got = curl(&[
            "-f",
            "-w",
            "%{num_connects} ",
            "-o",
            a_path,
            url,
            "--next",
            "-sS",
            "-f",
            "-w",
            "%{num_connects} ",
            "-r",
            "5-",
            "-o",
            b_path,
            url,
        ]);
        // the second request rode on the first one's connection
        assert_eq!(String::from_utf8_lossy(&got.stdout), "1 0 ", "{extra:?}");
        assert_same_file(&src, &a);
        assert_eq!(
            std::fs::read(&b).unwrap(),
            std::fs::read(&src).unwrap()[5..]
        );
    }
}

/// Every path under `top`, relative, with what `tar x` must restore: the
/// kind, the mode, the mtime in seconds, and a file's digest or a link's
/// target.
fn tar_snapshot(top: &Path) -> std::collections::BTreeMap<std::path::PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    all_paths(top)
        .into_iter()
        .map(|path| {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = match () {
                _ if meta.is_symlink() => format!("link {:?}", std::fs::read_link(&path).unwrap()),
                _ if meta.is_dir() => "dir".to_string(),
                _ => format!("file {}", sha256_file(&path)),
            };
            let mode = meta.mode() & 0o7777;
            let shown = format!("{what} {mode:o} {}", meta.mtime());
            (path.strip_prefix(top).unwrap().to_path_buf(), shown)
        })
        .collect()
}

/// Sets a path's mtime (a link's own), as `touch -h -d @SECS` does.
fn set_mtime(path: &Path, secs: u64) {
    let status = Command::new("touch")
        .args(["-h", "-d", &format!("@{secs}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn http_a_directory_comes_whole_as_a_tar_stream() {
    require("curl");
    require("tar");
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let long = "n".repeat(150);
    for d in ["sub", "empty", "é dir"] {
        std::fs::create_dir_all(photos.join(d)).unwrap();
    }
    random_file(&photos.join("a.bin"), 300_000, 9);
    random_file(&photos.join("sub").join(&long), 5_000, 10);
    std::fs::write(photos.join("é dir/ü ñ.txt"), "non-ASCII").unwrap();
    std::fs::write(photos.join("sub/x.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(photos.join("empty.txt"), "").unwrap();
    std::fs::set_permissions(photos.join("sub/x.sh"), PermissionsExt::from_mode(0o751)).unwrap();
    std::fs::set_permissions(photos.join("a.bin"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(photos.join("empty"), PermissionsExt::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(format!("sub/{long}"), photos.join("inner")).unwrap();
    // a link out of the tree is left out, as a tree transfer leaves it
    std::fs::write(dir.path().join("secret"), "not served").unwrap();
    std::os::unix::fs::symlink("../secret", photos.join("out")).unwrap();
    // deepest first, so that no later change moves a directory's mtime
    let mut paths = all_paths(&photos);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in paths.iter().enumerate() {
        set_mtime(path, 1_500_000_000 + 1000 * i as u64);
    }
    let mut want = tar_snapshot(&photos);
    want.remove(Path::new("out")).expect("the leaving link");

    let server = serve(&[], &[&photos]);
    let p = server.prefix();
    let index = raw(server.addr, &get(&p, ""));
    assert!(index.contains("action=\"./photos.tar\""), "{index}");
    let url = format!("http://{}{p}photos.tar", server.addr);
    let head = raw(
        server.addr,
        format!("HEAD {p}photos.tar HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status_of(&head), 200, "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    assert_eq!(header(&head, "content-type"), Some("application/x-tar"));
    let length: u64 = header(&head, "content-length").unwrap().parse().unwrap();

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // the listening line's own curl command for a directory is the stream
    assert_eq!(server.curl, format!("curl -fsS {url} | tar xf -"));
    let line = format!("set -o pipefail; {}", server.curl);
    let extracted = Command::new("bash")
        .arg("-c")
        .arg(&line)
        .current_dir(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&extracted.stderr);
    assert!(extracted.status.success(), "{line}: {stderr}");
    assert_eq!(tar_snapshot(&out.join("photos")), want);

    // the length is what arrives; a range is not served (the whole is)
    let got = curl(&[
        "-f",
        "-r",
        "5-",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download} %header{content-length}",
        &url,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        format!("200 {length} {length}")
    );
    let events = server.requests_at_least(4);
    let gets: Vec<_> = events
        .iter()
        .filter(|e| e["method"] == "GET" && e["path"] == "/TOKEN/photos.tar")
        .collect();
    assert_eq!(gets.len(), 2, "{events:?}");
    assert!(
        gets.iter()
            .all(|e| e["bytes"] == length && e["status"] == 200),
        "{gets:?}"
    );
}

/// A GET of `url` by curl, held after its first 512 bytes (the server has
/// listed the tree and is blocked on a large first file) while `change`
/// runs; then read to its end. curl's exit code and the bytes it got.
fn tar_changed_under(url: &str, change: impl FnOnce()) -> (i32, Vec<u8>) {
    let mut child = Guard(
        Command::new("curl")
            .args(["-sS", "--max-time", "120", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; 512];
    stdout.read_exact(&mut got).expect("the first header");
    change();
    stdout.read_to_end(&mut got).unwrap();
    let code = code_of(wait_timeout(&mut child, LONG_TIMEOUT, "curl"));
    (code, got)
}

#[test]
fn http_a_tar_stream_is_cut_short_when_a_file_changes_under_it() {
    require("curl");
    require("tar");
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    // far more than the socket's and the pipe's buffers hold: the server
    // is still sending it when the later file changes
    sparse_file(&photos.join("a.bin"), 64 * MIB);
    let (z, y) = (photos.join("z.txt"), photos.join("y.txt"));
    std::fs::write(&y, vec![b'y'; 1000]).unwrap();
    std::fs::write(&z, vec![b'z'; 1000]).unwrap();
    let server = serve(&[], &[&photos]);
    let url = format!("http://{}{}photos.tar", server.addr, server.prefix());
    // photos/, a.bin, y.txt and z.txt (a header and a block each), the end
    let whole = 512 + (512 + 64 * MIB) + 2 * (512 + 1024) + 1024;

    let shrink = || std::fs::write(&z, b"shorter").unwrap();
    let remove = || std::fs::remove_file(&y).unwrap();
    for (what, change) in [("shrunk", &shrink as &dyn Fn()), ("removed", &remove)] {
        let (code, got) = tar_changed_under(&url, change);
        // 18: "Partial file", fewer bytes than Content-Length
        assert_eq!(code, 18, "{what}: curl's exit");
        assert!((got.len() as u64) < whole, "{what}: {} bytes", got.len());
        assert!(!tar_reads(&got), "{what}: tar must fail");
    }
    let lines = server.lines.lock().unwrap().clone();
    let cuts: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "warning")
        .map(|l| l["message"].as_str().unwrap_or("").to_string())
        .filter(|m| m.contains("cut short"))
        .collect();
    assert_eq!(cuts.len(), 2, "{lines:?}");
    assert!(
        cuts[0].contains("photos/z.txt: changed since the tree was listed (1536 bytes"),
        "{cuts:?}"
    );
    assert!(
        cuts[1].contains("photos/y.txt: vanished during the walk"),
        "{cuts:?}"
    );

    // listed anew at each request: the tree as it is now, whole
    let got = curl(&["-f", "-o", "/dev/null", "-w", "%{size_download}", &url]);
    assert!(got.status.success());
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        (512 + (512 + 64 * MIB) + (512 + 512) + 1024).to_string()
    );
}

/// Whether process `pid` has `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == path))
}

#[test]
fn http_sha256sums_skips_a_file_swapped_for_a_fifo_after_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("t");
    std::fs::create_dir(&top).unwrap();
    // all of t is listed before `a` is hashed, and `z` after it: `z`
    // becomes a FIFO (no writer will come) while `a` is being hashed
    let big = top.join("a");
    sparse_file(&big, 1 << 30);
    std::fs::write(top.join("z"), b"z").unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let server = serve(&[], &[&top]);
    let pid = server.child.id();
    let request = get(&format!("{}SHA256SUMS", server.path()), "");
    let addr = server.addr;
    let sums = thread::spawn(move || raw(addr, &request));
    let big = big.canonicalize().unwrap();
    while !has_open(pid, &big) {
        assert!(
            !sums.is_finished(),
            "`a` was hashed before it was seen open"
        );
        thread::sleep(Duration::from_millis(1));
    }
    std::fs::rename(&fifo, top.join("z")).unwrap();
    let r = sums.join().unwrap();
    assert_eq!(status_of(&r), 200, "{r}");
    assert!(r.contains("  t/a\n"), "{r}");
    assert!(!r.contains("t/z"), "{r}");
}

#[test]
fn http_a_tar_stream_cut_inside_a_files_last_block_still_fails_tar() {
    require("curl");
    require("tar");
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let a = photos.join("a.bin");
    // far more than the buffers on the way hold, and not a whole number of
    // blocks: the server is in its body when the change comes
    let size = 64 * MIB + 1000;
    let server = serve(&[], &[&photos]);
    let url = format!("http://{}{}photos.tar", server.addr, server.prefix());
    let rewrite = || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&a).unwrap();
        f.write_all(b"rewritten").unwrap();
    };
    let shrink_600 = || {
        std::fs::File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_len(64 * MIB + 600)
            .unwrap()
    };
    let shrink_512 = || {
        std::fs::File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_len(64 * MIB + 512)
            .unwrap()
    };
    let changes = [
        ("rewritten in place", &rewrite as &dyn Fn()),
        ("shrunk to 600 of its last 1000", &shrink_600),
        ("shrunk to 512 of its last 1000", &shrink_512),
    ];
    for (what, change) in changes {
        sparse_file(&a, size);
        let (code, got) = tar_changed_under(&url, change);
        assert_eq!(code, 18, "{what}: curl's exit");
        assert!(!tar_reads(&got), "{what}: tar must fail");
    }
}

/// Whether GNU tar lists `archive` without an error.
fn tar_reads(archive: &[u8]) -> bool {
    let mut tar = Command::new("tar")
        .args(["tf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = tar.stdin.take().unwrap().write_all(archive);
    tar.wait().unwrap().success()
}
