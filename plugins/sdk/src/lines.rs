//! Lines from a byte stream that arrives in chunks of any size: what line-based
//! ingest plugins (CSV, JSON Lines) need, since a chunk boundary may fall in
//! the middle of a line or of a UTF-8 sequence.

/// Buffers the unfinished tail of the input between chunks.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Calls `on_line` for every line that `chunk` completes, in order,
    /// without its `\n`, and keeps the unfinished rest for the next call.
    pub fn feed<E>(&mut self, chunk: &[u8], mut on_line: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(nl);
            rest = &tail[1..];
            if self.pending.is_empty() {
                on_line(line)?;
            } else {
                self.pending.extend_from_slice(line);
                let result = on_line(&self.pending);
                self.pending.clear(); // keeps the allocation
                result?;
            }
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Bytes of the line not finished yet: what a caller bounds to refuse a
    /// line that is too long before all of it has arrived.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Ends the input: calls `on_line` for a last line that had no `\n`.
    pub fn finish<E>(&mut self, mut on_line: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let last = std::mem::take(&mut self.pending);
        on_line(&last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let mut push = |l: &[u8]| -> Result<(), ()> {
            out.push(String::from_utf8(l.to_vec()).unwrap());
            Ok(())
        };
        for chunk in chunks {
            lines.feed(chunk, &mut push).unwrap();
        }
        lines.finish(&mut push).unwrap();
        out
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let whole = split(&[b"a,b\nccc\n\ndd"]);
        assert_eq!(whole, ["a,b", "ccc", "", "dd"]);
        assert_eq!(split(&[b"a,", b"b\ncc", b"c\n", b"\nd", b"d"]), whole);
        assert_eq!(split(&[b"x\n"]), ["x"]);
    }
}
