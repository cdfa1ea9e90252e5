//! The guide's `KnowledgeClient` (§5.1): how a Rust component queries the knowledge registry and
//! contributes what it learns.
//!
//! A cheap handle on one background task that owns the connection to the core; calls go to the
//! core one at a time, in order. After a connection failure the next call connects again by
//! itself (a call that failed is never retried: a contribution might have been stored).
//!
//! ```no_run
//! use hms::{KnowledgeClient, KnowledgeItem, KnowledgeQuery};
//!
//! # async fn demo() -> Result<(), hms::component::KnowledgeClientError> {
//! let knowledge = KnowledgeClient::new("my-component");
//! knowledge.connect().await?;
//! let known = knowledge
//!     .query(
//!         KnowledgeQuery::new()
//!             .tag("recovery")
//!             .related_to("db-connection-lost")
//!             .filter("successful = true")
//!             .sort("timestamp", "desc")
//!             .limit(5),
//!     )
//!     .await?;
//! knowledge
//!     .contribute(
//!         KnowledgeItem::new()
//!             .component("my-component")
//!             .tags(vec!["issue", "pattern"])
//!             .content(r#"{"issue_type":"db-connection-lost","symptoms":["ECONNREFUSED"],"severity":"error"}"#),
//!     )
//!     .await?;
//! # let _ = known;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};

use super::mailbox::{Mailbox, Stopped};
use crate::client::{Client, ClientError};
use crate::protocol::{KnowledgeItem, KnowledgeQuery, KnowledgeResult};

/// Why a knowledge call failed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeClientError {
    /// The core could not be reached, refused the call (an invalid filter says where and why),
    /// or answered something unexpected.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The client's background task has ended (it panicked); make a new client.
    #[error("the knowledge client's background task has stopped")]
    Stopped,
}

impl From<Stopped> for KnowledgeClientError {
    fn from(_: Stopped) -> Self {
        KnowledgeClientError::Stopped
    }
}

type Reply<T> = oneshot::Sender<Result<T, KnowledgeClientError>>;

enum Command {
    Connect(Reply<()>),
    Query(KnowledgeQuery, Reply<Vec<KnowledgeResult>>),
    Contribute(KnowledgeItem, Reply<i64>),
}

/// A component's link to the knowledge registry.
pub struct KnowledgeClient {
    id: String,
    owner: Mailbox<Command>,
}

impl KnowledgeClient {
    /// A client for component `id` on the default socket (`HMS_SOCKET`, else the usual one).
    pub fn new(id: &str) -> KnowledgeClient {
        Self::with_socket(id, crate::paths::socket_path(None))
    }

    /// A client for a core listening on `socket`.
    pub fn with_socket(id: &str, socket: PathBuf) -> KnowledgeClient {
        let owner = Owner {
            id: id.to_string(),
            socket,
            client: None,
        };
        KnowledgeClient {
            id: id.to_string(),
            owner: Mailbox::new(|inbox| owner.run(inbox)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Connects to the core.
    pub async fn connect(&self) -> Result<(), KnowledgeClientError> {
        self.owner.ask(Command::Connect).await?
    }

    /// Runs a query; results newest first unless the query sorts otherwise.
    pub async fn query(
        &self,
        query: KnowledgeQuery,
    ) -> Result<Vec<KnowledgeResult>, KnowledgeClientError> {
        self.owner.ask(|reply| Command::Query(query, reply)).await?
    }

    /// Stores an item (its component defaults to this client's id, its source is this client's
    /// id); returns the stored item's id once it is durable.
    pub async fn contribute(&self, item: KnowledgeItem) -> Result<i64, KnowledgeClientError> {
        self.owner
            .ask(|reply| Command::Contribute(item, reply))
            .await?
    }
}

struct Owner {
    id: String,
    socket: PathBuf,
    /// `None` before `connect` and after a connection failure.
    client: Option<Client>,
}

impl Owner {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = inbox.recv().await {
            match command {
                Command::Connect(reply) => {
                    self.client = None;
                    let _ = reply.send(self.client().await.map(drop));
                }
                Command::Query(query, reply) => {
                    let result = match self.client().await {
                        Ok(c) => c.knowledge_query(query).await.map_err(Into::into),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(self.settle(result));
                }
                Command::Contribute(mut item, reply) => {
                    if item.component.is_empty() {
                        item.component = self.id.clone();
                    }
                    item.source.get_or_insert_with(|| self.id.clone());
                    let result = match self.client().await {
                        Ok(c) => c.knowledge_contribute(item).await.map_err(Into::into),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(self.settle(result));
                }
            }
        }
    }

    /// The connection, made now if there is none.
    async fn client(&mut self) -> Result<&mut Client, KnowledgeClientError> {
        if self.client.is_none() {
            let name = format!("{}:knowledge", self.id);
            self.client = Some(Client::connect(&self.socket, &name).await?);
        }
        Ok(self.client.as_mut().expect("just connected"))
    }

    /// Drops the connection after a failure of the connection itself, so the next call makes
    /// a new one; a refusal by the core keeps it.
    fn settle<T>(
        &mut self,
        result: Result<T, KnowledgeClientError>,
    ) -> Result<T, KnowledgeClientError> {
        if let Err(KnowledgeClientError::Client(
            ClientError::Io(_) | ClientError::Closed | ClientError::Protocol(_),
        )) = &result
        {
            self.client = None;
        }
        result
    }
}
