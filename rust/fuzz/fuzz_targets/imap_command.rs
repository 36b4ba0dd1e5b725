//! IMAP command grammar: never panics or overflows the stack on any input,
//! and an error's offset always lies within the input.
#![no_main]

use _core::imap::command::{parse_command, CommandLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = CommandLimits {
        max_depth: 16,
        max_ranges: 64,
    };
    match parse_command(data, limits) {
        Ok(cmd) => assert!(!cmd.tag.is_empty()),
        Err(e) => assert!(e.offset() <= data.len()),
    }
});
