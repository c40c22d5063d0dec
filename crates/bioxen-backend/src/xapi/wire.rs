//! XAPI values and their two encodings on the wire, as xapi emits them (XAPI.md §1.2):
//! XML-RPC with *untyped* strings and int64, `<i4>` only for int32, `<double>`,
//! `<boolean>`, `<dateTime.iso8601>`; JSON with numbers for ints and floats.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// A value of the XAPI type system.
#[derive(Debug, Clone, PartialEq)]
pub enum XVal {
    Str(String),
    /// 64-bit int: an untyped decimal in XML-RPC, a number in JSON.
    Int(i64),
    /// 32-bit int (only `valid_ref_counts`): `<i4>` in XML-RPC.
    Int32(i32),
    Float(f64),
    Bool(bool),
    /// `YYYYMMDDTHH:MM:SSZ`.
    DateTime(String),
    Array(Vec<XVal>),
    Struct(BTreeMap<String, XVal>),
}

impl XVal {
    pub fn str(s: impl Into<String>) -> XVal {
        XVal::Str(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            XVal::Str(s) | XVal::DateTime(s) => Some(s),
            _ => None,
        }
    }

    /// An int parameter as xapi accepts it: an int, or a decimal string.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            XVal::Int(i) => Some(*i),
            XVal::Int32(i) => Some(i64::from(*i)),
            XVal::Str(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A float parameter: a float, an int or a string.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            XVal::Float(f) => Some(*f),
            XVal::Int(i) => Some(*i as f64),
            XVal::Int32(i) => Some(f64::from(*i)),
            XVal::Str(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A bool parameter must be a real boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            XVal::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[XVal]> {
        match self {
            XVal::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_struct(&self) -> Option<&BTreeMap<String, XVal>> {
        match self {
            XVal::Struct(m) => Some(m),
            _ => None,
        }
    }

    /// The form the database compares in `get_all_records_where`.
    pub fn db_string(&self) -> String {
        match self {
            XVal::Str(s) | XVal::DateTime(s) => s.clone(),
            XVal::Int(i) => i.to_string(),
            XVal::Int32(i) => i.to_string(),
            XVal::Float(f) => format!("{f}"),
            XVal::Bool(b) => b.to_string(),
            XVal::Array(_) | XVal::Struct(_) => String::new(),
        }
    }

    // ----- JSON ------------------------------------------------------------------------

    pub fn to_json(&self) -> Json {
        match self {
            XVal::Str(s) | XVal::DateTime(s) => Json::String(s.clone()),
            XVal::Int(i) => Json::from(*i),
            XVal::Int32(i) => Json::from(*i),
            XVal::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            XVal::Bool(b) => Json::Bool(*b),
            XVal::Array(a) => Json::Array(a.iter().map(XVal::to_json).collect()),
            XVal::Struct(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    pub fn from_json(j: &Json) -> XVal {
        match j {
            Json::Null => XVal::Str(String::new()),
            Json::Bool(b) => XVal::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => XVal::Int(i),
                None => XVal::Float(n.as_f64().unwrap_or(0.0)),
            },
            Json::String(s) => XVal::Str(s.clone()),
            Json::Array(a) => XVal::Array(a.iter().map(XVal::from_json).collect()),
            Json::Object(m) => XVal::Struct(
                m.iter()
                    .map(|(k, v)| (k.clone(), XVal::from_json(v)))
                    .collect(),
            ),
        }
    }

    // ----- XML-RPC ---------------------------------------------------------------------

    /// `<value>…</value>` as xapi writes it.
    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<value>");
        match self {
            XVal::Str(s) => escape_into(s, out),
            XVal::Int(i) => out.push_str(&i.to_string()),
            XVal::Int32(i) => out.push_str(&format!("<i4>{i}</i4>")),
            XVal::Float(f) => out.push_str(&format!("<double>{}</double>", format_double(*f))),
            XVal::Bool(b) => out.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
            XVal::DateTime(d) => {
                out.push_str("<dateTime.iso8601>");
                escape_into(d, out);
                out.push_str("</dateTime.iso8601>");
            }
            XVal::Array(a) => {
                out.push_str("<array><data>");
                for v in a {
                    v.write_xml(out);
                }
                out.push_str("</data></array>");
            }
            XVal::Struct(m) => {
                out.push_str("<struct>");
                for (k, v) in m {
                    // xapi writes member names unescaped; names here are plain.
                    out.push_str("<member><name>");
                    out.push_str(k);
                    out.push_str("</name>");
                    v.write_xml(out);
                    out.push_str("</member>");
                }
                out.push_str("</struct>");
            }
        }
        out.push_str("</value>");
    }

    /// Reads a `<value>` element: typed and untyped strings, `<int>`/`<i4>`/`<i8>`,
    /// `<double>`, `<boolean>`, `<dateTime.iso8601>`, `<array>`, `<struct>`.
    pub fn from_xml(node: roxmltree::Node) -> Result<XVal, BadXmlRpc> {
        XVal::from_xml_at(node, 0)
    }

    /// Nesting is bounded: a request of nothing but nested arrays must be an error,
    /// not a stack overflow that takes the whole server down.
    fn from_xml_at(node: roxmltree::Node, depth: usize) -> Result<XVal, BadXmlRpc> {
        if depth > MAX_NESTING {
            return Err(BadXmlRpc::TooDeep);
        }
        let child = node.children().find(|c| c.is_element());
        let Some(child) = child else {
            return Ok(XVal::Str(node.text().unwrap_or("").to_string()));
        };
        let text = || child.text().unwrap_or("").trim().to_string();
        let bad = |kind| BadXmlRpc::BadScalar { kind, text: text() };
        Ok(match child.tag_name().name() {
            "string" => XVal::Str(child.text().unwrap_or("").to_string()),
            "int" | "i4" | "i8" => XVal::Int(text().parse().map_err(|_| bad("integer"))?),
            "double" => XVal::Float(text().parse().map_err(|_| bad("double"))?),
            "boolean" => match text().as_str() {
                "1" | "true" => XVal::Bool(true),
                "0" | "false" => XVal::Bool(false),
                _ => return Err(bad("boolean")),
            },
            "dateTime.iso8601" => XVal::DateTime(text()),
            "array" => {
                let data = child.children().find(|c| c.has_tag_name("data"));
                let values = data
                    .map(|d| {
                        d.children()
                            .filter(|c| c.has_tag_name("value"))
                            .map(|v| XVal::from_xml_at(v, depth + 1))
                            .collect()
                    })
                    .unwrap_or_else(|| Ok(Vec::new()))?;
                XVal::Array(values)
            }
            "struct" => {
                let mut map = BTreeMap::new();
                for member in child.children().filter(|c| c.has_tag_name("member")) {
                    let name = member
                        .children()
                        .find(|c| c.has_tag_name("name"))
                        .and_then(|n| n.text())
                        .unwrap_or("")
                        .to_string();
                    let value = member
                        .children()
                        .find(|c| c.has_tag_name("value"))
                        .ok_or(BadXmlRpc::Missing("struct member without value"))?;
                    map.insert(name, XVal::from_xml_at(value, depth + 1)?);
                }
                XVal::Struct(map)
            }
            other => return Err(BadXmlRpc::UnknownType(other.to_string())),
        })
    }
}

/// Why an XML-RPC body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BadXmlRpc {
    #[error(transparent)]
    Xml(#[from] roxmltree::Error),
    #[error("values nested deeper than {MAX_NESTING} levels")]
    TooDeep,
    #[error("bad {kind} {text:?}")]
    BadScalar { kind: &'static str, text: String },
    #[error("unknown XML-RPC type <{0}>")]
    UnknownType(String),
    #[error("expected <methodCall>, got <{0}>")]
    NotACall(String),
    #[error("{0}")]
    Missing(&'static str),
}

/// How deeply XML-RPC values may nest; XAPI's own values nest a few levels.
pub const MAX_NESTING: usize = 64;

/// `%.16g`, as xapi prints doubles: `1.0` is `1`.
fn format_double(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Escapes `< > & "` and drops control characters other than TAB, LF, CR, as
/// ocaml-rpc's encoder does.
fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

/// `Success` with a value, or `Failure` with an error description, as an XML-RPC
/// method response.
pub fn xmlrpc_response(result: &Result<XVal, Vec<String>>) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?><methodResponse><params><param>");
    let mut envelope = BTreeMap::new();
    match result {
        Ok(v) => {
            envelope.insert("Status".to_string(), XVal::str("Success"));
            envelope.insert("Value".to_string(), v.clone());
        }
        Err(desc) => {
            envelope.insert("Status".to_string(), XVal::str("Failure"));
            envelope.insert(
                "ErrorDescription".to_string(),
                XVal::Array(desc.iter().map(|s| XVal::str(s.clone())).collect()),
            );
        }
    }
    XVal::Struct(envelope).write_xml(&mut out);
    out.push_str("</param></params></methodResponse>");
    out
}

/// A bare value response, for `system.listMethods`, which xapi does not wrap.
pub fn xmlrpc_bare_response(value: &XVal) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?><methodResponse><params><param>");
    value.write_xml(&mut out);
    out.push_str("</param></params></methodResponse>");
    out
}

/// Parses an XML-RPC `methodCall` into its method name and parameters.
pub fn parse_method_call(body: &str) -> Result<(String, Vec<XVal>), BadXmlRpc> {
    let doc = roxmltree::Document::parse(body)?;
    let root = doc.root_element();
    if !root.has_tag_name("methodCall") {
        return Err(BadXmlRpc::NotACall(root.tag_name().name().to_string()));
    }
    let name = root
        .children()
        .find(|c| c.has_tag_name("methodName"))
        .and_then(|n| n.text())
        .ok_or(BadXmlRpc::Missing("missing <methodName>"))?
        .trim()
        .to_string();
    let mut params = Vec::new();
    if let Some(ps) = root.children().find(|c| c.has_tag_name("params")) {
        for p in ps.children().filter(|c| c.has_tag_name("param")) {
            let v = p
                .children()
                .find(|c| c.has_tag_name("value"))
                .ok_or(BadXmlRpc::Missing("param without value"))?;
            params.push(XVal::from_xml(v)?);
        }
    }
    Ok((name, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_xapi() {
        let mut out = String::new();
        XVal::Struct(BTreeMap::from([
            ("a".to_string(), XVal::Int(8589934592)),
            ("b".to_string(), XVal::Float(1.0)),
            ("c".to_string(), XVal::Bool(false)),
            ("d".to_string(), XVal::str("x<y & \"z\"\u{1}")),
            ("e".to_string(), XVal::Int32(4)),
            ("f".to_string(), XVal::str("")),
        ]))
        .write_xml(&mut out);
        assert_eq!(
            out,
            "<value><struct><member><name>a</name><value>8589934592</value></member>\
             <member><name>b</name><value><double>1</double></value></member>\
             <member><name>c</name><value><boolean>0</boolean></value></member>\
             <member><name>d</name><value>x&lt;y &amp; &quot;z&quot;</value></member>\
             <member><name>e</name><value><i4>4</i4></value></member>\
             <member><name>f</name><value></value></member></struct></value>"
        );
    }

    #[test]
    fn parses_typed_and_untyped_params() {
        let body = "<?xml version='1.0'?><methodCall><methodName>VM.start</methodName><params>\
            <param><value><string>OpaqueRef:a</string></value></param>\
            <param><value>untyped</value></param>\
            <param><value><i8>5</i8></value></param>\
            <param><value><boolean>1</boolean></value></param>\
            </params></methodCall>";
        let (name, params) = parse_method_call(body).unwrap();
        assert_eq!(name, "VM.start");
        assert_eq!(
            params,
            vec![
                XVal::str("OpaqueRef:a"),
                XVal::str("untyped"),
                XVal::Int(5),
                XVal::Bool(true)
            ]
        );
        assert!(
            parse_method_call("<methodCall><methodName>x</methodName><params/></methodCall>")
                .unwrap()
                .1
                .is_empty()
        );
        assert!(parse_method_call("<notxml").is_err());
    }

    #[test]
    fn a_bad_call_says_what_is_wrong_by_kind() {
        let deep = format!(
            "<methodCall><methodName>m</methodName><params><param><value>{}x{}</value></param></params></methodCall>",
            "<array><data><value>".repeat(MAX_NESTING + 2),
            "</value></data></array>".repeat(MAX_NESTING + 2)
        );
        assert!(matches!(parse_method_call(&deep), Err(BadXmlRpc::TooDeep)));
        let int = "<methodCall><methodName>m</methodName><params><param><value><int>x1</int></value></param></params></methodCall>";
        assert!(matches!(
            parse_method_call(int),
            Err(BadXmlRpc::BadScalar { kind: "integer", ref text }) if text == "x1"
        ));
        assert!(matches!(
            parse_method_call("<methodResponse/>"),
            Err(BadXmlRpc::NotACall(ref tag)) if tag == "methodResponse"
        ));
        assert!(matches!(
            parse_method_call("<notxml"),
            Err(BadXmlRpc::Xml(_))
        ));
    }
}
