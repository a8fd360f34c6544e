//! Where each source stands in the latest selection, for the status and `peers`.

use std::fmt;

/// A source's part in the latest selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// The selected source the system follows first.
    SystemPeer,
    /// Survived selection and is combined.
    Candidate,
    /// Agreed with the majority but was clustered out.
    Outlier,
    /// Outside the agreeing majority.
    Falseticker,
    Unreachable,
    /// Only numbers a PPS clock's seconds: watched, never selected.
    NumbersPps,
    /// Answers, but its time cannot be used now.
    Unusable,
}

impl SourceState {
    pub fn name(self) -> &'static str {
        match self {
            Self::SystemPeer => "system peer",
            Self::Candidate => "candidate",
            Self::Outlier => "outlier",
            Self::Falseticker => "falseticker",
            Self::Unreachable => "unreachable",
            Self::NumbersPps => "numbers PPS seconds",
            Self::Unusable => "unusable",
        }
    }

    /// ntpq's tally code.
    pub fn tally(self) -> char {
        match self {
            Self::SystemPeer => '*',
            Self::Candidate => '+',
            Self::Outlier => '-',
            Self::Falseticker => 'x',
            Self::Unreachable | Self::NumbersPps | Self::Unusable => ' ',
        }
    }

    /// Whether the status should say what is wrong.
    pub fn has_problem(self) -> bool {
        matches!(self, Self::Unreachable | Self::Unusable)
    }
}

impl fmt::Display for SourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
