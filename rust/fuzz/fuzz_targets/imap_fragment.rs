//! IMAP Fragmenter: never panics; the fragments do not depend on where the
//! input is split; no command is longer than the limit; every byte fed is
//! either returned, dropped as poisoned, or still pending.
#![no_main]

use _core::imap::fragment::{Fragment, Fragmenter};
use libfuzzer_sys::fuzz_target;

const MAX_COMMAND: usize = 256;
const MAX_LITERAL: u64 = 64;

fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Vec<Fragment> {
    let mut f = Fragmenter::new(MAX_COMMAND, MAX_LITERAL);
    let mut out = Vec::new();
    for c in chunks {
        f.feed(c);
        while let Some(x) = f.next() {
            match &x {
                Fragment::LiteralAnnounced { fits, .. } => {
                    let r = if *fits {
                        f.accept_literal()
                    } else {
                        f.reject_literal()
                    };
                    assert!(r.is_ok());
                }
                Fragment::Command(c) => assert!(c.len() <= MAX_COMMAND),
                Fragment::Line(l) => assert!(l.len() <= MAX_COMMAND),
                Fragment::Poisoned { .. } => {}
            }
            out.push(x);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let whole = run(std::iter::once(data));
    let cut = usize::from(cut) % (data.len() + 1);
    let halves = run([&data[..cut], &data[cut..]].into_iter());
    assert_eq!(whole, halves);
    let step = usize::from(cut % 7) + 1;
    let pieces = run(data.chunks(step));
    assert_eq!(whole, pieces);
});
