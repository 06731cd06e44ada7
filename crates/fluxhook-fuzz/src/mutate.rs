//! Deterministic mutations, so that `cargo test` runs each target over more
//! than its seeds without an instrumented build, the same inputs every run.

/// Bytes that reach edge cases of the parsers: field separators, JSON and
/// CEL punctuation, deep nesting, numbers at their limits, non-UTF-8.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\n",
    b"\"",
    b"'",
    b"\\u0000",
    b"\\ud800",
    b"{}",
    b"[]",
    b"null",
    b"-0",
    b"1e309",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"\xff\xfe",
    b"\xe2\x80\xae",
    b"%",
    b"%zz",
    b"//",
    b"../",
    b"@",
    b"://",
    b"refs/heads/",
    b"sha256=",
];

/// `count` inputs derived from `seeds` (each one mutated one to four
/// times: bytes flipped, inserted, deleted, duplicated, deep nesting
/// inserted, or two seeds spliced), the same for the same arguments.
///
/// ```
/// let seeds = vec![b"{\"a\": 1}".to_vec()];
/// let a: Vec<_> = fluxhook_fuzz::mutations(&seeds, 10, 7).collect();
/// let b: Vec<_> = fluxhook_fuzz::mutations(&seeds, 10, 7).collect();
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 10);
/// ```
pub fn mutations(seeds: &[Vec<u8>], count: usize, seed: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..count).filter_map(move |_| {
        let mut input = seeds.get(rng.below(seeds.len()))?.clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut input, seeds, &mut rng);
        }
        Some(input)
    })
}

fn mutate(input: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut Rng) {
    let at = rng.below(input.len() + 1);
    match rng.below(7) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 => input.insert(at, rng.byte()),
        2 if !input.is_empty() => {
            let end = (at + 1 + rng.below(16)).min(input.len());
            input.drain(at.min(end)..end);
        }
        3 if !input.is_empty() => {
            let start = rng.below(input.len());
            let end = (start + 1 + rng.below(64)).min(input.len());
            let copy = input[start..end].to_vec();
            input.splice(at..at, copy);
        }
        4 => {
            let open = [b"[".as_slice(), b"{\"a\":", b"(", b"!", b"a."][rng.below(5)];
            let depth = 1 + rng.below(300);
            input.splice(at..at, open.repeat(depth));
        }
        5 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let from = rng.below(other.len() + 1);
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
        _ => {
            let value = INTERESTING[rng.below(INTERESTING.len())];
            input.splice(at..at, value.iter().copied());
        }
    }
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        match u64::try_from(n) {
            Ok(0) | Err(_) => 0,
            Ok(n) => usize::try_from(self.next() % n).unwrap_or(0),
        }
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}
