//! The job and task state machines of SPEC §4.1, each an enum with one transition function that
//! refuses illegal moves. Every status change the executor writes goes through them.

use std::fmt;

/// A data backup, restore or validation job (4.x words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Init,
    Doing,
    Canceling,
    Suspending,
    Suspended,
    Completed,
    Failed,
    Canceled,
}

/// One tenant's (or one set's) share of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Init,
    Doing,
    Completed,
    Failed,
    Canceled,
    Suspended,
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalMove {
    pub from: String,
    pub to: String,
}

impl IllegalMove {
    /// `Ok` when the move from `from` to `to` is `legal`, else the refusal naming both: what
    /// every state machine's transition function returns.
    fn unless(legal: bool, from: &str, to: &str) -> Result<(), IllegalMove> {
        if legal {
            Ok(())
        } else {
            Err(IllegalMove {
                from: from.into(),
                to: to.into(),
            })
        }
    }
}

impl fmt::Display for IllegalMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a job in state {} cannot move to {}", self.from, self.to)
    }
}

impl JobStatus {
    pub const ALL: [JobStatus; 8] = [
        JobStatus::Init,
        JobStatus::Doing,
        JobStatus::Canceling,
        JobStatus::Suspending,
        JobStatus::Suspended,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Init => "INIT",
            JobStatus::Doing => "DOING",
            JobStatus::Canceling => "CANCELING",
            JobStatus::Suspending => "SUSPENDING",
            JobStatus::Suspended => "SUSPENDED",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Canceled => "CANCELED",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|j| j.as_str() == s)
    }

    pub fn is_end(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Canceled
        )
    }

    /// The one place that decides which moves exist.
    pub fn transition(self, to: JobStatus) -> Result<JobStatus, IllegalMove> {
        use JobStatus::*;
        let legal = matches!(
            (self, to),
            (Init, Doing | Canceling | Canceled | Failed)
                | (Doing, Completed | Failed | Canceling | Canceled | Suspending)
                | (Canceling, Canceled)
                // A suspend that arrives as the last task completes: nothing is left to suspend.
                | (Suspending, Suspended | Canceling | Completed | Failed)
                | (Suspended, Doing | Canceled | Failed)
        );
        IllegalMove::unless(legal, self.as_str(), to.as_str()).map(|()| to)
    }
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Init,
        TaskStatus::Doing,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Canceled,
        TaskStatus::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Init => "INIT",
            TaskStatus::Doing => "DOING",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Canceled => "CANCELED",
            TaskStatus::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn is_end(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Canceled
        )
    }

    pub fn transition(self, to: TaskStatus) -> Result<TaskStatus, IllegalMove> {
        use TaskStatus::*;
        let legal = matches!(
            (self, to),
            (Init, Doing | Canceled | Failed | Suspended)
                | (Doing, Completed | Failed | Canceled | Suspended)
                | (Suspended, Doing | Canceled | Failed)
        );
        IllegalMove::unless(legal, self.as_str(), to.as_str()).map(|()| to)
    }
}

/// An archive round (SPEC §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundStatus {
    Prepare,
    Beginning,
    Doing,
    Interrupted,
    Suspending,
    Suspend,
    Stopping,
    Stop,
}

impl RoundStatus {
    pub const ALL: [RoundStatus; 8] = [
        RoundStatus::Prepare,
        RoundStatus::Beginning,
        RoundStatus::Doing,
        RoundStatus::Interrupted,
        RoundStatus::Suspending,
        RoundStatus::Suspend,
        RoundStatus::Stopping,
        RoundStatus::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoundStatus::Prepare => "PREPARE",
            RoundStatus::Beginning => "BEGINNING",
            RoundStatus::Doing => "DOING",
            RoundStatus::Interrupted => "INTERRUPTED",
            RoundStatus::Suspending => "SUSPENDING",
            RoundStatus::Suspend => "SUSPEND",
            RoundStatus::Stopping => "STOPPING",
            RoundStatus::Stop => "STOP",
        }
    }

    pub fn parse(s: &str) -> Option<RoundStatus> {
        RoundStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The states a round can be moved from to reach `to`: what the catalog's guarded update
    /// checks, derived from [`RoundStatus::transition`] so that the two never disagree.
    pub fn sources(to: RoundStatus) -> Vec<&'static str> {
        RoundStatus::ALL
            .into_iter()
            .filter(|from| from.transition(to).is_ok())
            .map(RoundStatus::as_str)
            .collect()
    }

    /// `PREPARE → BEGINNING → DOING ↔ INTERRUPTED`; DEFER: `DOING|INTERRUPTED → SUSPENDING →
    /// SUSPEND`, ENABLE: `SUSPEND → BEGINNING`; NOARCHIVELOG: any live state `→ STOPPING → STOP`.
    pub fn transition(self, to: RoundStatus) -> Result<RoundStatus, IllegalMove> {
        use RoundStatus::*;
        let legal = matches!(
            (self, to),
            (Prepare, Beginning)
                | (Beginning, Doing | Interrupted | Suspending)
                | (Doing, Interrupted | Suspending)
                | (Interrupted, Doing | Suspending)
                | (Suspending, Suspend)
                | (Suspend, Beginning)
                | (
                    Prepare | Beginning | Doing | Interrupted | Suspending | Suspend,
                    Stopping
                )
                | (Stopping, Stop)
        );
        IllegalMove::unless(legal, self.as_str(), to.as_str()).map(|()| to)
    }
}

/// A piece of an archive round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PieceStatus {
    Active,
    Freezing,
    Frozen,
}

impl PieceStatus {
    pub const ALL: [PieceStatus; 3] = [
        PieceStatus::Active,
        PieceStatus::Freezing,
        PieceStatus::Frozen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PieceStatus::Active => "ACTIVE",
            PieceStatus::Freezing => "FREEZING",
            PieceStatus::Frozen => "FROZEN",
        }
    }

    pub fn transition(self, to: PieceStatus) -> Result<PieceStatus, IllegalMove> {
        use PieceStatus::*;
        let legal = matches!((self, to), (Active, Freezing) | (Freezing, Frozen));
        IllegalMove::unless(legal, self.as_str(), to.as_str()).map(|()| to)
    }
}

/// A backup-backup (copy) job or task, in OceanBase 3.x words: a set copy moves `SCHEDULE →
/// BACKUP → CLEAN → FINISH` (its tasks `SCHEDULE → BACKUP → FINISH`), a piece copy `SCHEDULE →
/// DOING → FINISH`; any may end `CANCEL`. A failure ends FINISH with a RESULT other than 0, as
/// OceanBase shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyStatus {
    Schedule,
    Backup,
    Doing,
    Clean,
    Finish,
    Cancel,
}

impl CopyStatus {
    pub const ALL: [CopyStatus; 6] = [
        CopyStatus::Schedule,
        CopyStatus::Backup,
        CopyStatus::Doing,
        CopyStatus::Clean,
        CopyStatus::Finish,
        CopyStatus::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CopyStatus::Schedule => "SCHEDULE",
            CopyStatus::Backup => "BACKUP",
            CopyStatus::Doing => "DOING",
            CopyStatus::Clean => "CLEAN",
            CopyStatus::Finish => "FINISH",
            CopyStatus::Cancel => "CANCEL",
        }
    }

    pub fn parse(s: &str) -> Option<CopyStatus> {
        CopyStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn is_end(self) -> bool {
        matches!(self, CopyStatus::Finish | CopyStatus::Cancel)
    }

    pub fn transition(self, to: CopyStatus) -> Result<CopyStatus, IllegalMove> {
        use CopyStatus::*;
        let legal = matches!(
            (self, to),
            (Schedule, Backup | Doing | Finish | Cancel)
                | (Backup, Clean | Finish | Cancel)
                | (Doing, Finish | Cancel)
                | (Clean, Finish | Cancel)
        );
        IllegalMove::unless(legal, self.as_str(), to.as_str()).map(|()| to)
    }
}

/// Whether a job's status, in either set of words, is an end.
pub fn is_job_end(status: &str) -> bool {
    JobStatus::parse(status).is_some_and(JobStatus::is_end)
        || CopyStatus::parse(status).is_some_and(CopyStatus::is_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair of states, legal or not, against the table of SPEC §4.1.
    #[test]
    fn job_transitions_are_exactly_the_specified_ones() {
        use JobStatus::*;
        let legal = [
            (Init, Doing),
            (Init, Canceling),
            (Init, Canceled),
            (Init, Failed),
            (Doing, Completed),
            (Doing, Failed),
            (Doing, Canceling),
            (Doing, Canceled),
            (Doing, Suspending),
            (Canceling, Canceled),
            (Suspending, Suspended),
            (Suspending, Canceling),
            (Suspending, Completed),
            (Suspending, Failed),
            (Suspended, Doing),
            (Suspended, Canceled),
            (Suspended, Failed),
        ];
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                let expected = legal.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), expected, "{from:?} -> {to:?}");
            }
            assert_eq!(JobStatus::parse(from.as_str()), Some(from));
        }
        for end in [Completed, Failed, Canceled] {
            assert!(end.is_end());
            assert!(JobStatus::ALL.iter().all(|to| end.transition(*to).is_err()));
        }
    }

    #[test]
    fn task_transitions_are_exactly_the_specified_ones() {
        use TaskStatus::*;
        let legal = [
            (Init, Doing),
            (Init, Canceled),
            (Init, Failed),
            (Init, Suspended),
            (Doing, Completed),
            (Doing, Failed),
            (Doing, Canceled),
            (Doing, Suspended),
            (Suspended, Doing),
            (Suspended, Canceled),
            (Suspended, Failed),
        ];
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
            assert_eq!(TaskStatus::parse(from.as_str()), Some(from));
        }
    }

    #[test]
    fn illegal_moves_say_what_was_refused() {
        let e = JobStatus::Completed
            .transition(JobStatus::Doing)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a job in state COMPLETED cannot move to DOING"
        );
    }

    #[test]
    fn round_transitions_are_exactly_the_specified_ones() {
        use RoundStatus::*;
        let legal = [
            (Prepare, Beginning),
            (Beginning, Doing),
            (Beginning, Interrupted),
            (Beginning, Suspending),
            (Doing, Interrupted),
            (Doing, Suspending),
            (Interrupted, Doing),
            (Interrupted, Suspending),
            (Suspending, Suspend),
            (Suspend, Beginning),
            (Prepare, Stopping),
            (Beginning, Stopping),
            (Doing, Stopping),
            (Interrupted, Stopping),
            (Suspending, Stopping),
            (Suspend, Stopping),
            (Stopping, Stop),
        ];
        for from in RoundStatus::ALL {
            for to in RoundStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
            assert_eq!(RoundStatus::parse(from.as_str()), Some(from));
        }
        assert_eq!(RoundStatus::sources(Suspend), vec!["SUSPENDING"]);
        assert_eq!(RoundStatus::sources(Stop), vec!["STOPPING"]);
    }

    #[test]
    fn pieces_only_move_forward() {
        use PieceStatus::*;
        for from in PieceStatus::ALL {
            for to in PieceStatus::ALL {
                let legal = matches!((from, to), (Active, Freezing) | (Freezing, Frozen));
                assert_eq!(from.transition(to).is_ok(), legal, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn copy_jobs_move_forward_and_end_in_finish_or_cancel() {
        use CopyStatus::*;
        let legal = [
            (Schedule, Backup),
            (Schedule, Doing),
            (Doing, Finish),
            (Doing, Cancel),
            (Schedule, Finish),
            (Schedule, Cancel),
            (Backup, Clean),
            (Backup, Finish),
            (Backup, Cancel),
            (Clean, Finish),
            (Clean, Cancel),
        ];
        for from in CopyStatus::ALL {
            for to in CopyStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        assert!(is_job_end("CANCEL") && is_job_end("COMPLETED") && !is_job_end("BACKUP"));
    }
}
