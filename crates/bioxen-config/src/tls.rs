//! How bioxen is told to trust a pool's certificate: verified against the system's
//! roots, pinned by its SHA-256 fingerprint, or not at all (an explicit opt-out the
//! dashboard keeps on screen). Checked when the config is read; the TLS code that
//! acts on it is the pool client's.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Normal verification against the system's trusted roots.
    Verify,
    /// Accept exactly the certificate with this SHA-256 digest.
    Pinned([u8; 32]),
    /// Accept any certificate (`tls_verify = false`).
    Insecure,
}

impl TlsMode {
    /// Unverified TLS to the pool is a choice the user made; it stays visible.
    pub fn warning(&self) -> Option<String> {
        match self {
            TlsMode::Insecure => {
                Some("TLS verification of the pool is OFF (tls_verify = false)".into())
            }
            _ => None,
        }
    }

    pub fn from_config(verify: bool, fingerprint: &str) -> Result<TlsMode, BadFingerprint> {
        if !fingerprint.trim().is_empty() {
            return parse_fingerprint(fingerprint).map(TlsMode::Pinned);
        }
        Ok(if verify {
            TlsMode::Verify
        } else {
            TlsMode::Insecure
        })
    }
}

/// Accepts `sha256:AB:CD:…`, with or without the prefix and colons, any case.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], BadFingerprint> {
    let t = text.trim();
    let t = t
        .strip_prefix("sha256:")
        .or_else(|| t.strip_prefix("SHA256:"))
        .unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != ':').collect();
    let bytes: Result<Vec<u8>, _> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect();
    match bytes {
        Ok(b) if b.len() == 32 => Ok(b.try_into().expect("32 bytes")),
        _ => Err(BadFingerprint(text.to_string())),
    }
}

/// Text that is not a SHA-256 certificate fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tls_fingerprint {0:?} is not a SHA-256 fingerprint (expected sha256: and 32 hex pairs)")]
pub struct BadFingerprint(pub String);
