//! RFC 2047: decoding never panics; encoding any text and decoding it gives
//! the text back, with every line within max_line.
#![no_main]

use _core::rfc2047;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (knob, data) = match input.split_first() {
        Some((k, d)) => (usize::from(*k), d),
        None => (0, input),
    };
    let mut none = |_: &str, _: &[u8]| None;
    let _ = rfc2047::decode_header(data, &mut none);

    if let Ok(text) = std::str::from_utf8(data) {
        let max_line = 26 + knob % 100;
        let mut utf8 = rfc2047::builtin_encoder("utf-8").expect("utf-8 is built in");
        let encoded = rfc2047::encode_header(text, "utf-8", max_line, &mut utf8)
            .expect("26 columns hold any one-character encoded-word");
        assert_eq!(rfc2047::decode_header(encoded.as_bytes(), &mut none), text);
        for line in encoded.split("\r\n") {
            let only_ws = line.bytes().all(|c| c == b' ' || c == b'\t');
            assert!(line.len() <= max_line || only_ws, "{line:?}");
        }
    }
});
