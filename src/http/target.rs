//! A request target's path as names: percent-decoded once, each name a
//! plain one, or refused. Nothing here touches the file system.

/// The names of a path, and whether it ended with `/` (a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub names: Vec<Vec<u8>>,
    pub dir: bool,
}

/// Splits `/a/b%20c/` into names. Refused (None): no leading `/`, an
/// empty name inside (`//`), a bad `%` escape, and any name that is `.` or
/// `..` or holds `/`, `\`, NUL (after decoding; `%2e%2e`, `%2f` and `%00`
/// decode into exactly those). The query is dropped.
pub fn names(target: &str) -> Option<Names> {
    let path = target.split(['?', '#']).next()?;
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Names {
            names: Vec::new(),
            dir: true,
        });
    }
    let dir = rest.ends_with('/');
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let names = rest
        .split('/')
        .map(|raw| decode(raw).filter(|name| plain(name)))
        .collect::<Option<Vec<_>>>()?;
    Some(Names { names, dir })
}

fn plain(name: &[u8]) -> bool {
    let windows_only = cfg!(windows) && name.contains(&b':');
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.iter().any(|&b| b == b'/' || b == b'\\' || b == 0)
        && !windows_only
}

/// Percent-decodes once; `None` on a malformed escape.
pub fn decode(raw: &str) -> Option<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(
                u8::from_str_radix(text, 16)
                    .ok()
                    .filter(|_| hex.iter().all(u8::is_ascii_hexdigit))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-encodes a name for a URL path or an RFC 8187 value: what is
/// not unreserved is escaped.
pub fn encode(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_target_names() {
        let n = names("/tok/a%20b/c?x=1").unwrap();
        assert_eq!(
            n.names,
            vec![b"tok".to_vec(), b"a b".to_vec(), b"c".to_vec()]
        );
        assert!(!n.dir);
        assert!(names("/tok/d/").unwrap().dir);
        assert_eq!(names("/").unwrap().names.len(), 0);
        for bad in [
            "/tok/../x",
            "/tok/%2e%2e/x",
            "/tok/%2E%2e",
            "/tok/a%2fb",
            "/tok/a%00",
            "/tok//x",
            "/tok/.",
            "/tok/a%zz",
            "/tok/a%4",
            "tok",
            "/tok/a%5cb",
            "/tok/%+1",
        ] {
            assert_eq!(names(bad), None, "{bad}");
        }
        // decoded once: %252e is the three characters %2e, a plain name
        assert_eq!(
            names("/%252e%252e").unwrap().names,
            vec![b"%2e%2e".to_vec()]
        );
        assert_eq!(encode("a b/é".as_bytes()), "a%20b%2F%C3%A9");
    }
}
