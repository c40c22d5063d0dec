//! Host keys checked against a `known_hosts` file the way OpenSSH's `ssh` checks them.
//!
//! russh's own check matches host names literally: it ignored `@revoked` lines,
//! negated patterns (`!host`) and wildcards, so a key the researcher had revoked was
//! accepted. This follows sshd(8)'s "SSH_KNOWN_HOSTS FILE FORMAT": comma-separated
//! patterns with `*` and `?`, `!` negation, hashed names (`|1|salt|hash`), and the
//! `@revoked` and `@cert-authority` markers. bioxen does not verify host
//! certificates, so a host trusted only through `@cert-authority` is refused with that
//! reason rather than silently treated as unknown.

use bioxen_text::base64;
use std::path::Path;

use russh::keys::PublicKey;

/// What a known_hosts file says about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds this key.
    Known,
    /// No line for this host holds a key of this type.
    Unknown,
    /// A line for this host holds another key of the same type (1-based line).
    Changed { line: usize },
    /// A `@revoked` line for this host holds this key.
    Revoked { line: usize },
    /// The host is trusted only through a `@cert-authority` line.
    CertAuthorityOnly { line: usize },
}

/// Checks `key` of `host:port` against the file at `path` (a missing file knows no one).
pub fn check(path: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Verdict::Unknown),
        Err(e) => return Err(e),
    };
    Ok(check_text(&text, host, port, key))
}

/// Like [`check`], on the file's text.
pub fn check_text(text: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    if port == 22 {
        return check_name(text, host, key);
    }
    // As ssh does for another port: a host unknown as `[host]:port` whose key is
    // recorded for plain `host` is known ("found matching key w/out port").
    match check_name(text, &format!("[{host}]:{port}"), key) {
        Verdict::Unknown if check_name(text, host, key) == Verdict::Known => Verdict::Known,
        verdict => verdict,
    }
}

fn check_name(text: &str, name: &str, key: &PublicKey) -> Verdict {
    let mut changed = None;
    let mut ca = None;
    let mut known = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        let marker = if first.starts_with('@') {
            let m = first;
            match fields.next() {
                Some(f) => first = f,
                None => continue,
            }
            Some(m)
        } else {
            None
        };
        let (Some(_kind), Some(blob)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !host_matches(name, first) {
            continue;
        }
        match marker {
            Some("@cert-authority") => {
                ca.get_or_insert(i + 1);
                continue;
            }
            Some("@revoked") => {
                if parse_key(blob).as_ref() == Some(key) {
                    return Verdict::Revoked { line: i + 1 };
                }
                continue;
            }
            // An unknown marker makes OpenSSH skip the line.
            Some(_) => continue,
            None => {}
        }
        let Some(recorded) = parse_key(blob) else {
            continue;
        };
        if recorded == *key {
            known = true;
        } else if recorded.algorithm() == key.algorithm() {
            changed.get_or_insert(i + 1);
        }
    }
    match (known, changed, ca) {
        (true, _, _) => Verdict::Known,
        (false, Some(line), _) => Verdict::Changed { line },
        (false, None, Some(line)) => Verdict::CertAuthorityOnly { line },
        (false, None, None) => Verdict::Unknown,
    }
}

fn parse_key(blob: &str) -> Option<PublicKey> {
    russh::keys::parse_public_key_base64(blob).ok()
}

/// Whether `name` (`host` or `[host]:port`) matches a comma-separated pattern list: a
/// positive pattern matches and no negated one does.
fn host_matches(name: &str, patterns: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            if hashed_matches(name, hashed) {
                matched = true;
            }
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(&negated.to_lowercase(), &name.to_lowercase()) {
                return false;
            }
        } else if wildcard(&pattern.to_lowercase(), &name.to_lowercase()) {
            matched = true;
        }
    }
    matched
}

/// `|1|salt|hash`: HMAC-SHA1 of the name keyed with the salt, both base64.
fn hashed_matches(name: &str, salt_and_hash: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Some(salt), Some(hash)) = (base64::decode(salt), base64::decode(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// `*` any run of characters, `?` any one character, as OpenSSH's match_pattern.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_negation_follow_openssh() {
        assert!(host_matches("lab1.example", "*.example"));
        assert!(host_matches("[10.0.0.5]:2222", "[10.0.0.?]:2222"));
        assert!(!host_matches("lab1.example", "*.example,!lab1.example"));
        assert!(!host_matches("lab1.example", "!lab1.example"));
        assert!(host_matches("LAB1.example", "lab1.EXAMPLE"));
        assert!(!host_matches("lab12.example", "lab1.example"));
    }
}
