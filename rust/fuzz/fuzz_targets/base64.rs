//! base64: never panics; encode then decode gives the input back; the
//! streaming lenient decoder gives the same bytes for any split; whatever
//! strict decoding accepts, lenient decoding reads the same way; the in-place
//! path for encoder-shaped MIME agrees with the general one.
#![no_main]

use _core::base64;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (knob, data) = match input.split_first() {
        Some((k, d)) => (usize::from(*k), d),
        None => (0, input),
    };
    let line = knob % 80 + 1;
    let encoded = base64::encode(data, Some(line));
    assert_eq!(encoded.len(), base64::encoded_len(data.len(), Some(line)));
    assert_eq!(base64::decode_lenient(&encoded), data);
    assert_eq!(base64::decode_strict(&base64::encode(data, None)).as_deref(), Ok(data));

    // Arbitrary input as base64 text.
    let whole = base64::decode_lenient(data);
    let cut = if data.is_empty() { 0 } else { knob % (data.len() + 1) };
    let mut split = Vec::new();
    let mut d = base64::Decoder::new();
    d.feed(&data[..cut], &mut split);
    d.feed(&data[cut..], &mut split);
    d.finish(&mut split);
    assert_eq!(split, whole);
    // The in-place path for encoder-shaped MIME text agrees with the general one.
    if let Some(len) = base64::canonical_mime_len(data) {
        let mut dst = vec![0u8; len];
        if base64::decode_mime_into(data, &mut dst) {
            assert_eq!(dst, whole);
        }
    }
    if let Some(len) = base64::canonical_mime_len(&encoded) {
        let mut dst = vec![0u8; len];
        assert!(line != 76 || base64::decode_mime_into(&encoded, &mut dst));
        assert!(line != 76 || dst == data);
    }
    match base64::decode_strict(data) {
        Ok(strict) => assert_eq!(strict, whole),
        Err(e) => assert!(e.offset() <= data.len()),
    }
});
