//! One-time codes such as `7-plaza-quartz-ember`: a number and three words,
//! made from the operating system's randomness, read back leniently (any
//! case, dashes or spaces), and checked against the word list before any
//! connection, so a typo is a usage error and never burns a code.

use super::words::WORDS;

/// Words after the number.
const WORDS_PER_CODE: usize = 3;
/// The number runs 1..=99: short to type, and 6.6 bits more.
const MAX_NUMBER: u32 = 99;

/// A fresh code: log2(99) + 3 x 10 = 36.6 bits. Enough when an attacker
/// gets one guess per code (a wrong one burns it): the odds of that guess
/// are 1 in 10^11.
pub fn generate() -> std::io::Result<String> {
    let mut number = 0u32;
    while number == 0 {
        let mut byte = [0u8; 1];
        getrandom::getrandom(&mut byte).map_err(std::io::Error::other)?;
        // 198 = 2 x 99: taking the byte modulo 99 below it has no bias
        if u32::from(byte[0]) < 2 * MAX_NUMBER {
            number = u32::from(byte[0]) % MAX_NUMBER + 1;
        }
    }
    let mut bytes = [0u8; 2 * WORDS_PER_CODE];
    getrandom::getrandom(&mut bytes).map_err(std::io::Error::other)?;
    let mut code = number.to_string();
    for pair in bytes.chunks_exact(2) {
        // 1024 words: ten bits of each pair, no bias
        let index = usize::from(u16::from_be_bytes([pair[0], pair[1]])) % WORDS.len();
        code.push('-');
        code.push_str(WORDS[index]);
    }
    Ok(code)
}

/// The canonical form of a code as typed (`7 Plaza quartz-ember` gives
/// `7-plaza-quartz-ember`), or why it is not one.
pub fn parse(text: &str) -> Result<String, String> {
    let lower = text.trim().to_lowercase();
    let parts: Vec<&str> = lower
        .split(|c: char| c == '-' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    let shape = "a code is a number and three words, like 7-plaza-quartz-ember";
    let [number, words @ ..] = parts.as_slice() else {
        return Err(shape.into());
    };
    if words.len() != WORDS_PER_CODE {
        return Err(shape.into());
    }
    match number.parse::<u32>() {
        Ok(n) if (1..=MAX_NUMBER).contains(&n) && !number.starts_with('0') => {}
        _ => return Err(format!("'{number}' does not start a code: {shape}")),
    }
    for word in words {
        if WORDS.binary_search(word).is_err() {
            return Err(format!(
                "'{word}' is not a word of zc's codes (a typo?): {shape}"
            ));
        }
    }
    Ok(format!("{number}-{}", words.join("-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_list_is_sorted_unique_and_plain() {
        assert!(
            WORDS.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for w in WORDS {
            assert!((2..=8).contains(&w.len()), "{w}");
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
    }

    #[test]
    fn fresh_codes_parse_back_to_themselves() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let code = generate().unwrap();
            assert_eq!(parse(&code).unwrap(), code);
            seen.insert(code);
        }
        assert!(seen.len() > 190, "codes repeat: {}", seen.len());
    }

    #[test]
    fn codes_are_read_leniently_and_checked() {
        assert_eq!(
            parse(" 7 Plaza  QUARTZ-ember ").unwrap(),
            "7-plaza-quartz-ember"
        );
        assert!(parse("7-plaza-quartz").is_err());
        assert!(parse("7-plaza-quartz-ember-zoo").is_err());
        assert!(parse("0-plaza-quartz-ember").is_err());
        assert!(parse("100-plaza-quartz-ember").is_err());
        assert!(parse("07-plaza-quartz-ember").is_err());
        let typo = parse("7-plaza-qartz-ember").unwrap_err();
        assert!(typo.contains("'qartz'"), "{typo}");
        assert!(parse("big.iso").is_err());
        assert!(parse("").is_err());
    }
}
