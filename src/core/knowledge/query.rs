//! [`KnowledgeQuery`] → one parameterised SQL statement. Pure: no connection, no I/O.
//!
//! Every condition becomes `column op ?` with the user's text as a bound parameter; the only
//! words put into the SQL text are the constants below and the whitelisted columns of
//! [`super::filter::Field`] and [`sort_column`]. Tags are joined (`item_tags`, one join per tag,
//! all must hold), so SQLite may drive the query from whichever index is most selective: the
//! issue-type index for the guide's §5.2 query, the tag index for a tag alone.

use rusqlite::types::Value as SqlValue;

use super::filter::{self, FilterError};
use crate::protocol::KnowledgeQuery;

/// The columns every query returns, in the order [`super::store::result_from_row`] reads them.
pub const COLUMNS: &str = "items.id, items.component, items.tags, items.content, items.issue_type, items.timestamp, items.source";

/// The most tags one query may require.
pub const MAX_TAGS: usize = 16;

/// A statement and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<SqlValue>,
    /// For a `contains` of ASCII text: a statement to try first that walks the other
    /// conditions' rows in the query's order, at most [`WALK`] of them, and compares their
    /// text directly. When it finds `limit` items they are the answer (the first `limit`
    /// matches of a prefix in the query's order are the first overall); otherwise `sql` runs.
    pub walk: Option<Box<Compiled>>,
    /// The query's limit.
    pub limit: usize,
}

/// Rows the walk of a `contains` looks at before it gives way to the text index. A common
/// symptom (5% of items) is found in a few hundred rows, where the text index must list every
/// match before it can sort them (390 ms at 1M items); a rare one costs the walk a few
/// milliseconds and then the index's.
pub const WALK: usize = 2000;

/// `contains` of three characters or more: the text index's matches (parameter: the text as an
/// FTS5 phrase) and those of the items it does not hold yet (parameter: the text).
pub const CONTAINS: &str = "items.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ? \
     UNION ALL SELECT id FROM items WHERE id > (SELECT upto FROM items_fts_upto) \
     AND instr(lower(symptom), lower(?)) > 0)";

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The filter expression is not valid.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `sort` names a field that is not sortable.
    #[error(
        "cannot sort by '{0}'; sort by timestamp, severity, duration_ms, component, issue_type, strategy, successful or id"
    )]
    SortField(String),
    /// `sort` has an order other than asc or desc.
    #[error("sort order '{0}' is neither asc nor desc")]
    SortOrder(String),
    /// More tags than [`MAX_TAGS`].
    #[error("a query may require at most {MAX_TAGS} tags")]
    TooManyTags,
    /// A limit of zero or above [`KnowledgeQuery::MAX_LIMIT`].
    #[error("limit must be between 1 and {}", KnowledgeQuery::MAX_LIMIT)]
    Limit,
}

/// The column to sort by, from its whitelist.
pub fn sort_column(field: &str) -> Option<&'static str> {
    Some(match field {
        "timestamp" => "items.timestamp",
        "severity" => "items.severity",
        "duration_ms" => "items.duration_ms",
        "component" => "items.component",
        "issue_type" => "items.issue_type",
        "strategy" => "items.strategy",
        "successful" => "items.successful",
        "id" => "items.id",
        _ => return None,
    })
}

/// Compiles a query.
pub fn compile(query: &KnowledgeQuery) -> Result<Compiled, QueryError> {
    let mut from = String::from("items");
    let mut params = Vec::new();
    let mut tags: Vec<&String> = Vec::new();
    for tag in &query.tags {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(QueryError::TooManyTags);
    }
    for (i, tag) in tags.iter().enumerate() {
        from.push_str(&format!(
            " JOIN item_tags t{i} ON t{i}.item_id = items.id AND t{i}.tag = ?"
        ));
        params.push(SqlValue::Text((*tag).clone()));
    }
    // Every condition but `contains`, with its parameters.
    let mut conditions: Vec<String> = Vec::new();
    if let Some(component) = &query.component {
        conditions.push("items.component = ?".into());
        params.push(SqlValue::Text(component.clone()));
    }
    if let Some(issue_type) = &query.related_to {
        conditions.push("items.issue_type = ?".into());
        params.push(SqlValue::Text(issue_type.clone()));
    }
    if let Some(text) = &query.filter {
        let expr = filter::parse(text)?;
        let mut condition = String::new();
        expr.to_sql(&mut condition, &mut params);
        conditions.push(condition);
    }
    let (column, descending) = match &query.sort {
        None => ("items.timestamp", true),
        Some(sort) => {
            let column = sort_column(&sort.field)
                .ok_or_else(|| QueryError::SortField(sort.field.clone()))?;
            let descending = match sort.order.to_ascii_lowercase().as_str() {
                "desc" => true,
                "asc" => false,
                _ => return Err(QueryError::SortOrder(sort.order.clone())),
            };
            (column, descending)
        }
    };
    let direction = if descending { "DESC" } else { "ASC" };
    let mut order = format!(" ORDER BY {column} {direction}");
    if column != "items.id" {
        // Ties in a stable order: newer ids first when newest first.
        order.push_str(&format!(", items.id {direction}"));
    }
    let limit = query.limit.unwrap_or(KnowledgeQuery::DEFAULT_LIMIT);
    if limit == 0 || limit > KnowledgeQuery::MAX_LIMIT {
        return Err(QueryError::Limit);
    }
    let where_ = |conditions: &[String]| {
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    };
    let text = query.contains.as_deref().filter(|t| !t.is_empty());
    let mut walk = None;
    let mut all = conditions.clone();
    let mut all_params = params.clone();
    if let Some(text) = text {
        if text.chars().count() >= 3 {
            // The trigram index finds substrings of three characters or more; the text is one
            // FTS5 phrase (quotes doubled), bound as a parameter. The items it does not hold
            // yet (at most `store::TEXT_TAIL`, the newest) are read directly.
            all.push(CONTAINS.into());
            all_params.push(SqlValue::Text(format!("\"{}\"", text.replace('"', "\"\""))));
            all_params.push(SqlValue::Text(text.to_string()));
            if text.is_ascii() {
                // `lower` folds ASCII letters only, so the walk is for ASCII text.
                let mut walk_params = params.clone();
                walk_params.push(SqlValue::Text(text.to_string()));
                walk_params.push(SqlValue::Integer(limit as i64));
                walk = Some(Box::new(Compiled {
                    sql: format!(
                        "SELECT {COLUMNS} FROM (SELECT items.* FROM {from}{}{order} LIMIT {WALK}) \
                         AS items WHERE instr(lower(items.symptom), lower(?)) > 0{order} LIMIT ?",
                        where_(&conditions)
                    ),
                    params: walk_params,
                    walk: None,
                    limit,
                }));
            }
        } else {
            all.push("instr(lower(items.symptom), lower(?)) > 0".into());
            all_params.push(SqlValue::Text(text.to_string()));
        }
    }
    all_params.push(SqlValue::Integer(limit as i64));
    Ok(Compiled {
        sql: format!(
            "SELECT {COLUMNS} FROM {from}{}{order} LIMIT ?",
            where_(&all)
        ),
        params: all_params,
        walk,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &str) -> SqlValue {
        SqlValue::Text(v.into())
    }

    #[test]
    fn the_guides_healing_query_compiles_to_parameters_only() {
        let q = KnowledgeQuery::new()
            .tag("recovery")
            .related_to("db-connection-lost")
            .filter("successful = true")
            .sort("timestamp", "desc")
            .limit(5);
        let c = compile(&q).unwrap();
        assert_eq!(
            c.sql,
            format!(
                "SELECT {COLUMNS} FROM items JOIN item_tags t0 ON t0.item_id = items.id AND t0.tag = ? \
                 WHERE items.issue_type = ? AND items.successful = ? \
                 ORDER BY items.timestamp DESC, items.id DESC LIMIT ?"
            )
        );
        assert_eq!(
            c.params,
            vec![
                text("recovery"),
                text("db-connection-lost"),
                SqlValue::Integer(1),
                SqlValue::Integer(5)
            ]
        );
    }

    #[test]
    fn the_guides_issue_query_searches_symptoms_by_phrase() {
        let q = KnowledgeQuery::new()
            .component("my-component")
            .tag("issue")
            .contains("say \"hi\"");
        let c = compile(&q).unwrap();
        assert!(
            c.sql
                .contains(&format!("WHERE items.component = ? AND {CONTAINS}")),
            "{}",
            c.sql
        );
        assert_eq!(
            c.params,
            vec![
                text("issue"),
                text("my-component"),
                text("\"say \"\"hi\"\"\""),
                text("say \"hi\""),
                SqlValue::Integer(100)
            ]
        );
        let short = compile(&KnowledgeQuery::new().contains("ab")).unwrap();
        assert!(
            short
                .sql
                .contains("instr(lower(items.symptom), lower(?)) > 0")
        );
    }

    #[test]
    fn hostile_text_never_reaches_the_sql() {
        let hostile = "x'); DROP TABLE items; --";
        let q = KnowledgeQuery::new()
            .component(hostile)
            .tag(hostile)
            .contains(hostile)
            .related_to(hostile)
            .filter(format!("strategy = '{}'", hostile.replace('\'', "''")));
        let c = compile(&q).unwrap();
        assert!(!c.sql.contains("DROP"), "{}", c.sql);
        assert!(!c.sql.contains('\''), "{}", c.sql);
        // Component, tag, related_to, the strategy, and `contains` for the items not yet in
        // the text index.
        assert_eq!(c.params.iter().filter(|p| **p == text(hostile)).count(), 5);
        assert_eq!(
            compile(&KnowledgeQuery::new().sort(hostile, "desc")),
            Err(QueryError::SortField(hostile.into()))
        );
        assert_eq!(
            compile(&KnowledgeQuery::new().sort("timestamp", hostile)),
            Err(QueryError::SortOrder(hostile.into()))
        );
    }

    #[test]
    fn bad_sorts_limits_and_filters_are_refused() {
        assert!(matches!(
            compile(&KnowledgeQuery::new().filter("colour = red")),
            Err(QueryError::Filter(_))
        ));
        assert_eq!(
            compile(&KnowledgeQuery::new().limit(0)),
            Err(QueryError::Limit)
        );
        assert_eq!(
            compile(&KnowledgeQuery::new().limit(KnowledgeQuery::MAX_LIMIT + 1)),
            Err(QueryError::Limit)
        );
        let mut many = KnowledgeQuery::new();
        for i in 0..=MAX_TAGS {
            many = many.tag(format!("t{i}"));
        }
        assert_eq!(compile(&many), Err(QueryError::TooManyTags));
        let asc = compile(&KnowledgeQuery::new().sort("severity", "ASC")).unwrap();
        assert!(
            asc.sql
                .ends_with("ORDER BY items.severity ASC, items.id ASC LIMIT ?")
        );
    }
}
