//! Hostile clients written with Python's http.client (tests/http/hostile.py)
//! against `zc recv --http` and `zc send --http`: smuggling shapes on uploads,
//! NUL in a form's file names, a body cut short, wrong tokens, pipelining and
//! odd ranges on downloads. Each case gets its status, and the server still
//! serves after each one; what tests/http.rs's raw-socket cases already
//! cover for downloads is not repeated here.

#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::Command;

use common::http::*;
use common::*;

/// Runs `hostile.py WHAT URL` and checks every case got its status and the
/// server served the plain request after each.
fn hostile(what: &str, url: &str) -> serde_json::Value {
    require("python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http/hostile.py");
    let out = Command::new("python3")
        .arg(script)
        .args([what, url])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hostile.py {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let cases = report["cases"].as_array().unwrap();
    let wrong: Vec<_> = cases.iter().filter(|c| c["got"] != c["want"]).collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    let serving = report["serving"].as_array().unwrap();
    assert_eq!(serving.len(), cases.len());
    for (case, status) in cases.iter().zip(serving) {
        assert_eq!(status, 200, "not serving after {}", case["what"]);
    }
    report
}

#[test]
fn http_hostile_uploads_get_their_status_and_write_nothing_outside_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let server = take(&out, &[]);
    hostile("uploads", &server.url);
    // the PUT cut at 40000 of 100000 bytes left its part for a resume, and
    // nothing else was written: no refused name, no form, nothing beside out/
    assert_eq!(listing(&out), ["short.bin.zcpart"]);
    assert_eq!(
        std::fs::metadata(out.join("short.bin.zcpart"))
            .unwrap()
            .len(),
        40_000
    );
    assert_eq!(listing(tmp.path()), ["out"]);
    server.still_serving(&out);
}

#[test]
fn http_hostile_downloads_get_their_status_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    random_file(&src, 1000, 9);
    let server = serve(&[], &[&src]);
    hostile("downloads", &server.url);
    let requests = server.requests_at_least(1);
    assert!(
        requests.iter().all(|r| r["bytes"].as_u64() <= Some(1000)),
        "no answer sent more than the file: {requests:?}"
    );
}
