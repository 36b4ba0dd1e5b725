//! MAIL FROM / RCPT TO argument parsing never panics, and whatever it accepts
//! is bounded as RFC 5321 4.5.3.1 says.
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

fuzz_target!(|data: &[u8]| {
    check(data);
    let mapped: Vec<u8> = data
        .iter()
        .map(|b| RFC5321_ALPHABET[usize::from(*b) % RFC5321_ALPHABET.len()])
        .collect();
    check(&mapped);
});
