//! quoted-printable: never panics; encode then decode gives the input back;
//! every encoded line fits the line length and holds only printable ASCII.
#![no_main]

use _core::qp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (knob, data) = match input.split_first() {
        Some((k, d)) => (usize::from(*k), d),
        None => (0, input),
    };
    let line = knob % 100 + qp::MIN_LINE_LENGTH;
    let encoded = qp::encode(data, false, line);
    assert_eq!(qp::decode(&encoded, false), data);
    for l in encoded.split(|&c| c == b'\n') {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        assert!(l.len() <= line);
        assert!(l.iter().all(|&c| c == b'\t' || (32..127).contains(&c)));
        assert!(!l.ends_with(b" ") && !l.ends_with(b"\t"));
    }
    let header = qp::encode(data, true, 76);
    assert_eq!(header.len(), qp::header_encoded_len(data));
    assert_eq!(qp::decode(&header, true), data);

    // Arbitrary input as quoted-printable: never longer than the input.
    assert!(qp::decode(data, false).len() <= data.len());
    assert!(qp::decode(data, true).len() <= data.len());
});
