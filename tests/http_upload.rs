//! `zc recv --http` against real clients: curl's PUT and form POST, and
//! hostile requests written on raw sockets.

#![cfg(unix)]
#![allow(dead_code)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::http::*;
use common::Mount;

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let src = tmp.path().join("src");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&src).unwrap();
    (tmp, out, src)
}

#[test]
fn http_upload_curl_put_lands_and_refuses_an_existing_file_without_force() {
    let (_tmp, out, src) = setup();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let file = src.join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let server = take(&out, &[]);
    // curl appends the file's name to a URL ending in '/'
    let (code, body) = curl_status(&["-T", file.to_str().unwrap(), &server.url]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), data);
    std::fs::write(&file, b"other").unwrap();
    let (code, body) = curl_status(&["-T", file.to_str().unwrap(), &server.url]);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("--force"), "{body}");
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), data);
    // a wrong token is a 404, and writes nothing
    let wrong = format!("http://{}/{}/", server.addr, "0".repeat(32));
    let (code, _) = curl_status(&["-T", file.to_str().unwrap(), &wrong]);
    assert_eq!(code, 404);
    server.still_serving(&out);
    drop(server);
    let forced = take(&out, &["--force"]);
    let (code, body) = curl_status(&["-T", file.to_str().unwrap(), &forced.url]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), b"other");
}

#[test]
fn http_upload_checks_a_clients_digest_and_keeps_the_part_on_a_mismatch() {
    let (_tmp, out, src) = setup();
    let file = src.join("a.txt");
    std::fs::write(&file, b"hello digest").unwrap();
    let server = take(&out, &[]);
    let right = format!("Repr-Digest: sha-256=:{}:", sha_b64(b"hello digest"));
    let (code, body) = curl_status(&["-T", file.to_str().unwrap(), "-H", &right, &server.url]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"hello digest");
    let wrong = format!("Content-Digest: sha-256=:{}:", sha_b64(b"something else"));
    let url = format!("{}b.txt", server.url);
    let (code, body) = curl_status(&["-T", file.to_str().unwrap(), "-H", &wrong, &url]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("does not match"), "{body}");
    assert!(!out.join("b.txt").exists());
    assert_eq!(
        std::fs::read(out.join("b.txt.zcpart")).unwrap(),
        b"hello digest"
    );
    server.still_serving(&out);
}

#[test]
fn http_upload_max_size_is_413_before_a_byte() {
    let (_tmp, out, src) = setup();
    let file = src.join("big.bin");
    std::fs::write(&file, vec![7u8; 200_000]).unwrap();
    let server = take(&out, &["--max-size", "100000"]);
    let (code, body) = curl_status(&["-T", file.to_str().unwrap(), &server.url]);
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("--max-size"), "{body}");
    assert_eq!(listing(&out), Vec::<String>::new());
    server.still_serving(&out);
}

#[test]
fn http_upload_a_content_range_put_resumes_a_kept_part() {
    let (_tmp, out, src) = setup();
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 253) as u8).collect();
    let file = src.join("r.bin");
    std::fs::write(&file, &data).unwrap();
    let server = take(&out, &[]);
    let path = format!("{}r.bin", server.prefix());
    // the first 200000 bytes, then the client is cut
    let mut s = TcpStream::connect(server.addr).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&data[..200_000]).unwrap();
    drop(s);
    // HEAD tells how much is held, once the server has written it
    let mut held = 0;
    for _ in 0..200 {
        let r = raw(
            server.addr,
            format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        if status_of(&r) == 204 && r.contains("Upload-Offset: 200000") {
            held = 200_000;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(held, 200_000);
    assert!(!out.join("r.bin").exists());
    // curl -C N -T sends Content-Range: bytes N-END/TOTAL and the rest
    let url = format!("{}r.bin", server.url);
    let (code, body) = curl_status(&["-C", "200000", "-T", file.to_str().unwrap(), &url]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(std::fs::read(out.join("r.bin")).unwrap(), data);
    // past what is held: refused, with where to go on from
    std::fs::write(src.join("s.bin"), &data).unwrap();
    let url = format!("{}s.bin", server.url);
    let s_path = src.join("s.bin");
    let (code, body) = curl_status(&["-C", "100", "-T", s_path.to_str().unwrap(), &url]);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("continue from byte 0"), "{body}");
    server.still_serving(&out);
}

#[test]
fn http_upload_a_form_post_from_curl_lands_every_file_and_paths_beneath() {
    let (_tmp, out, src) = setup();
    std::fs::write(src.join("a.txt"), b"AAA").unwrap();
    std::fs::write(src.join("b.txt"), b"BB\r\n--not a boundary").unwrap();
    let server = take(&out, &[]);
    let page = Command::new("curl")
        .args(["-sS", &server.url])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains("multipart/form-data"), "{page}");
    assert!(page.contains("webkitdirectory"), "{page}");
    assert!(page.contains("name=\"viewport\""), "{page}");
    let a = format!("file=@{}", src.join("a.txt").display());
    let b = format!("file=@{}", src.join("b.txt").display());
    let c = format!("file=@{};filename=d/e/c.txt", src.join("a.txt").display());
    let (code, body) = curl_status(&["-F", &a, "-F", &b, "-F", &c, &server.url]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"AAA");
    assert_eq!(
        std::fs::read(out.join("b.txt")).unwrap(),
        b"BB\r\n--not a boundary"
    );
    assert_eq!(std::fs::read(out.join("d/e/c.txt")).unwrap(), b"AAA");
    // a second post of a.txt: refused by name, the rest of the form lands
    let f = format!("file=@{};filename=f.txt", src.join("b.txt").display());
    let (code, body) = curl_status(&["-F", &a, "-F", &f, &server.url]);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("f.txt: received"), "{body}");
    server.still_serving(&out);
}

#[test]
fn http_upload_hostile_names_never_write_outside_the_directory() {
    let (tmp, out, src) = setup();
    std::fs::write(src.join("x"), b"x").unwrap();
    let server = take(&out, &[]);
    let p = server.prefix();
    let long = "n".repeat(300);
    for (path, want) in [
        (format!("{p}..%2fx"), 400),
        (format!("{p}%2e%2e/x"), 400),
        (format!("{p}a/..%2f..%2fx"), 400),
        (format!("{p}a%00b"), 400),
        (format!("{p}{long}"), 400),
        (format!("{p}x.zcpart"), 400),
        (format!("{p}a%1bb"), 400),
    ] {
        let r = raw(
            server.addr,
            format!("PUT {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx").as_bytes(),
        );
        assert_eq!(status_of(&r), want, "{path}: {r}");
    }
    // through a form: the file names themselves
    for name in ["../x", "a/../../x", "/etc/x", &long] {
        let f = format!("file=@{};filename={name}", src.join("x").display());
        let (code, body) = curl_status(&["-F", &f, &server.url]);
        assert_eq!(code, 400, "{name}: {body}");
    }
    // chunked is refused, as are smuggling shapes
    let r = raw(
        server.addr,
        format!(
            "PUT {p}c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&r), 411, "{r}");
    assert_eq!(listing(&out), Vec::<String>::new());
    assert_eq!(listing(tmp.path()), vec!["out", "src"]);
    server.still_serving(&out);
}

/// Writes `dir/filler` until the file system is full.
fn fill(dir: &Path) {
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    for chunk in [64 << 10, 4096, 1] {
        let bytes = vec![0u8; chunk];
        while f.write_all(&bytes).is_ok() {}
    }
}

#[test]
fn http_upload_507_before_a_byte_and_a_form_that_fills_the_disk_lands_nothing() {
    let test = "http_upload_507_before_a_byte_and_a_form_that_fills_the_disk_lands_nothing";
    let (tmp, out, _src) = setup();
    let Some(_mount) = Mount::tmpfs(&out, "size=1m", test) else {
        return;
    };
    let server = take(&out, &[]);
    let p = server.prefix();
    // a PUT that does not fit: answered at its head, no body sent at all
    let head = format!("PUT {p}big.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n");
    let r = raw(server.addr, head.as_bytes());
    assert_eq!(status_of(&r), 507, "{r}");
    assert!(r.contains("do not fit"), "{r}");
    assert_eq!(listing(&out), Vec::<String>::new());

    // a form that fits when it starts, and the disk fills under it
    let boundary = "zcboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    let first = body.len() + 100_000;
    body.resize(body.len() + 400_000, b'a');
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    let head = format!(
        "POST {p} HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..first]).unwrap();
    // once the part is being written, the disk fills
    let part = out.join("a.bin.zcpart");
    for _ in 0..400 {
        if std::fs::metadata(&part).is_ok_and(|m| m.len() > 0) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(part.exists(), "the form's file is being written");
    fill(&out);
    let mut reader = s.try_clone().unwrap();
    let rest = body[first..].to_vec();
    let writer = thread::spawn(move || {
        let _ = s.write_all(&rest);
    });
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut reader, &mut answer);
    let _ = writer.join();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), 507, "{answer}");
    assert_eq!(
        listing(&out),
        vec!["filler"],
        "nothing half-published, no part kept"
    );
    std::fs::remove_file(out.join("filler")).unwrap();
    server.still_serving(&out);
    drop(tmp);
}

/// On one kept-alive connection: `first`, its answer read up to the end of
/// its head, then `then`; everything the server answered until it closed.
fn then_on_one_connection(addr: std::net::SocketAddr, first: &[u8], then: &[u8]) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(first).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "no answer to the first request");
        got.extend_from_slice(&chunk[..n]);
    }
    // a server that closed may refuse the rest: not an error here
    let _ = s.write_all(then);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn http_upload_a_body_left_after_an_answer_is_never_read_as_a_request() {
    let (_tmp, out, _src) = setup();
    // a kept part, so that a GET of its name is answered 204
    std::fs::write(out.join("k.bin.zcpart"), b"held").unwrap();
    let server = take(&out, &[]);
    let p = server.prefix();
    let smuggled = format!("GET {p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    // a form whose Content-Length also counts what follows its last
    // boundary: the server has its answer before that part is sent
    let form = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--B--\r\n";
    let head = format!(
        "POST {p} HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n{form}",
        form.len() + smuggled.len()
    );
    let r = then_on_one_connection(server.addr, head.as_bytes(), smuggled.as_bytes());
    assert_eq!(status_of(&r), 201, "{r}");
    assert_eq!(r.matches("HTTP/1.1 ").count(), 1, "{r}");
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"hello");
    // a GET with a body: refused, and the body is no request either
    let head = format!(
        "GET {p}k.bin HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    );
    let r = then_on_one_connection(server.addr, head.as_bytes(), smuggled.as_bytes());
    assert_eq!(status_of(&r), 400, "{r}");
    assert_eq!(r.matches("HTTP/1.1 ").count(), 1, "{r}");
    server.still_serving(&out);
}
