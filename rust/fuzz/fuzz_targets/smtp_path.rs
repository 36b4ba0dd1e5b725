//! MAIL FROM / RCPT TO argument parsing never panics, whatever it accepts is
//! bounded as RFC 5321 4.5.3.1 says, and parse -> write -> parse is stable.
//!
//! Like smtp-proto's target, each input also runs once mapped into the
//! RFC 5321 alphabet, so random bytes get past "<" and reach the deeper grammar.
#![no_main]

use libfuzzer_sys::fuzz_target;
use _core::smtp::{parse_mail_from, parse_rcpt_to, EnvelopePath, MAX_PATH};

const RFC5321_ALPHABET: &[u8] =
    b"0123456789abcdefghijklmnopqrstuvwxyzAB:=-<>,;@.[]\" \\+IPv6SZE\xc3\xa9";

fn check(data: &[u8]) {
    for utf8 in [false, true] {
        for path in [parse_mail_from(data, utf8), parse_rcpt_to(data, utf8)]
            .into_iter()
            .flatten()
        {
            let EnvelopePath { address, params } = path;
            assert!(address.len() <= MAX_PATH);
            assert!(!address.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0));
            for (k, _) in params {
                assert!(!k.is_empty());
            }
        }
    }
}

/// Parse, write the result back as a canonical argument, parse again: same result.
fn round_trip(data: &[u8]) {
    if let Ok(first) = parse_mail_from(data, true) {
        let mut text = format!("<{}>", first.address);
        for (k, v) in &first.params {
            text.push(' ');
            text.push_str(k);
            if let Some(v) = v {
                text.push('=');
                text.push_str(v);
            }
        }
        match parse_mail_from(text.as_bytes(), true) {
            Ok(second) => assert_eq!(first, second),
            Err(e) => panic!("re-parse of {text:?} failed: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip(data);
    check(data);
    let mapped: Vec<u8> = data
        .iter()
        .map(|b| RFC5321_ALPHABET[usize::from(*b) % RFC5321_ALPHABET.len()])
        .collect();
    check(&mapped);
    round_trip(&mapped);
});
