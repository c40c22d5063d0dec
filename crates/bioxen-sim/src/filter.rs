//! The expression language of `get_all_records_where` (xapi's `db_filter_parse.mly`):
//! `true | false | value = value | e and e | e or e | not e | ( e )`, where a value is
//! `"literal"` or `field "name"`; namespaced names use `__` (`name__label`).

use super::db::Record;

#[derive(Debug)]
pub enum Expr {
    Const(bool),
    Eq(Value, Value),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug)]
pub enum Value {
    Literal(String),
    Field(String),
}

impl Expr {
    pub fn eval(&self, rec: &Record) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::Eq(a, b) => a.resolve(rec) == b.resolve(rec),
            Expr::And(a, b) => a.eval(rec) && b.eval(rec),
            Expr::Or(a, b) => a.eval(rec) || b.eval(rec),
            Expr::Not(e) => !e.eval(rec),
        }
    }
}

impl Value {
    fn resolve(&self, rec: &Record) -> String {
        match self {
            Value::Literal(s) => s.clone(),
            Value::Field(name) => rec
                .get(&name.replace("__", "_"))
                .map(|v| v.db_string())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Eq,
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Token>, BadFilter> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Eq);
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => lit.extend(chars.next()),
                        Some(c) => lit.push(c),
                        None => return Err(BadFilter::Unterminated),
                    }
                }
                out.push(Token::Str(lit));
            }
            c if c.is_ascii_alphabetic() => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        w.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(w));
            }
            other => return Err(BadFilter::Unexpected(other)),
        }
    }
    Ok(out)
}

/// Why a filter expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFilter {
    #[error("unterminated string")]
    Unterminated,
    #[error("unexpected character {0:?}")]
    Unexpected(char),
    #[error("trailing input")]
    Trailing,
    #[error("expected {0}")]
    Expected(&'static str),
}

pub fn parse(s: &str) -> Result<Expr, BadFilter> {
    let tokens = lex(s)?;
    let mut p = Parser { tokens, pos: 0 };
    let e = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(BadFilter::Trailing);
    }
    Ok(e)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(x)) if x == w)
    }

    fn or(&mut self) -> Result<Expr, BadFilter> {
        let mut e = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, BadFilter> {
        let mut e = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, BadFilter> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek_word("true") || self.peek_word("false") {
            let b = self.peek_word("true");
            self.pos += 1;
            return Ok(Expr::Const(b));
        }
        if self.tokens.get(self.pos) == Some(&Token::Open) {
            self.pos += 1;
            let e = self.or()?;
            if self.tokens.get(self.pos) != Some(&Token::Close) {
                return Err(BadFilter::Expected(")"));
            }
            self.pos += 1;
            return Ok(e);
        }
        let a = self.value()?;
        if self.tokens.get(self.pos) != Some(&Token::Eq) {
            return Err(BadFilter::Expected("="));
        }
        self.pos += 1;
        let b = self.value()?;
        Ok(Expr::Eq(a, b))
    }

    fn value(&mut self) -> Result<Value, BadFilter> {
        match self.tokens.get(self.pos) {
            Some(Token::Str(s)) => {
                let v = Value::Literal(s.clone());
                self.pos += 1;
                Ok(v)
            }
            Some(Token::Word(w)) if w == "field" => match self.tokens.get(self.pos + 1) {
                Some(Token::Str(name)) => {
                    let v = Value::Field(name.clone());
                    self.pos += 2;
                    Ok(v)
                }
                _ => Err(BadFilter::Expected("a field name in quotes")),
            },
            _ => Err(BadFilter::Expected("a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bioxen_backend::xapi::wire::XVal;

    #[test]
    fn evaluates_like_the_database() {
        let rec = Record::from([
            ("is_a_template".to_string(), XVal::Bool(false)),
            ("name_label".to_string(), XVal::str("lab")),
        ]);
        let t = |e: &str| parse(e).unwrap().eval(&rec);
        assert!(t(
            r#"field "is_a_template"="false" and field "name__label"="lab""#
        ));
        assert!(!t(r#"not (field "name__label" = "lab")"#));
        assert!(t(r#"field "name__label" = "x" or true"#));
        assert!(t("true"));
        assert!(parse(r#"field "a" ="#).is_err());
        assert!(parse("bogus").is_err());
    }

    #[test]
    fn a_bad_filter_says_what_is_wrong_by_kind() {
        assert_eq!(
            parse(r#"field "a" = "x"#).err(),
            Some(BadFilter::Unterminated)
        );
        assert_eq!(
            parse("field \"a\" = \"x\" ;").err(),
            Some(BadFilter::Unexpected(';'))
        );
        assert_eq!(parse("true true").err(), Some(BadFilter::Trailing));
        assert_eq!(parse("(true").err(), Some(BadFilter::Expected(")")));
        assert_eq!(
            parse("field").err(),
            Some(BadFilter::Expected("a field name in quotes"))
        );
    }
}
