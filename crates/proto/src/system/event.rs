//! What flows between the system core and whoever drives it: what happened at a source (in), and
//! the actions to carry out and the notices to log (out).

use super::entry::Unresolved;
use crate::leap::LeapKind;
use crate::packet::ReferenceId;
use crate::source::{Measurement, NtpSource, RefclockSource, SourceId};
use crate::sync::DisciplineEvent;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// What happened at a source, reported with its latest view.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    /// A request went out (or a reference clock was polled without a sample).
    Polled,
    Sample(Measurement),
    /// An answer without usable time, and why.
    Unusable(&'static str),
    /// Kiss-o'-death with this code.
    Kiss(ReferenceId),
    /// The request could not be sent, or a reference clock's input could not be read.
    Failed(String),
}

/// Why a source has no usable time now, for the status.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    Unusable(&'static str),
    Kiss(ReferenceId),
    Failed(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unusable(reason) => f.write_str(reason),
            Self::Kiss(code) => write!(f, "kiss-o'-death {}", code.display_for_stratum(0)),
            Self::Failed(error) => f.write_str(error),
        }
    }
}

/// What the kernel is told about the clock while we steer it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelSyncStatus {
    pub synchronised: bool,
    /// Seconds.
    pub max_error: f64,
    /// Seconds.
    pub estimated_error: f64,
    /// The leap second the kernel should make at the end of this UTC day.
    pub leap: Option<LeapKind>,
}

/// Why a source was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Refused,
    Unreachable,
    Falseticker,
    /// It answers, but none of its answers can be used (the reason of the latest).
    AnswersUnusable(&'static str),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("it refused us (kiss-o'-death)"),
            Self::Unreachable => f.write_str("it stopped answering"),
            Self::Falseticker => f.write_str("it disagrees with the other servers (falseticker)"),
            Self::AnswersUnusable(reason) => write!(f, "its answers cannot be used: {reason}"),
        }
    }
}

/// Something to carry out, in the order given.
#[derive(Debug, Clone)]
pub enum Action {
    /// Start a task polling `address` for configured source `entry`, driving `source`.
    StartSource {
        id: SourceId,
        entry: usize,
        address: SocketAddr,
        source: Box<NtpSource>,
    },
    /// Start reading the reference clock of configured source `entry`, driving `source`.
    StartRefclock {
        id: SourceId,
        entry: usize,
        source: Box<RefclockSource>,
    },
    /// Stop a source's task; it is no longer part of the system.
    StopSource {
        id: SourceId,
    },
    /// Resolve `host:port` and hand the outcome to [`super::System::handle_resolution`].
    Resolve {
        entry: usize,
        host: String,
        port: u16,
    },
    /// The clock is beyond the panic threshold: stop (and do nothing after this).
    Panic {
        offset: f64,
    },
    /// Step the clock by `offset` seconds; every source shifts its samples by it.
    Step {
        offset: f64,
    },
    /// Step the clock for a leap second; the sources' samples stay (the servers leap too).
    LeapStep {
        offset: f64,
    },
    /// Set the clock's frequency correction (s/s).
    SetFrequency {
        frequency: f64,
    },
    SetKernelStatus(KernelSyncStatus),
    /// Tell a PPS clock the offset of the clock that numbers its seconds (`None`: none now).
    FeedPair {
        id: SourceId,
        offset: Option<f64>,
    },
    /// Write the frequency correction to the drift file.
    WriteDrift {
        frequency_ppm: f64,
    },
    /// Read the leap-seconds list again if it changed, and hand any news to
    /// [`super::System::set_leap_table`].
    RefreshLeapFile,
    Notice(Notice),
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Discipline(DisciplineEvent),
    /// The synchronisation state changed: see [`super::System::sync`].
    StateChanged,
    /// A source started.
    Started {
        id: SourceId,
    },
    /// A source was dropped and another is looked for.
    Dropped {
        entry: usize,
        location: String,
        why: DropReason,
    },
    /// Resolving an entry's name failed (said once until the error changes).
    ResolveFailed {
        error: String,
        retry_in: Duration,
    },
    /// A server was heard broadcasting and is now measured.
    HeardBroadcaster {
        address: SocketAddr,
    },
    /// A leap second's step is due but the clock is not steered.
    LeapStepNotMade {
        offset: f64,
    },
    /// No source can be reached any more, where one could before: said once, until one is back.
    EverySourceLost {
        /// Where the running sources are; none of them answers.
        unreachable: Vec<String>,
        /// The configured names without a server in use, and why.
        unresolved: Vec<(String, Unresolved)>,
    },
    /// Source `id` answers again after every source was lost.
    SourceBack {
        id: SourceId,
    },
}
