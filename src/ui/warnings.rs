//! Standing warnings the dashboard keeps on screen while they hold.

use crate::xapi::tls::TlsMode;

/// Unverified TLS to the pool is a choice the user made; it stays visible.
pub fn tls_warning(mode: &TlsMode) -> Option<String> {
    match mode {
        TlsMode::Insecure => {
            Some("TLS verification of the pool is OFF (tls_verify = false)".into())
        }
        _ => None,
    }
}
