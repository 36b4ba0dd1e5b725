//! Fuzz the MIME scanner: structure, envelope and every section of any input
//! must never panic, and the header/text split must cover the message exactly.
#![no_main]

use _core::mime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mime::bodystructure(data, true);
    let _ = mime::envelope(data);
    for spec in [
        &b""[..],
        b"HEADER",
        b"TEXT",
        b"1",
        b"1.MIME",
        b"2.1",
        b"2.HEADER.FIELDS (From)",
    ] {
        if let Ok(s) = mime::parse_section(spec) {
            let _ = mime::section(data, &s);
        }
    }
    for path in [&[1u32][..], &[2], &[1, 1], &[2, 1]] {
        let _ = mime::binary(data, path);
    }
    let (h, b) = mime::split_header(data, 0, data.len());
    assert_eq!(h.start, 0);
    assert_eq!(h.end, b.start);
    assert_eq!(b.end, data.len());
    let _ = mime::parse_section(data);
});
