//! The simulator's database: tables of records, a generation counter that every change
//! advances, and tombstones, so `event.from` can report `add`, `mod` and `del` exactly
//! as xapi collapses them (XAPI.md §3.2).

use std::collections::BTreeMap;

use bioxen_backend::xapi::wire::XVal;

pub type Record = BTreeMap<String, XVal>;

/// Every table the simulator has, by its XAPI class name.
pub const CLASSES: &[&str] = &[
    "pool",
    "host",
    "host_metrics",
    "VM",
    "VM_metrics",
    "VM_guest_metrics",
    "VBD",
    "VDI",
    "SR",
    "task",
];

pub const NULL_REF: &str = "OpaqueRef:NULL";

struct Obj {
    created: u64,
    modified: u64,
    fields: Record,
}

struct Tomb {
    class: &'static str,
    reference: String,
    created: u64,
    deleted: u64,
}

/// One entry of an `event.from` batch.
pub struct Change {
    pub generation: u64,
    pub class: &'static str,
    pub operation: &'static str,
    pub reference: String,
    pub snapshot: Option<Record>,
}

pub struct Db {
    generation: u64,
    tables: BTreeMap<&'static str, BTreeMap<String, Obj>>,
    tombs: Vec<Tomb>,
}

impl Default for Db {
    fn default() -> Self {
        Db {
            generation: 0,
            tables: CLASSES.iter().map(|c| (*c, BTreeMap::new())).collect(),
            tombs: Vec::new(),
        }
    }
}

impl Db {
    /// The canonical class name for `name`, compared without case.
    pub fn class(name: &str) -> Option<&'static str> {
        CLASSES
            .iter()
            .copied()
            .find(|c| c.eq_ignore_ascii_case(name))
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The token for the current generation: `%020d,%020d`.
    pub fn token(&self) -> String {
        token(self.generation)
    }

    pub fn insert(&mut self, class: &'static str, fields: Record) -> String {
        let reference = new_ref();
        self.insert_with_ref(class, reference.clone(), fields);
        reference
    }

    pub fn insert_with_ref(&mut self, class: &'static str, reference: String, fields: Record) {
        self.generation += 1;
        let obj = Obj {
            created: self.generation,
            modified: self.generation,
            fields,
        };
        self.tables
            .get_mut(class)
            .expect("known class")
            .insert(reference, obj);
    }

    /// Changes a record; returns false when it does not exist.
    pub fn modify(
        &mut self,
        class: &'static str,
        reference: &str,
        f: impl FnOnce(&mut Record),
    ) -> bool {
        let generation = self.generation + 1;
        match self
            .tables
            .get_mut(class)
            .and_then(|t| t.get_mut(reference))
        {
            Some(obj) => {
                f(&mut obj.fields);
                obj.modified = generation;
                self.generation = generation;
                true
            }
            None => false,
        }
    }

    pub fn delete(&mut self, class: &'static str, reference: &str) -> bool {
        match self.tables.get_mut(class).and_then(|t| t.remove(reference)) {
            Some(obj) => {
                self.generation += 1;
                self.tombs.push(Tomb {
                    class,
                    reference: reference.to_string(),
                    created: obj.created,
                    deleted: self.generation,
                });
                true
            }
            None => false,
        }
    }

    pub fn get(&self, class: &str, reference: &str) -> Option<&Record> {
        self.tables.get(class)?.get(reference).map(|o| &o.fields)
    }

    pub fn field(&self, class: &str, reference: &str, field: &str) -> Option<&XVal> {
        self.get(class, reference)?.get(field)
    }

    pub fn str_field(&self, class: &str, reference: &str, field: &str) -> String {
        self.field(class, reference, field)
            .and_then(XVal::as_str)
            .unwrap_or("")
            .to_string()
    }

    pub fn all(&self, class: &str) -> impl Iterator<Item = (&String, &Record)> {
        self.tables
            .get(class)
            .into_iter()
            .flat_map(|t| t.iter().map(|(r, o)| (r, &o.fields)))
    }

    /// Records whose `field` equals `value` (string comparison).
    pub fn find(&self, class: &str, field: &str, value: &str) -> Vec<String> {
        self.all(class)
            .filter(|(_, rec)| rec.get(field).map(|v| v.db_string()) == Some(value.to_string()))
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// How many records each table holds, keyed by lower-case table name.
    pub fn counts(&self) -> BTreeMap<String, XVal> {
        self.tables
            .iter()
            .map(|(c, t)| (c.to_lowercase(), XVal::Int32(t.len() as i32)))
            .collect()
    }

    /// What changed after `since` in the subscribed classes, collapsed as xapi does: one
    /// `add` for an object created after the token, one `mod` for an older object, a
    /// `del` for an object that existed at the token, nothing for one that came and went.
    pub fn changes_since(
        &self,
        since: u64,
        subscribed: &dyn Fn(&str, &str) -> bool,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        for (class, table) in &self.tables {
            for (reference, obj) in table {
                if obj.modified > since && subscribed(class, reference) {
                    out.push(Change {
                        generation: obj.modified,
                        class,
                        operation: if obj.created > since { "add" } else { "mod" },
                        reference: reference.clone(),
                        snapshot: Some(obj.fields.clone()),
                    });
                }
            }
        }
        for tomb in &self.tombs {
            if tomb.deleted > since
                && tomb.created <= since
                && subscribed(tomb.class, &tomb.reference)
            {
                out.push(Change {
                    generation: tomb.deleted,
                    class: tomb.class,
                    operation: "del",
                    reference: tomb.reference.clone(),
                    snapshot: None,
                });
            }
        }
        out.sort_by_key(|c| c.generation);
        out
    }
}

pub fn token(generation: u64) -> String {
    format!("{generation:020},{:020}", 0)
}

/// Parses a token; `""` is the beginning.
pub fn parse_token(token: &str) -> Option<u64> {
    if token.is_empty() {
        return Some(0);
    }
    let (db, msg) = token.split_once(',')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(db) || !ok(msg) {
        return None;
    }
    db.parse().ok()
}

pub fn new_uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system randomness");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn new_ref() -> String {
    format!("OpaqueRef:{}", new_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str) -> Record {
        Record::from([("name_label".to_string(), XVal::str(name))])
    }

    #[test]
    fn collapses_like_xapi() {
        let mut db = Db::default();
        let old = db.insert("VM", rec("old"));
        let gone = db.insert("VM", rec("gone"));
        let since = db.generation();
        db.modify("VM", &old, |r| {
            r.insert("name_label".into(), XVal::str("renamed"));
        });
        db.modify("VM", &old, |r| {
            r.insert("name_label".into(), XVal::str("renamed twice"));
        });
        let new = db.insert("VM", rec("new"));
        db.modify("VM", &new, |_| {});
        let brief = db.insert("VM", rec("brief"));
        db.delete("VM", &brief);
        db.delete("VM", &gone);
        let all = |_: &str, _: &str| true;
        let changes = db.changes_since(since, &all);
        let summary: Vec<(&str, String)> = changes
            .iter()
            .map(|c| (c.operation, c.reference.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("mod", old.clone()),
                ("add", new.clone()),
                ("del", gone.clone())
            ]
        );
        assert_eq!(
            changes[0].snapshot.as_ref().unwrap()["name_label"],
            XVal::str("renamed twice")
        );
        assert!(changes[2].snapshot.is_none());
        // From the beginning, every live object is an add.
        assert_eq!(
            db.changes_since(0, &all)
                .iter()
                .filter(|c| c.operation == "add")
                .count(),
            2
        );
    }

    #[test]
    fn tokens() {
        assert_eq!(token(16), "00000000000000000016,00000000000000000000");
        assert_eq!(
            parse_token("00000000000000000016,00000000000000000000"),
            Some(16)
        );
        assert_eq!(parse_token(""), Some(0));
        assert_eq!(parse_token("garbage"), None);
        assert_eq!(parse_token("12,x"), None);
    }
}
