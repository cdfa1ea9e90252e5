//! The filter language of `KnowledgeQuery::filter` (guide §5.2's `filter("successful = true")`):
//! a small expression language parsed into an [`Expr`] and compiled to a parameterised SQL
//! condition. Pure: no I/O, no SQLite connection.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := primary ("and" primary)*
//! primary := "(" expr ")" | field op value
//! field   := successful | severity | timestamp | duration_ms | component | issue_type | strategy
//! op      := = | != | < | <= | > | >=
//! value   := 'text' | "text" | word        (a word: letters, digits and _ . : + -)
//! ```
//!
//! `and` binds tighter than `or`; keywords are case-insensitive. Each field takes one kind of
//! value: `successful` true or false (with `=` and `!=` only), `severity` info, warning, error or
//! critical (ordered), `duration_ms` a whole number, `timestamp` an RFC 3339 time (`2026-01-02`,
//! `2026-01-02T03:04:05Z`) or milliseconds since 1970, and `component`, `issue_type`, `strategy`
//! text (compared as text). Items that lack a field (a pattern has no `successful`) never match a
//! comparison on it. Anything else is an error that names the column where it went wrong and,
//! for an unknown field, the fields there are.
//!
//! What it must not do: put any part of the user's text into SQL. Column names come from the
//! [`Field`] whitelist and every value becomes a bound parameter.

use std::fmt;

use rusqlite::types::Value as SqlValue;

use crate::model::Severity;

/// The longest filter accepted, in characters.
pub const MAX_LEN: usize = 4096;
/// The most comparisons in one filter.
pub const MAX_COMPARISONS: usize = 64;
/// The deepest nesting of parentheses.
pub const MAX_DEPTH: usize = 16;

/// A field a filter may compare: the whitelist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Successful,
    Severity,
    Timestamp,
    DurationMs,
    Component,
    IssueType,
    Strategy,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Successful,
        Field::Severity,
        Field::Timestamp,
        Field::DurationMs,
        Field::Component,
        Field::IssueType,
        Field::Strategy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Successful => "successful",
            Field::Severity => "severity",
            Field::Timestamp => "timestamp",
            Field::DurationMs => "duration_ms",
            Field::Component => "component",
            Field::IssueType => "issue_type",
            Field::Strategy => "strategy",
        }
    }

    /// The column of `items` that holds it (a constant, never user text).
    pub fn column(self) -> &'static str {
        match self {
            Field::Successful => "items.successful",
            Field::Severity => "items.severity",
            Field::Timestamp => "items.timestamp",
            Field::DurationMs => "items.duration_ms",
            Field::Component => "items.component",
            Field::IssueType => "items.issue_type",
            Field::Strategy => "items.strategy",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The field names, for error messages.
    pub fn list() -> String {
        Field::ALL.map(Field::name).join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub const ALL: [Op; 6] = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A comparison's value, already checked against its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Severity(Severity),
    /// Milliseconds since 1970 (a timestamp) or a duration in milliseconds.
    Int(i64),
    Text(String),
}

/// A parsed filter. `And` and `Or` hold at least two operands, none of them of their own kind
/// (the parser flattens `a and (b and c)` into one `And`), so printing and parsing round-trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Cmp { field: Field, op: Op, value: Value },
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Why a filter was refused; `column` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter error at column {column}: {message}")]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

/// Parses a filter expression.
pub fn parse(text: &str) -> Result<Expr, FilterError> {
    let length = text.chars().count();
    if length > MAX_LEN {
        return Err(FilterError {
            column: MAX_LEN + 1,
            message: format!("a filter may be at most {MAX_LEN} characters long"),
        });
    }
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: length + 1,
        comparisons: 0,
    };
    if parser.tokens.is_empty() {
        return Err(FilterError {
            column: 1,
            message: format!(
                "the filter is empty; write e.g. `successful = true` (fields: {})",
                Field::list()
            ),
        });
    }
    let expr = parser.expr(0)?;
    match parser.peek() {
        None => Ok(expr),
        Some(t) if t.kind == Kind::Close => Err(parser.error_at(t.column, "a ')' without its '('")),
        Some(t) => Err(parser.error_at(
            t.column,
            &format!("expected 'and', 'or' or the end, found {}", t.describe()),
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Open,
    Close,
    Op(Op),
    /// A bare word: a field, a keyword or an unquoted value.
    Word(String),
    /// A quoted string.
    Quoted(String),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    column: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.kind {
            Kind::Open => "'('".into(),
            Kind::Close => "')'".into(),
            Kind::Op(op) => format!("'{}'", op.symbol()),
            Kind::Word(w) => format!("'{w}'"),
            Kind::Quoted(q) => format!("the text '{q}'"),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(&self.kind, Kind::Word(w) if w.eq_ignore_ascii_case(word))
    }
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-')
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let (kind, next) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Kind::Open, i + 1),
            ')' => (Kind::Close, i + 1),
            '=' => (Kind::Op(Op::Eq), i + 1),
            '!' if chars.get(i + 1) == Some(&'=') => (Kind::Op(Op::Ne), i + 2),
            '<' if chars.get(i + 1) == Some(&'=') => (Kind::Op(Op::Le), i + 2),
            '<' => (Kind::Op(Op::Lt), i + 1),
            '>' if chars.get(i + 1) == Some(&'=') => (Kind::Op(Op::Ge), i + 2),
            '>' => (Kind::Op(Op::Gt), i + 1),
            '\'' | '"' => {
                // A quote inside is written twice, as in SQL: 'it''s'.
                let mut j = i + 1;
                let mut value = String::new();
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(FilterError {
                                column,
                                message: format!("this text has no closing {c}"),
                            });
                        }
                        Some(&q) if q == c && chars.get(j + 1) == Some(&c) => {
                            value.push(c);
                            j += 2;
                        }
                        Some(&q) if q == c => break,
                        Some(&other) => {
                            value.push(other);
                            j += 1;
                        }
                    }
                }
                (Kind::Quoted(value), j + 1)
            }
            c if word_char(c) => {
                let mut j = i;
                while j < chars.len() && word_char(chars[j]) {
                    j += 1;
                }
                (Kind::Word(chars[i..j].iter().collect()), j)
            }
            other => {
                return Err(FilterError {
                    column,
                    message: format!(
                        "unexpected character '{other}'; comparisons are `field op value` with ops = != < <= > >="
                    ),
                });
            }
        };
        tokens.push(Token { kind, column });
        i = next;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The column just past the text, for "expected … at the end".
    end: usize,
    comparisons: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn error_at(&self, column: usize, message: &str) -> FilterError {
        FilterError {
            column,
            message: message.to_string(),
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and(depth)?];
        while self.peek().is_some_and(|t| t.keyword("or")) {
            self.at += 1;
            terms.push(self.and(depth)?);
        }
        Ok(join(terms, Expr::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut terms = vec![self.primary(depth)?];
        while self.peek().is_some_and(|t| t.keyword("and")) {
            self.at += 1;
            terms.push(self.primary(depth)?);
        }
        Ok(join(terms, Expr::And))
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let Some(token) = self.next() else {
            return Err(self.error_at(
                self.end,
                &format!(
                    "the filter ends where a comparison should be (fields: {})",
                    Field::list()
                ),
            ));
        };
        match token.kind {
            Kind::Open => {
                if depth >= MAX_DEPTH {
                    return Err(self.error_at(
                        token.column,
                        &format!("parentheses nest at most {MAX_DEPTH} deep"),
                    ));
                }
                let inner = self.expr(depth + 1)?;
                match self.next() {
                    Some(t) if t.kind == Kind::Close => Ok(inner),
                    Some(t) => Err(self.error_at(
                        t.column,
                        &format!(
                            "expected 'and', 'or' or ')' (to close the '(' at column {}), found {}",
                            token.column,
                            t.describe()
                        ),
                    )),
                    None => Err(self.error_at(
                        self.end,
                        &format!("the '(' at column {} is never closed", token.column),
                    )),
                }
            }
            Kind::Word(name) => {
                let Some(field) = Field::from_name(&name.to_ascii_lowercase()) else {
                    let hint = crate::text::nearest(
                        &name.to_ascii_lowercase(),
                        Field::ALL.iter().map(|f| f.name()),
                    )
                    .map(|f| format!(" (did you mean '{f}'?)"))
                    .unwrap_or_default();
                    return Err(self.error_at(
                        token.column,
                        &format!("unknown field '{name}'{hint}; fields: {}", Field::list()),
                    ));
                };
                self.comparison(field, &name)
            }
            other => Err(self.error_at(
                token.column,
                &format!(
                    "expected a field, found {}; fields: {}",
                    Token {
                        kind: other,
                        column: token.column
                    }
                    .describe(),
                    Field::list()
                ),
            )),
        }
    }

    fn comparison(&mut self, field: Field, name: &str) -> Result<Expr, FilterError> {
        self.comparisons += 1;
        let op = match self.next() {
            Some(Token {
                kind: Kind::Op(op), ..
            }) => op,
            Some(t) => {
                return Err(self.error_at(
                    t.column,
                    &format!(
                        "expected an operator (= != < <= > >=) after '{name}', found {}",
                        t.describe()
                    ),
                ));
            }
            None => {
                return Err(self.error_at(
                    self.end,
                    &format!("expected an operator (= != < <= > >=) after '{name}'"),
                ));
            }
        };
        let Some(token) = self.next() else {
            return Err(self.error_at(
                self.end,
                &format!("expected a value for {} {}", field.name(), op.symbol()),
            ));
        };
        if self.comparisons > MAX_COMPARISONS {
            return Err(self.error_at(
                token.column,
                &format!("a filter may hold at most {MAX_COMPARISONS} comparisons"),
            ));
        }
        let (text, quoted) = match &token.kind {
            Kind::Word(w) => (w.clone(), false),
            Kind::Quoted(q) => (q.clone(), true),
            _ => {
                return Err(self.error_at(
                    token.column,
                    &format!(
                        "expected a value after {} {}, found {}",
                        field.name(),
                        op.symbol(),
                        token.describe()
                    ),
                ));
            }
        };
        let bad = |what: &str| FilterError {
            column: token.column,
            message: format!("{} takes {what}, not '{text}'", field.name()),
        };
        let value = match field {
            Field::Successful => {
                if !matches!(op, Op::Eq | Op::Ne) {
                    return Err(FilterError {
                        column: token.column,
                        message: format!(
                            "successful compares only with = or !=, not {}",
                            op.symbol()
                        ),
                    });
                }
                match text.to_ascii_lowercase().as_str() {
                    "true" if !quoted => Value::Bool(true),
                    "false" if !quoted => Value::Bool(false),
                    _ => return Err(bad("true or false")),
                }
            }
            Field::Severity => match text.to_ascii_lowercase().as_str() {
                "info" => Value::Severity(Severity::Info),
                "warning" => Value::Severity(Severity::Warning),
                "error" => Value::Severity(Severity::Error),
                "critical" => Value::Severity(Severity::Critical),
                _ => return Err(bad("info, warning, error or critical")),
            },
            Field::DurationMs => match text.parse::<i64>() {
                Ok(n) if !quoted => Value::Int(n),
                _ => return Err(bad("a whole number of milliseconds")),
            },
            Field::Timestamp => match parse_time(&text, quoted) {
                Some(ms) => Value::Int(ms),
                None => {
                    return Err(bad(
                        "an RFC 3339 time such as '2026-01-02T03:04:05Z' or milliseconds since 1970",
                    ));
                }
            },
            Field::Component | Field::IssueType | Field::Strategy => Value::Text(text),
        };
        Ok(Expr::Cmp { field, op, value })
    }
}

/// A time in a filter: milliseconds since 1970, or RFC 3339 (a date alone means its midnight,
/// UTC).
fn parse_time(text: &str, quoted: bool) -> Option<i64> {
    if !quoted && let Ok(ms) = text.parse::<i64>() {
        return (ms >= 0).then_some(ms);
    }
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    let t = humantime::parse_rfc3339_weak(&full).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// One term alone, or the terms joined, with operands of the same kind merged in.
fn join(terms: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 {
        return terms.into_iter().next().expect("one term");
    }
    let mut flat = Vec::new();
    for term in terms {
        match (term, make(Vec::new())) {
            (Expr::And(inner), Expr::And(_)) | (Expr::Or(inner), Expr::Or(_)) => flat.extend(inner),
            (term, _) => flat.push(term),
        }
    }
    make(flat)
}

fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Error => 2,
        Severity::Critical => 3,
    }
}

impl Expr {
    /// Appends the condition to `sql`, its values to `params` (as `?` placeholders).
    pub fn to_sql(&self, sql: &mut String, params: &mut Vec<SqlValue>) {
        match self {
            Expr::Cmp { field, op, value } => {
                sql.push_str(field.column());
                sql.push(' ');
                sql.push_str(op.symbol());
                sql.push_str(" ?");
                params.push(match value {
                    Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
                    Value::Severity(s) => SqlValue::Integer(severity_rank(*s)),
                    Value::Int(n) => SqlValue::Integer(*n),
                    Value::Text(t) => SqlValue::Text(t.clone()),
                });
            }
            Expr::And(terms) | Expr::Or(terms) => {
                let joiner = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.push('(');
                for (i, term) in terms.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(joiner);
                    }
                    term.to_sql(sql, params);
                }
                sql.push(')');
            }
        }
    }
}

/// The canonical text of a filter; parsing it gives the same [`Expr`] back.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Cmp { field, op, value } => {
                write!(f, "{} {} ", field.name(), op.symbol())?;
                match value {
                    Value::Bool(b) => write!(f, "{b}"),
                    Value::Severity(s) => write!(f, "{s}"),
                    Value::Int(n) if *field == Field::Timestamp => {
                        let t = std::time::UNIX_EPOCH
                            + std::time::Duration::from_millis(u64::try_from(*n).unwrap_or(0));
                        write!(f, "'{}'", humantime::format_rfc3339_millis(t))
                    }
                    Value::Int(n) => write!(f, "{n}"),
                    Value::Text(t) => write!(f, "'{}'", t.replace('\'', "''")),
                }
            }
            Expr::And(terms) => {
                for (i, term) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    match term {
                        Expr::Or(_) => write!(f, "({term})")?,
                        Expr::Cmp { .. } | Expr::And(_) => write!(f, "{term}")?,
                    }
                }
                Ok(())
            }
            Expr::Or(terms) => {
                for (i, term) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{term}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sql(text: &str) -> (String, Vec<SqlValue>) {
        let mut sql = String::new();
        let mut params = Vec::new();
        parse(text).expect("valid").to_sql(&mut sql, &mut params);
        (sql, params)
    }

    #[test]
    fn the_guides_filter_compiles_to_one_bound_comparison() {
        assert_eq!(
            sql("successful = true"),
            ("items.successful = ?".into(), vec![SqlValue::Integer(1)])
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let (text, params) =
            sql("successful = true and severity >= error or strategy = 'clear_cache'");
        assert_eq!(
            text,
            "((items.successful = ? AND items.severity >= ?) OR items.strategy = ?)"
        );
        assert_eq!(
            params,
            vec![
                SqlValue::Integer(1),
                SqlValue::Integer(2),
                SqlValue::Text("clear_cache".into())
            ]
        );
        let (text, _) = sql("successful = true AND (severity >= error OR duration_ms < 500)");
        assert_eq!(
            text,
            "(items.successful = ? AND (items.severity >= ? OR items.duration_ms < ?))"
        );
    }

    #[test]
    fn values_take_the_form_of_their_field() {
        assert_eq!(
            parse("timestamp >= 2026-01-02").unwrap(),
            Expr::Cmp {
                field: Field::Timestamp,
                op: Op::Ge,
                value: Value::Int(1_767_312_000_000)
            }
        );
        assert_eq!(
            parse("timestamp < '2026-01-02T00:00:01Z'").unwrap(),
            Expr::Cmp {
                field: Field::Timestamp,
                op: Op::Lt,
                value: Value::Int(1_767_312_001_000)
            }
        );
        assert_eq!(
            parse("component = db-primary").unwrap(),
            Expr::Cmp {
                field: Field::Component,
                op: Op::Eq,
                value: Value::Text("db-primary".into())
            }
        );
        assert_eq!(
            parse(r#"issue_type != "it's""#).unwrap(),
            Expr::Cmp {
                field: Field::IssueType,
                op: Op::Ne,
                value: Value::Text("it's".into())
            }
        );
    }

    fn error(text: &str) -> FilterError {
        parse(text).expect_err("invalid")
    }

    #[test]
    fn an_unknown_field_is_named_with_its_column_and_the_fields_there_are() {
        let e = error("successful = true and sucessful = false");
        assert_eq!(e.column, 23);
        assert!(e.message.contains("unknown field 'sucessful'"), "{e}");
        assert!(e.message.contains("did you mean 'successful'"), "{e}");
        assert!(
            e.message.contains(
                "successful, severity, timestamp, duration_ms, component, issue_type, strategy"
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string().split(':').next(),
            Some("filter error at column 23")
        );
    }

    #[test]
    fn invalid_filters_say_where_and_why() {
        for (text, column, says) in [
            ("", 1, "empty"),
            ("successful", 11, "expected an operator"),
            ("successful ==", 13, "expected a value"),
            ("successful = yes", 14, "true or false"),
            ("successful < true", 14, "only with = or !="),
            ("severity > fatal", 12, "info, warning, error or critical"),
            ("duration_ms > soon", 15, "whole number"),
            ("timestamp > yesterday", 13, "RFC 3339"),
            ("(successful = true", 19, "never closed"),
            ("successful = true)", 18, "without its '('"),
            ("successful = true strategy = x", 19, "expected 'and', 'or'"),
            ("strategy = 'open", 12, "no closing"),
            ("strategy ~ x", 10, "unexpected character"),
            ("and = 1", 1, "unknown field"),
            ("= 1", 1, "expected a field"),
            ("successful = true and", 22, "ends where a comparison"),
        ] {
            let e = error(text);
            assert_eq!(e.column, column, "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn hostile_text_stays_a_bound_value() {
        let hostile = "x'); DROP TABLE items; --";
        let filter = format!("strategy = '{}'", hostile.replace('\'', "''"));
        let (text, params) = sql(&filter);
        assert_eq!(text, "items.strategy = ?");
        assert_eq!(params, vec![SqlValue::Text(hostile.into())]);
        // Unquoted, it is not even a filter.
        assert!(parse(&format!("strategy = {hostile}")).is_err());
        assert!(parse("strategy = x; DROP TABLE items").is_err());
    }

    #[test]
    fn limits_refuse_filters_too_big_or_too_deep() {
        let deep = format!("{}successful = true{}", "(".repeat(40), ")".repeat(40));
        assert!(error(&deep).message.contains("nest at most"));
        let many = vec!["duration_ms > 1"; MAX_COMPARISONS + 1].join(" or ");
        assert!(error(&many).message.contains("at most 64 comparisons"));
        assert!(error(&"x".repeat(MAX_LEN + 1)).message.contains("at most"));
    }

    fn cmp() -> impl Strategy<Value = Expr> {
        let field = prop::sample::select(Field::ALL.to_vec());
        let op = prop::sample::select(Op::ALL.to_vec());
        (field, op, any::<i64>(), ".{0,12}", any::<bool>(), 0usize..4).prop_map(
            |(field, op, n, text, b, s)| {
                let value = match field {
                    Field::Successful => Value::Bool(b),
                    Field::Severity => Value::Severity(
                        [
                            Severity::Info,
                            Severity::Warning,
                            Severity::Error,
                            Severity::Critical,
                        ][s],
                    ),
                    Field::Timestamp => Value::Int(n.rem_euclid(4_102_444_800_000)),
                    Field::DurationMs => Value::Int(n),
                    Field::Component | Field::IssueType | Field::Strategy => Value::Text(text),
                };
                let op = if field == Field::Successful && !matches!(op, Op::Eq | Op::Ne) {
                    Op::Eq
                } else {
                    op
                };
                Expr::Cmp { field, op, value }
            },
        )
    }

    fn expr() -> impl Strategy<Value = Expr> {
        cmp().prop_recursive(4, 24, 4, |inner| {
            (prop::collection::vec(inner, 2..4), any::<bool>())
                .prop_map(|(terms, and)| join(terms, if and { Expr::And } else { Expr::Or }))
        })
    }

    proptest! {
        #[test]
        fn random_text_never_panics(text in ".{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn random_filter_like_text_never_panics(
            words in prop::collection::vec(
                prop::sample::select(vec![
                    "successful", "severity", "timestamp", "duration_ms", "component", "and",
                    "or", "(", ")", "=", "!=", "<", "<=", ">", ">=", "true", "'x", "'y'",
                    "error", "12", "2026-01-01", "\"", "''", "-", "é",
                ]),
                0..16,
            )
        ) {
            let _ = parse(&words.join(" "));
        }

        #[test]
        fn printed_filters_parse_back_to_the_same_tree(e in expr()) {
            let text = e.to_string();
            prop_assert_eq!(parse(&text), Ok(e), "{}", text);
        }
    }
}
