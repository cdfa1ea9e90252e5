//! The knowledge registry's wire types (guide §5): [`KnowledgeQuery`], [`KnowledgeItem`],
//! [`KnowledgeResult`] and [`KnowledgeStats`], with the builders the guide writes
//! (`KnowledgeQuery::new().tag("recovery").related_to(..).filter("successful = true")
//! .sort("timestamp", "desc").limit(5)`).
//!
//! Plain data only: the query is checked and compiled to SQL by the registry in the core
//! (`core::knowledge`), never here, and nothing here does I/O. A query's text fields travel as
//! the user wrote them; the core binds them as SQL parameters.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{IssuePattern, RecoveryRecord};

/// What to look for in the registry (guide §5.1 step 2, §5.2). Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeQuery {
    /// Only items about this component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Only items carrying every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only items whose symptom text contains this, ignoring case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// Only items related to this issue type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_to: Option<String>,
    /// A filter expression such as `successful = true and severity >= error` (see
    /// docs/knowledge.md for the language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The order: a field and `asc` or `desc`. Default: `timestamp desc`, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<Sort>,
    /// At most this many results. Default [`KnowledgeQuery::DEFAULT_LIMIT`], at most
    /// [`KnowledgeQuery::MAX_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// An order for query results: a field name and a direction, as the user wrote them (the core
/// checks both against its whitelist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    pub field: String,
    /// `asc` or `desc`.
    pub order: String,
}

impl KnowledgeQuery {
    /// Results when the query sets no limit.
    pub const DEFAULT_LIMIT: usize = 100;
    /// The most results one query returns.
    pub const MAX_LIMIT: usize = 10_000;

    /// A query that matches everything, newest first.
    pub fn new() -> KnowledgeQuery {
        KnowledgeQuery::default()
    }

    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    /// Adds a tag the results must carry (tags add up: all must be present).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Symptom text to look for, as a case-insensitive substring.
    pub fn contains(mut self, text: impl Into<String>) -> Self {
        self.contains = Some(text.into());
        self
    }

    /// The issue type the results are about.
    pub fn related_to(mut self, issue_type: impl Into<String>) -> Self {
        self.related_to = Some(issue_type.into());
        self
    }

    /// A filter expression, e.g. `successful = true` (fields: successful, severity, timestamp,
    /// duration_ms, component, issue_type, strategy; ops `= != < <= > >=`; `and`, `or`,
    /// parentheses).
    pub fn filter(mut self, expression: impl Into<String>) -> Self {
        self.filter = Some(expression.into());
        self
    }

    /// The order of the results: `sort("timestamp", "desc")`.
    pub fn sort(mut self, field: impl Into<String>, order: impl Into<String>) -> Self {
        self.sort = Some(Sort {
            field: field.into(),
            order: order.into(),
        });
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// Something learned, to be stored (guide §5.1 step 3). `content` is usually the JSON of a
/// [`RecoveryRecord`] or an [`IssuePattern`]; the registry reads the fields it indexes (issue
/// type, strategy, success, severity, duration, symptoms) out of it, and keeps it as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeItem {
    /// The component the knowledge is about; a `KnowledgeClient` fills in its own id when empty.
    #[serde(default)]
    pub component: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub content: String,
    /// The issue type it relates to, when the content does not say (a record's or a pattern's
    /// own issue type wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_to: Option<String>,
    /// When it was learned; default: a record's own timestamp, else the time it is stored.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::model::opt_rfc3339"
    )]
    pub timestamp: Option<SystemTime>,
    /// Who contributed it (a component's id, `core`, `cli`, `import`); filled in by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl KnowledgeItem {
    pub fn new() -> KnowledgeItem {
        KnowledgeItem::default()
    }

    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = component.into();
        self
    }

    /// Replaces the tags: `tags(vec!["recovery", "healing"])`.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// The knowledge itself, usually JSON.
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.content = content.into();
        self
    }

    pub fn related_to(mut self, issue_type: impl Into<String>) -> Self {
        self.related_to = Some(issue_type.into());
        self
    }

    pub fn at(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// One stored item, as queries return it (and `knowledge export` writes it, one per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeResult {
    /// The registry's id for it (grows with every item stored).
    pub id: i64,
    pub component: String,
    pub tags: Vec<String>,
    /// As contributed; parse it with `serde_json::from_str::<RecoveryRecord>(&result.content)`.
    pub content: String,
    /// The issue type it relates to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_to: Option<String>,
    #[serde(with = "crate::model::rfc3339")]
    pub timestamp: SystemTime,
    #[serde(default)]
    pub source: String,
}

impl KnowledgeResult {
    /// The content as a recovery record, when it is one.
    pub fn recovery_record(&self) -> Option<RecoveryRecord> {
        serde_json::from_str(&self.content).ok()
    }

    /// The content as an issue pattern, when it is one.
    pub fn issue_pattern(&self) -> Option<IssuePattern> {
        serde_json::from_str(&self.content).ok()
    }

    /// One line for people: `clear_cache cured db-connection-lost in 1.2s`, `pattern
    /// db-connection-lost (error): connection refused`, or the content itself.
    pub fn summary(&self) -> String {
        if let Some(r) = self.recovery_record() {
            let took = humantime::format_duration(Duration::from_millis(
                r.duration.as_millis().min(u64::MAX as u128) as u64,
            ));
            return if r.successful {
                format!("{} cured {} in {took}", r.strategy, r.issue.issue_type)
            } else {
                format!(
                    "{} did not cure {} ({took})",
                    r.strategy, r.issue.issue_type
                )
            };
        }
        if let Some(p) = self.issue_pattern() {
            return format!(
                "pattern {} ({}): {}",
                p.issue_type,
                p.severity,
                p.symptoms.join(" | ")
            );
        }
        self.content
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The item again, as `knowledge import` reads it: everything but the id.
    pub fn to_item(&self) -> KnowledgeItem {
        KnowledgeItem {
            component: self.component.clone(),
            tags: self.tags.clone(),
            content: self.content.clone(),
            related_to: self.related_to.clone(),
            timestamp: Some(self.timestamp),
            source: Some(self.source.clone()).filter(|s| !s.is_empty()),
        }
    }
}

/// What the registry holds, for `knowledge stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeStats {
    /// The database file.
    pub path: String,
    /// `PRAGMA user_version`: the schema's migration number.
    pub schema_version: u32,
    pub items: u64,
    /// Items per component, most first.
    pub components: Vec<(String, u64)>,
    /// Items per tag, most first.
    pub tags: Vec<(String, u64)>,
    #[serde(default, with = "crate::model::opt_rfc3339")]
    pub oldest: Option<SystemTime>,
    #[serde(default, with = "crate::model::opt_rfc3339")]
    pub newest: Option<SystemTime>,
    /// The database file's size and its write-ahead log's, in bytes.
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// Retention: at most this many items per component …
    pub max_per_component: u64,
    /// … none older than this many days.
    pub max_age_days: u64,
}

/// The registry's requests, carried by `Request::Knowledge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KnowledgeRequest {
    /// Answered with [`KnowledgeAnswer::Results`].
    Query { query: KnowledgeQuery },
    /// Stores one item; answered with [`KnowledgeAnswer::Stored`] once it is durable.
    Contribute { item: KnowledgeItem },
    /// Answered with [`KnowledgeAnswer::Stats`].
    Stats,
    /// One page of everything stored, in id order: the items with an id above `after`, at most
    /// `limit` of them. Answered with [`KnowledgeAnswer::Page`].
    Export {
        #[serde(default)]
        after: Option<i64>,
        limit: usize,
    },
    /// Items as JSON lines (the format `export` writes; blank lines and lines starting with `#`
    /// are skipped), all stored in one transaction or, when any line is bad, none. `first_line`
    /// numbers the first line in error messages (default 1). Answered with
    /// [`KnowledgeAnswer::Imported`].
    Import {
        lines: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_line: Option<usize>,
    },
    /// [`KnowledgeRequest::Import`] of a JSON-lines file the core reads itself (an absolute
    /// path; the core runs as the same user), for files larger than one protocol line.
    ImportFile { path: String },
}

/// The registry's answers, carried by `Response::Knowledge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KnowledgeAnswer {
    Results {
        results: Vec<KnowledgeResult>,
    },
    /// The stored item's id.
    Stored {
        id: i64,
    },
    Stats {
        stats: KnowledgeStats,
    },
    /// `next`: the `after` of the next page, `None` after the last.
    Page {
        results: Vec<KnowledgeResult>,
        next: Option<i64>,
    },
    Imported {
        count: usize,
    },
}
