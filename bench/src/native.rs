//! The baseline: plugins/pii-mask's logic compiled into the host, over the
//! same Arrow batches. `lower(trim(email))` for email columns and the lower-case
//! hex of `sha256(salt || value)` for hash columns, NULL stays NULL, written
//! exactly as the plugin writes it (`iter().map(..).collect::<StringArray>()`).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Keep,
    Email,
    Hash,
}

/// Which SHA-256 the baseline uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sha {
    /// The `sha2` crate, as the plugin uses it. On x86_64 it detects the SHA
    /// extensions at run time and uses them when the CPU has them; the WASM
    /// build cannot (wasm32 has no such instructions) and runs the portable code.
    Sha2,
    /// A portable scalar SHA-256 (below): what the WASM build computes, with
    /// no special instructions, compiled natively.
    Scalar,
}

/// One masked batch, as pii-mask's `push` builds it.
pub fn mask(batch: &RecordBatch, actions: &[Action], salt: &str, sha: Sha) -> RecordBatch {
    let mut columns = batch.columns().to_vec();
    for (column, action) in columns.iter_mut().zip(actions) {
        let masked: StringArray = match action {
            Action::Keep => continue,
            Action::Email => column.as_string::<i32>().iter().map(|v| v.map(|s| s.trim().to_lowercase())).collect(),
            Action::Hash => column
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|s| match sha {
                        Sha::Sha2 => salted_sha256(salt, s),
                        Sha::Scalar => hex(&scalar_sha256(&[salt.as_bytes(), s.as_bytes()])),
                    })
                })
                .collect(),
        };
        *column = Arc::new(masked) as ArrayRef;
    }
    RecordBatch::try_new(batch.schema(), columns).expect("same schema")
}

/// Lower-case hex of `sha256(salt || value)`, as in plugins/pii-mask.
fn salted_sha256(salt: &str, value: &str) -> String {
    let digest = Sha256::new().chain_update(salt).chain_update(value).finalize();
    hex(&digest)
}

fn hex(digest: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).expect("a nibble"));
        hex.push(char::from_digit(u32::from(byte & 15), 16).expect("a nibble"));
    }
    hex
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// A portable SHA-256 of the concatenation of `parts` (FIPS 180-4).
pub fn scalar_sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut block = [0u8; 64];
    let mut filled = 0;
    let mut total: u64 = 0;
    for part in parts {
        let mut data = *part;
        total += data.len() as u64;
        while !data.is_empty() {
            let n = (64 - filled).min(data.len());
            block[filled..filled + n].copy_from_slice(&data[..n]);
            filled += n;
            data = &data[n..];
            if filled == 64 {
                compress(&mut h, &block);
                filled = 0;
            }
        }
    }
    block[filled] = 0x80;
    filled += 1;
    if filled > 56 {
        block[filled..].fill(0);
        compress(&mut h, &block);
        filled = 0;
    }
    block[filled..56].fill(0);
    block[56..].copy_from_slice(&(total * 8).to_be_bytes());
    compress(&mut h, &block);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn compress(h: &mut [u32; 8], block: &[u8; 64]) {
    let mut w = [0u32; 64];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes(word.try_into().expect("4 bytes"));
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        hh = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (state, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
        *state = state.wrapping_add(v);
    }
}

/// Checks the scalar SHA-256 against `sha2` (run by the bench before timing).
pub fn check_scalar_sha256() {
    for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 200] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let (left, right) = data.split_at(len / 3);
        assert_eq!(
            scalar_sha256(&[left, right]).as_slice(),
            Sha256::digest(&data).as_slice(),
            "scalar SHA-256 of {len} bytes"
        );
    }
}
