//! The configured sources as the system core sees them: what each one is (a server, a pool, a
//! broadcast listener, an NTS server, a reference clock), where it is, and how it is polled.

use crate::source::{RefclockConfig, SourceConfig};
use std::net::SocketAddr;

/// Where a network source is: an address, or a name to resolve (into one server, or a pool's
/// many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Address(SocketAddr),
    Name { host: String, port: u16 },
}

/// What a configured source is.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// One server. Given by name, it is resolved again when it fails.
    Server(Target),
    /// A name standing for many servers: up to `max_sources` are used, replaced when they fail.
    Pool(Target),
    /// An NTS server: `Target` is its key-exchange server.
    Nts(Target),
    /// Servers heard broadcasting to a group of this address family, each measured by client
    /// exchanges once heard.
    Broadcast { ipv4: bool },
    /// A reference clock; `pair` is the entry (index) of the clock that numbers a PPS clock's
    /// seconds.
    Refclock { clock: RefclockConfig, pair: Option<usize> },
}

impl EntryKind {
    pub fn is_refclock(&self) -> bool {
        matches!(self, Self::Refclock { .. })
    }

    /// Where to find the servers, for the kinds resolved or reached at start.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Self::Server(target) | Self::Pool(target) | Self::Nts(target) => Some(target),
            Self::Broadcast { .. } | Self::Refclock { .. } => None,
        }
    }

    /// Whether a failing member is dropped and another looked for: pools, broadcast and NTS
    /// servers, and servers given by name (whose address may have changed). A server given by
    /// address and a reference clock are kept whatever they do.
    pub fn replaceable(&self) -> bool {
        match self {
            Self::Server(target) => matches!(target, Target::Name { .. }),
            Self::Pool(_) | Self::Nts(_) | Self::Broadcast { .. } => true,
            Self::Refclock { .. } => false,
        }
    }
}

/// One configured source (a `[[source]]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryConfig {
    /// As configured (a name, an address, a device), for logs and the status.
    pub name: String,
    pub kind: EntryKind,
    /// How its servers are polled; the burst spacing is set by the core.
    pub poll: SourceConfig,
    /// Servers used at once (pools and broadcast; 1 for the others).
    pub max_sources: u8,
    /// Used only while no other source is selectable.
    pub fallback: bool,
    /// Followed alone whenever it survives selection.
    pub prefer: bool,
}

/// Why a configured name has no server in use, for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// Its resolution is under way or about to start: no answer yet.
    Resolving,
    /// The latest resolution failed: the resolver's error.
    Failed(String),
    /// It resolved, but only to servers that other sources use already; it is asked again later.
    ServersTaken,
}

impl Unresolved {
    /// The state the status shows for the name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Resolving => "resolving",
            Self::Failed(_) => "unresolved",
            Self::ServersTaken => "no free server",
        }
    }

    /// Why the name has no server, in words.
    pub fn reason(&self) -> String {
        match self {
            Self::Resolving => "no answer from the resolver yet".to_owned(),
            Self::Failed(error) => error.clone(),
            Self::ServersTaken => {
                "every server it gives is used by another source; asking again later".to_owned()
            }
        }
    }
}

/// A configured pool or server name that has no server in use now, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct UnresolvedEntry<'a> {
    /// The configured source (an index into the entries given at the start).
    pub entry: usize,
    pub config: &'a EntryConfig,
    pub why: Unresolved,
}
