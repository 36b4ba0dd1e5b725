//! LineReader: never panics, holds at most max_line bytes of a partial line,
//! and gives the same items whatever the split of the input and whether lines
//! are taken all at once or one at a time with `max_lines`.
#![no_main]

use _core::framing::{LineReader, OwnedItem};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // First byte: options; second: where to cut; the rest is the stream.
    let [opts, cut, data @ ..] = input else {
        return;
    };
    let max_line = usize::from(opts & 0x3f);
    let allow_bare_lf = opts & 0x40 != 0;

    let mut whole = LineReader::new(max_line, allow_bare_lf);
    let want = whole.feed_vec(data, None);
    let left = whole.take_buffered();

    // Split in two at `cut`, and in pieces of `cut % 7 + 1` bytes.
    let at = usize::from(*cut) % (data.len() + 1);
    let mut two = LineReader::new(max_line, allow_bare_lf);
    let mut got = two.feed_vec(&data[..at], None);
    got.extend(two.feed_vec(&data[at..], None));
    assert_eq!(got, want);
    assert_eq!(two.take_buffered(), left);

    let mut pieces = LineReader::new(max_line, allow_bare_lf);
    let mut got = Vec::new();
    for chunk in data.chunks(usize::from(*cut % 7) + 1) {
        got.extend(pieces.feed_vec(chunk, None));
        // A partial line is held only while it may still be returned.
        assert!(pieces.buffered() <= max_line + 1);
    }
    assert_eq!(got, want);

    // One line at a time, as an SMTP session reads commands.
    let mut stepwise = LineReader::new(max_line, allow_bare_lf);
    let mut got = stepwise.feed_vec(data, Some(1));
    loop {
        let next = stepwise.feed_vec(b"", Some(1));
        assert!(next.len() <= 1);
        if next.is_empty() {
            break;
        }
        got.extend(next);
    }
    assert_eq!(got, want);
    assert_eq!(stepwise.take_buffered(), left);

    // Every returned line is within bounds and free of CR and LF.
    for item in &want {
        if let OwnedItem::Line(line) = item {
            assert!(line.len() <= max_line);
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
        }
    }
});
