//! The bytes a session printed since the last `read_output`, bounded so that a VM
//! nobody reads from cannot grow memory without limit. A ring: dropping the oldest
//! bytes costs what is dropped, not what is kept.

use std::collections::VecDeque;

pub struct OutputBuffer {
    data: VecDeque<u8>,
    limit: usize,
    dropped: u64,
    /// Every byte ever pushed, counted: the offset just past the buffer's last byte,
    /// so a searcher can remember how far it has looked.
    end: u64,
}

impl OutputBuffer {
    pub fn new(limit: usize) -> Self {
        OutputBuffer {
            data: VecDeque::new(),
            limit,
            dropped: 0,
            end: 0,
        }
    }

    /// Appends output, dropping the oldest bytes beyond the limit.
    pub fn push(&mut self, bytes: &[u8]) {
        self.end += bytes.len() as u64;
        let bytes = if bytes.len() > self.limit {
            self.dropped += (bytes.len() - self.limit) as u64;
            &bytes[bytes.len() - self.limit..]
        } else {
            bytes
        };
        let excess = (self.data.len() + bytes.len()).saturating_sub(self.limit);
        if excess > 0 {
            self.data.drain(..excess);
            self.dropped += excess as u64;
        }
        self.data.extend(bytes);
    }

    #[cfg(test)]
    pub fn contains(&self, needle: &[u8]) -> bool {
        self.contains_since(needle, 0).0
    }

    /// Whether `needle` is in the buffer, looking only at what came after offset
    /// `since` (as returned by the previous look, 0 at first): a waiter that looks on
    /// every chunk then reads each byte about once, however much piles up before the
    /// match. Returns where the next look may start.
    pub fn contains_since(&self, needle: &[u8], since: u64) -> (bool, u64) {
        let next = self
            .end
            .saturating_sub(needle.len().saturating_sub(1) as u64);
        if needle.is_empty() {
            return (true, next);
        }
        let start = self.end - self.data.len() as u64;
        let skip = since.saturating_sub(start).min(self.data.len() as u64) as usize;
        let (a, b) = self.data.as_slices();
        let (a, b) = if skip <= a.len() {
            (&a[skip..], b)
        } else {
            (&a[a.len()..], &b[skip - a.len()..])
        };
        (Self::find(a, b, needle), next.max(since))
    }

    fn find(a: &[u8], b: &[u8], needle: &[u8]) -> bool {
        let found = |s: &[u8]| memchr::memmem::find(s, needle).is_some();
        if found(a) || found(b) {
            return true;
        }
        // A match across the two halves of the ring.
        let tail = &a[a.len().saturating_sub(needle.len() - 1)..];
        let head = &b[..b.len().min(needle.len() - 1)];
        let mut seam = tail.to_vec();
        seam.extend_from_slice(head);
        found(&seam)
    }

    /// Takes everything buffered; a first line says how much was dropped, if any.
    pub fn take(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.dropped > 0 {
            out.extend_from_slice(
                format!("[bioxen: {} bytes of older output dropped]\n", self.dropped).as_bytes(),
            );
            self.dropped = 0;
        }
        out.extend(self.data.drain(..));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_says_what_it_dropped() {
        let mut b = OutputBuffer::new(8);
        b.push(b"0123456789");
        b.push(b"ab");
        assert!(b.contains(b"6789ab"));
        assert!(!b.contains(b"0123"));
        let out = String::from_utf8(b.take()).unwrap();
        assert_eq!(out, "[bioxen: 4 bytes of older output dropped]\n456789ab");
        assert!(b.take().is_empty());
    }

    #[test]
    fn finds_needles_across_the_ring_seam() {
        let mut b = OutputBuffer::new(6);
        b.push(b"abcd");
        b.push(b"efgh");
        assert!(b.contains(b"cdef"));
        assert!(b.contains(b"gh"));
        assert!(!b.contains(b"ab"));
    }

    #[test]
    fn a_look_since_the_last_finds_matches_across_pushes_and_takes() {
        let mut b = OutputBuffer::new(64);
        let (found, since) = b.contains_since(b"needle", 0);
        assert!(!found);
        b.push(b"a nee");
        let (found, since) = b.contains_since(b"needle", since);
        assert!(!found);
        b.push(b"dle here");
        let (found, since) = b.contains_since(b"needle", since);
        assert!(found, "a match split between two pushes");
        let _ = b.take();
        b.push(b"more");
        assert!(
            !b.contains_since(b"needle", since).0,
            "taken output is not found again"
        );
        // Looking from the start again sees everything that is still buffered.
        b.push(b" needle");
        assert!(b.contains_since(b"needle", 0).0);
    }
}
