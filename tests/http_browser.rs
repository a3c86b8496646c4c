//! `zc send --http` and `zc recv --http` in a real browser: headless
//! Chromium driven through the DevTools protocol by tests/browser/cdp.py.
//! Chromium and python3 are required (scripts/test.sh installs Chromium):
//! without them these tests fail, they never skip.

#![cfg(unix)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::http::*;
use common::*;

/// The methods of the requests that reached `server` once `n` did, past
/// the favicon the browser asks for on its own.
fn methods(server: &HttpServer, n: usize) -> Vec<String> {
    for _ in 0..400 {
        let methods: Vec<String> = server
            .requests()
            .iter()
            .filter(|e| e["path"] != "/favicon.ico")
            .map(|e| e["method"].as_str().unwrap_or("").to_string())
            .collect();
        if methods.len() >= n {
            return methods;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("fewer than {n} requests: {:?}", server.requests());
}

/// Runs `tests/browser/cdp.py ARGS...` and returns the JSON it prints.
fn browser(args: &[&str]) -> serde_json::Value {
    require("python3");
    require("chromium");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/cdp.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("python3 runs (the browser driver)");
    let mut child = Guard(child);
    let status = wait_timeout(&mut child, LONG_TIMEOUT, "the browser driver");
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "cdp.py {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A small tree with subdirectories, a space and a non-ASCII name.
fn tree(root: &Path) -> PathBuf {
    let top = root.join("photos");
    std::fs::create_dir_all(top.join("2024 trip/day 1")).unwrap();
    std::fs::write(top.join("a.txt"), b"hello\n").unwrap();
    random_file(&top.join("b é.bin"), 150_000, 7);
    random_file(&top.join("2024 trip/c.jpg"), 40_000, 8);
    std::fs::write(top.join("2024 trip/day 1/d.txt"), b"day one\n").unwrap();
    top
}

/// Every file below `dir`, by its path relative to `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            match path.is_dir() {
                true => dirs.push(path),
                false => out.push(path.strip_prefix(dir).unwrap().to_path_buf()),
            }
        }
    }
    out.sort();
    out
}

/// `tree` to upload from, and `recv --http` taking uploads into `out`.
fn uploads() -> (tempfile::TempDir, PathBuf, PathBuf, HttpServer) {
    let dir = tempfile::tempdir().unwrap();
    let top = tree(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let server = take(&out, &[]);
    (dir, top, out, server)
}

fn link<'a>(page: &'a serde_json::Value, text: &str) -> &'a serde_json::Value {
    page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["text"] == text)
        .unwrap_or_else(|| panic!("no link {text:?} in {page}"))
}

#[test]
fn http_browser_index_lists_the_tree_and_its_links_download_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let top = tree(dir.path());
    let server = serve(&[], &[&top]);
    let root = browser(&["index", &server.url]);
    let photos = link(&root, "photos/")["href"].as_str().unwrap().to_string();
    let page = browser(&["index", &photos]);
    let texts: Vec<&str> = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["../", "2024 trip/", "a.txt", "b é.bin"], "{page}");
    assert_eq!(link(&page, "a.txt")["size"], "6 B");
    assert_eq!(link(&page, "b é.bin")["size"], "146.5 KiB");
    assert_eq!(link(&page, "2024 trip/")["size"], "");

    // the hrefs as the browser resolved them, fetched as they stand
    let fetched = dir.path().join("fetched");
    for (text, source) in [
        ("b é.bin", top.join("b é.bin")),
        ("a.txt", top.join("a.txt")),
    ] {
        let href = link(&page, text)["href"].as_str().unwrap();
        let got = Command::new("curl")
            .args(["-sSf", "--max-time", "60", "-o"])
            .arg(&fetched)
            .arg(href)
            .status()
            .expect("curl runs (scripts/test.sh installs it)");
        assert!(got.success(), "{href}");
        assert_same_file(&source, &fetched);
    }
    let trip = browser(&["index", link(&page, "2024 trip/")["href"].as_str().unwrap()]);
    let day = browser(&["index", link(&trip, "day 1/")["href"].as_str().unwrap()]);
    assert_eq!(link(&day, "d.txt")["size"], "8 B");
    let up = browser(&["index", link(&day, "../")["href"].as_str().unwrap()]);
    assert_eq!(up["links"], trip["links"], "../ leads back up");
}

#[test]
fn http_browser_upload_page_sends_three_files_then_a_folder_with_its_script() {
    let (_dir, top, out, server) = uploads();
    let three = [
        top.join("a.txt"),
        top.join("b é.bin"),
        top.join("2024 trip/c.jpg"),
    ];
    let mut args = vec!["upload".to_string(), server.url.clone()];
    args.extend(three.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let said = browser(&args);
    assert_eq!(
        said["lines"],
        serde_json::json!(["a.txt: received", "b é.bin: received", "c.jpg: received"])
    );
    for source in &three {
        assert_same_file(source, &out.join(source.file_name().unwrap()));
    }

    let trip = top.join("2024 trip");
    let said = browser(&["upload", "--folder", &server.url, trip.to_str().unwrap()]);
    assert_eq!(said["lines"].as_array().unwrap().len(), 2, "{said}");
    for rel in files_below(&trip) {
        assert_same_file(&trip.join(&rel), &out.join("2024 trip").join(&rel));
    }
    assert_eq!(files_below(&out).len(), 5, "{:?}", files_below(&out));
    // one page load each, then one PUT per file: the page's script sent them
    let methods = methods(&server, 7);
    assert_eq!(methods, ["GET", "PUT", "PUT", "PUT", "GET", "PUT", "PUT"]);
}

#[test]
fn http_browser_upload_page_with_scripts_off_posts_the_plain_form() {
    let (_dir, top, out, server) = uploads();
    let (a, b) = (top.join("a.txt"), top.join("b é.bin"));
    let said = browser(&[
        "upload",
        "--noscript",
        &server.url,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let page = said["html"].as_str().unwrap();
    assert!(page.contains("a.txt: received, 6 bytes"), "{page}");
    assert!(page.contains("b é.bin: received, 150000 bytes"), "{page}");
    assert_same_file(&a, &out.join("a.txt"));
    assert_same_file(&b, &out.join("b é.bin"));

    let trip = top.join("2024 trip");
    let said = browser(&[
        "upload",
        "--noscript",
        "--folder",
        &server.url,
        trip.to_str().unwrap(),
    ]);
    let page = said["html"].as_str().unwrap();
    assert!(page.contains("2024 trip/day 1/d.txt: received"), "{page}");
    for rel in files_below(&trip) {
        assert_same_file(&trip.join(&rel), &out.join("2024 trip").join(&rel));
    }
    assert_eq!(methods(&server, 4), ["GET", "POST", "GET", "POST"]);
}

/// A tap target a finger can hit: Apple's and Google's guides say 44 CSS px.
const TAP: f64 = 44.0;

fn fits_a_phone(sizes: &serde_json::Value, shot: &Path) {
    let scroll = sizes["scrollWidth"].as_f64().unwrap();
    let inner = sizes["innerWidth"].as_f64().unwrap();
    assert_eq!(inner, 390.0, "the phone's viewport");
    assert!(
        scroll <= inner,
        "{}: scrolls sideways ({scroll} > {inner})",
        shot.display()
    );
}

#[test]
fn http_browser_pages_fit_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    let top = tree(dir.path());
    // a long name without a space must wrap, not widen the page
    std::fs::write(top.join("x".repeat(120)), b"x").unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("http_browser");
    std::fs::create_dir_all(&shots).unwrap();

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let uploads = take(&out, &[]);
    let shot = shots.join("phone-upload.png");
    let sizes = browser(&["phone", &uploads.url, shot.to_str().unwrap()]);
    say(&format!("the upload page on a phone: {}", shot.display()));
    fits_a_phone(&sizes, &shot);
    for what in ["files", "folder", "submit"] {
        let b = &sizes[what];
        assert_eq!(b["visible"], true, "{what}: {sizes}");
        let height = b["height"].as_f64().unwrap();
        assert!(height >= TAP, "{what} is {height} px tall: {sizes}");
        let right = b["left"].as_f64().unwrap() + b["width"].as_f64().unwrap();
        assert!(right <= 390.0, "{what} reaches past the screen: {sizes}");
    }

    let files = serve(&[], &[&top]);
    let photos = format!("{}photos/", files.url);
    let shot = shots.join("phone-index.png");
    let sizes = browser(&["phone", &photos, shot.to_str().unwrap()]);
    say(&format!("the index page on a phone: {}", shot.display()));
    fits_a_phone(&sizes, &shot);
    let links = sizes["links"].as_array().unwrap();
    assert_eq!(links.len(), 5, "{sizes}");
    for height in links {
        let height = height.as_f64().unwrap();
        assert!(height >= TAP, "a link is {height} px tall: {sizes}");
    }
}
