//! Sequence sets (RFC 9051 section 9, RFC 5182 for `$`).
//!
//! ```text
//! sequence-set    = (seq-number / seq-range) ["," sequence-set]
//!                   ; set of seq-number values, regardless of order.
//! seq-range       = seq-number ":" seq-number
//! seq-number      = nz-number / "*"
//! nz-number       = digit-nz *DIGIT        ; non-zero unsigned 32-bit integer
//! search-modifier = "$"                    ; RFC 5182 saved search result
//! ```

/// One number of a set: `None` stands for `*` (the largest in use).
pub type SeqNumber = Option<u32>;

/// A parsed sequence set: ranges as written (`a:b` kept as `(a, b)`, a single
/// number `n` as `(n, n)`), or the saved result `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(Vec<(SeqNumber, SeqNumber)>),
    Saved,
}

impl SequenceSet {
    /// Whether `n` is in the set when `*` stands for `largest`. `$` is not
    /// known here and contains nothing.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        match self {
            SequenceSet::Saved => false,
            SequenceSet::Ranges(ranges) => ranges.iter().any(|&(a, b)| {
                let a = a.unwrap_or(largest);
                let b = b.unwrap_or(largest);
                a.min(b) <= n && n <= a.max(b)
            }),
        }
    }
}
