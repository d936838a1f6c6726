//! The SCIM filter and attribute-path grammar (RFC 7644 §3.4.2.2 and §3.5.2), parsed into
//! a tree. Parsing knows nothing of which attributes or operators a resource supports: the
//! service decides that on the tree, and refuses the rest as `invalidFilter`.
//!
//! Attribute names are case-insensitive (RFC 7643 §2.1), so a path is kept lower case, and
//! without the schema URN a fully qualified name may carry
//! (`urn:ietf:params:scim:schemas:core:2.0:User:userName` is `username`).

use std::fmt;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// A literal compared with an attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Text(String),
    Bool(bool),
    Null,
    /// As written: SCIM numbers are compared by the resource, not here.
    Number(String),
}

/// A filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare {
        attr: String,
        op: CompareOp,
        value: Literal,
    },
    Present(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued `attr` matches `filter`.
    ValuePath {
        attr: String,
        filter: Box<Filter>,
    },
}

impl Filter {
    /// The terms of a conjunction (`a and b and c` gives `[a, b, c]`); any other
    /// expression is one term.
    pub fn conjuncts(&self) -> Vec<&Filter> {
        match self {
            Filter::And(a, b) => {
                let mut terms = a.conjuncts();
                terms.extend(b.conjuncts());
                terms
            }
            other => vec![other],
        }
    }
}

/// The target of a PATCH operation: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    /// Lower case, without a schema URN; may be dotted (`name.givenname`).
    pub attr: String,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter, lower case.
    pub sub: Option<String>,
}

/// Why a filter or a path could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a `filter` query parameter.
pub fn parse_filter(text: &str) -> Result<Filter, SyntaxError> {
    let mut parser = Parser::new(text);
    let filter = parser.or_expr()?;
    parser.end()?;
    Ok(filter)
}

/// Parses the `path` of a PATCH operation.
pub fn parse_path(text: &str) -> Result<PatchPath, SyntaxError> {
    let mut parser = Parser::new(text);
    let attr = parser.attr_path()?;
    let mut path = PatchPath {
        attr,
        filter: None,
        sub: None,
    };
    if parser.eat('[') {
        path.filter = Some(parser.or_expr()?);
        parser.expect(']')?;
        if parser.eat('.') {
            path.sub = Some(parser.name()?.to_ascii_lowercase());
        }
    }
    parser.end()?;
    Ok(path)
}

/// Lower case, and without the schema URN a fully qualified attribute name carries.
pub fn normalize_attr(raw: &str) -> String {
    let name = match raw.rfind(':') {
        Some(at) if raw.to_ascii_lowercase().starts_with("urn:") => &raw[at + 1..],
        _ => raw,
    };
    name.to_ascii_lowercase()
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start_matches(' ');
        self.at = self.text.len() - trimmed.len();
    }

    fn error(&self, what: &str) -> SyntaxError {
        SyntaxError(format!("{what} at character {}", self.at + 1))
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn end(&mut self) -> Result<(), SyntaxError> {
        self.skip_spaces();
        if self.rest().is_empty() {
            Ok(())
        } else {
            Err(self.error("unexpected text"))
        }
    }

    /// The next word (letters, digits and `_ - : . $`), without consuming it.
    fn peek_word(&mut self) -> &'a str {
        self.skip_spaces();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '$')))
            .unwrap_or(rest.len());
        &rest[..len]
    }

    fn keyword(&mut self, word: &str) -> bool {
        let next = self.peek_word();
        if next.eq_ignore_ascii_case(word) {
            self.at += next.len();
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Result<&'a str, SyntaxError> {
        let word = self.peek_word();
        if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(self.error("expected an attribute name"));
        }
        self.at += word.len();
        Ok(word)
    }

    fn attr_path(&mut self) -> Result<String, SyntaxError> {
        self.name().map(normalize_attr)
    }

    fn or_expr(&mut self) -> Result<Filter, SyntaxError> {
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, SyntaxError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, SyntaxError> {
        if self.eat('(') {
            let inner = self.or_expr()?;
            self.expect(')')?;
            return Ok(inner);
        }
        if self.peek_word().eq_ignore_ascii_case("not") {
            self.keyword("not");
            self.expect('(')?;
            let inner = self.or_expr()?;
            self.expect(')')?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        let attr = self.attr_path()?;
        if self.eat('[') {
            let filter = self.or_expr()?;
            self.expect(']')?;
            return Ok(Filter::ValuePath {
                attr,
                filter: Box::new(filter),
            });
        }
        if self.keyword("pr") {
            return Ok(Filter::Present(attr));
        }
        let word = self.peek_word();
        let op = CompareOp::parse(word)
            .ok_or_else(|| self.error("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)"))?;
        self.at += word.len();
        let value = self.literal()?;
        Ok(Filter::Compare { attr, op, value })
    }

    fn literal(&mut self) -> Result<Literal, SyntaxError> {
        self.skip_spaces();
        if self.rest().starts_with('"') {
            return self.string().map(Literal::Text);
        }
        let word = self.peek_word();
        let value = match word.to_ascii_lowercase().as_str() {
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            "null" => Literal::Null,
            _ if !word.is_empty() && word.parse::<f64>().is_ok() => Literal::Number(word.to_string()),
            _ => return Err(self.error("expected a value (a quoted string, true, false, null or a number)")),
        };
        self.at += word.len();
        Ok(value)
    }

    /// A JSON string literal, escapes and all.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let rest = self.rest();
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    let literal = &rest[..=i];
                    let value = serde_json::from_str(literal).map_err(|_| self.error("invalid string"))?;
                    self.at += i + 1;
                    return Ok(value);
                }
                _ => {}
            }
        }
        Err(self.error("unterminated string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(attr: &str, value: &str) -> Filter {
        Filter::Compare {
            attr: attr.into(),
            op: CompareOp::Eq,
            value: Literal::Text(value.into()),
        }
    }

    #[test]
    fn reads_the_filters_identity_providers_send() {
        assert_eq!(
            parse_filter(r#"userName eq "ada@example.com""#),
            Ok(eq("username", "ada@example.com"))
        );
        assert_eq!(parse_filter(r#"externalId EQ "00u1""#), Ok(eq("externalid", "00u1")));
        assert_eq!(
            parse_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#),
            Ok(eq("username", "a"))
        );
        assert_eq!(
            parse_filter(r#"meta.lastModified gt "2026-01-01T00:00:00Z""#),
            Ok(Filter::Compare {
                attr: "meta.lastmodified".into(),
                op: CompareOp::Gt,
                value: Literal::Text("2026-01-01T00:00:00Z".into())
            })
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_conjunctions_flatten() {
        let f = parse_filter(r#"a eq "1" and b eq "2" and c eq "3""#).unwrap();
        assert_eq!(f.conjuncts(), vec![&eq("a", "1"), &eq("b", "2"), &eq("c", "3")]);
        let f = parse_filter(r#"a eq "1" or b eq "2" and c eq "3""#).unwrap();
        assert!(matches!(f, Filter::Or(_, _)));
        assert_eq!(f.conjuncts().len(), 1);
        let f = parse_filter(r#"not (a eq "1") and (b pr or c eq true)"#).unwrap();
        assert_eq!(f.conjuncts().len(), 2);
    }

    #[test]
    fn strings_take_json_escapes_and_other_literals_parse() {
        assert_eq!(parse_filter(r#"a eq "x\"y\\z""#), Ok(eq("a", "x\"y\\z")));
        assert!(matches!(
            parse_filter("active eq false"),
            Ok(Filter::Compare {
                value: Literal::Bool(false),
                ..
            })
        ));
        assert!(matches!(
            parse_filter("n ge 10.5"),
            Ok(Filter::Compare {
                value: Literal::Number(_),
                ..
            })
        ));
        assert!(matches!(
            parse_filter(r#"emails[type eq "work" and value co "@x"]"#),
            Ok(Filter::ValuePath { .. })
        ));
    }

    #[test]
    fn malformed_filters_are_errors() {
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName eq "open"#,
            r#"userName is "x""#,
            r#"userName eq "x" and"#,
            r#"(userName eq "x""#,
            r#"userName eq "x" extra"#,
            r#"userName eq unquoted"#,
            r#"1abc eq "x""#,
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn patch_paths_have_an_attribute_a_value_filter_and_a_sub_attribute() {
        assert_eq!(
            parse_path("name.givenName"),
            Ok(PatchPath {
                attr: "name.givenname".into(),
                filter: None,
                sub: None
            })
        );
        assert_eq!(
            parse_path(r#"emails[type eq "work"].value"#),
            Ok(PatchPath {
                attr: "emails".into(),
                filter: Some(eq("type", "work")),
                sub: Some("value".into())
            })
        );
        assert_eq!(
            parse_path(r#"members[value eq "usr_1"]"#),
            Ok(PatchPath {
                attr: "members".into(),
                filter: Some(eq("value", "usr_1")),
                sub: None
            })
        );
        assert!(parse_path("members[value eq").is_err());
        assert!(parse_path("a b").is_err());
    }
}
