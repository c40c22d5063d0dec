//! How a session is known: by a number the server gives it, or by its name.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A session's number. The server gives each session the next one when it is made and
/// never gives it again while it runs, so a rename, or a session made after another
/// was removed under the same name, cannot be mistaken for another: every map, watch
/// and output frame keys on this, and the name is only a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmId(pub u64);

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A session as a request names it: by number, as the dashboard does, or by name, as a
/// person typing `bioxen attach lua-1` does. On the wire a number or a string, so the
/// two never collide, even for a VM named `3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VmRef {
    Id(VmId),
    Name(String),
}

/// A name a VM may not have: names appear in file names, shell words and key
/// bindings, so they keep to a safe alphabet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid VM name '{0}': use 1-64 letters, digits, '-', '_' or '.', not starting with '.'")]
pub struct BadName(pub String);

/// Whether `name` may name a VM: see [`BadName`].
pub fn check_name(name: &str) -> Result<(), BadName> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    ok.then_some(()).ok_or_else(|| BadName(name.to_string()))
}

impl VmRef {
    /// Whether this names the session numbered `vm` and called `name`.
    pub fn is(&self, vm: VmId, name: &str) -> bool {
        match self {
            VmRef::Id(id) => *id == vm,
            VmRef::Name(n) => n == name,
        }
    }
}

impl fmt::Display for VmRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmRef::Id(id) => id.fmt(f),
            VmRef::Name(name) => f.write_str(name),
        }
    }
}

impl From<VmId> for VmRef {
    fn from(id: VmId) -> Self {
        VmRef::Id(id)
    }
}

impl From<&VmId> for VmRef {
    fn from(id: &VmId) -> Self {
        VmRef::Id(*id)
    }
}

impl From<&str> for VmRef {
    fn from(name: &str) -> Self {
        VmRef::Name(name.to_string())
    }
}

impl From<String> for VmRef {
    fn from(name: String) -> Self {
        VmRef::Name(name)
    }
}

impl From<&String> for VmRef {
    fn from(name: &String) -> Self {
        VmRef::Name(name.clone())
    }
}

impl From<&VmRef> for VmRef {
    fn from(r: &VmRef) -> Self {
        r.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_and_a_name_that_looks_like_one_stay_apart_on_the_wire() {
        let by_id = serde_json::to_string(&VmRef::Id(VmId(3))).unwrap();
        let by_name = serde_json::to_string(&VmRef::from("3")).unwrap();
        assert_eq!((by_id.as_str(), by_name.as_str()), ("3", "\"3\""));
        assert_eq!(
            serde_json::from_str::<VmRef>(&by_id).unwrap(),
            VmRef::Id(VmId(3))
        );
        assert_eq!(
            serde_json::from_str::<VmRef>(&by_name).unwrap(),
            VmRef::Name("3".into())
        );
        assert!(VmRef::Id(VmId(3)).is(VmId(3), "lua-1"));
        assert!(!VmRef::from("3").is(VmId(3), "lua-1"));
    }
}
