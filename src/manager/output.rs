//! The bytes a session printed since the last `read_output`, bounded so that a VM
//! nobody reads from cannot grow memory without limit.

pub struct OutputBuffer {
    data: Vec<u8>,
    limit: usize,
    dropped: u64,
}

impl OutputBuffer {
    pub fn new(limit: usize) -> Self {
        OutputBuffer {
            data: Vec::new(),
            limit,
            dropped: 0,
        }
    }

    /// Appends output, dropping the oldest bytes beyond the limit.
    pub fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        if self.data.len() > self.limit {
            let excess = self.data.len() - self.limit;
            self.data.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    pub fn contains(&self, needle: &[u8]) -> bool {
        needle.is_empty() || self.data.windows(needle.len()).any(|w| w == needle)
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
        out.append(&mut self.data);
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
}
