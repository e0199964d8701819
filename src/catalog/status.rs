//! The state machines of SPEC §4: jobs, tasks, archive rounds, pieces and copies, each an enum
//! with one transition function that refuses illegal moves. They own their status columns: the
//! catalog writes a status only as a compare-and-set whose accepted sources are derived from
//! `transition` ([`StateMachine::sources`]), and which states are ends is derived from it too
//! ([`StateMachine::is_end`]), for the executor and for the SQL views alike.

use std::fmt;

/// What every state machine offers; everything but the moves themselves is derived from
/// [`StateMachine::transition`], so that no list of states can drift from it.
pub trait StateMachine: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// Every state, in the order the views document them.
    const ALL: &'static [Self];

    /// The word stored in the catalog and shown in the views.
    fn as_str(self) -> &'static str;

    /// The one place that decides which moves exist.
    fn transition(self, to: Self) -> Result<Self, IllegalMove>;

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == word)
    }

    /// An end is a state nothing moves on from.
    fn is_end(self) -> bool {
        Self::ALL.iter().all(|to| self.transition(*to).is_err())
    }

    /// The states a record may be in for a move to `to`: what the catalog's compare-and-set
    /// checks.
    fn sources(to: Self) -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|from| from.transition(to).is_ok())
            .map(|s| s.as_str())
            .collect()
    }

    /// The words of the end states.
    fn ends() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|s| s.is_end())
            .map(|s| s.as_str())
            .collect()
    }

    /// The words of the states that can still change.
    fn live() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|s| !s.is_end())
            .map(|s| s.as_str())
            .collect()
    }
}

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

impl StateMachine for JobStatus {
    const ALL: &'static [JobStatus] = &[
        JobStatus::Init,
        JobStatus::Doing,
        JobStatus::Canceling,
        JobStatus::Suspending,
        JobStatus::Suspended,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Canceled,
    ];

    fn as_str(self) -> &'static str {
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

    fn transition(self, to: JobStatus) -> Result<JobStatus, IllegalMove> {
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

impl StateMachine for TaskStatus {
    const ALL: &'static [TaskStatus] = &[
        TaskStatus::Init,
        TaskStatus::Doing,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Canceled,
        TaskStatus::Suspended,
    ];

    fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Init => "INIT",
            TaskStatus::Doing => "DOING",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Canceled => "CANCELED",
            TaskStatus::Suspended => "SUSPENDED",
        }
    }

    fn transition(self, to: TaskStatus) -> Result<TaskStatus, IllegalMove> {
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

impl StateMachine for RoundStatus {
    const ALL: &'static [RoundStatus] = &[
        RoundStatus::Prepare,
        RoundStatus::Beginning,
        RoundStatus::Doing,
        RoundStatus::Interrupted,
        RoundStatus::Suspending,
        RoundStatus::Suspend,
        RoundStatus::Stopping,
        RoundStatus::Stop,
    ];

    fn as_str(self) -> &'static str {
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

    /// `PREPARE → BEGINNING → DOING ↔ INTERRUPTED`; DEFER: `DOING|INTERRUPTED → SUSPENDING →
    /// SUSPEND`, ENABLE: `SUSPEND → BEGINNING`; NOARCHIVELOG: any live state `→ STOPPING → STOP`.
    fn transition(self, to: RoundStatus) -> Result<RoundStatus, IllegalMove> {
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

impl StateMachine for PieceStatus {
    const ALL: &'static [PieceStatus] = &[
        PieceStatus::Active,
        PieceStatus::Freezing,
        PieceStatus::Frozen,
    ];

    fn as_str(self) -> &'static str {
        match self {
            PieceStatus::Active => "ACTIVE",
            PieceStatus::Freezing => "FREEZING",
            PieceStatus::Frozen => "FROZEN",
        }
    }

    fn transition(self, to: PieceStatus) -> Result<PieceStatus, IllegalMove> {
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

impl StateMachine for CopyStatus {
    const ALL: &'static [CopyStatus] = &[
        CopyStatus::Schedule,
        CopyStatus::Backup,
        CopyStatus::Doing,
        CopyStatus::Clean,
        CopyStatus::Finish,
        CopyStatus::Cancel,
    ];

    fn as_str(self) -> &'static str {
        match self {
            CopyStatus::Schedule => "SCHEDULE",
            CopyStatus::Backup => "BACKUP",
            CopyStatus::Doing => "DOING",
            CopyStatus::Clean => "CLEAN",
            CopyStatus::Finish => "FINISH",
            CopyStatus::Cancel => "CANCEL",
        }
    }

    fn transition(self, to: CopyStatus) -> Result<CopyStatus, IllegalMove> {
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

/// A job's or task's status in the words of its kind: OceanBase 4.x words for data backups,
/// restores and validations, 3.x copy words for backup-backup (which job kinds speak which is
/// [`super::jobs::JobKind::speaks_copy_words`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status<S> {
    Job(S),
    Copy(CopyStatus),
}

/// A job's status as its record holds it.
pub type JobState = Status<JobStatus>;
/// A task's status as its record holds it.
pub type TaskState = Status<TaskStatus>;

impl<S: StateMachine> Status<S> {
    /// Reads a stored word in the vocabulary of a job kind; `None` for a word the kind does
    /// not speak (a catalog written by something else).
    pub fn parse(word: &str, copy_words: bool) -> Option<Status<S>> {
        if copy_words {
            CopyStatus::parse(word).map(Status::Copy)
        } else {
            S::parse(word).map(Status::Job)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Job(s) => s.as_str(),
            Status::Copy(c) => c.as_str(),
        }
    }

    pub fn is_end(self) -> bool {
        match self {
            Status::Job(s) => s.is_end(),
            Status::Copy(c) => c.is_end(),
        }
    }

    /// The status in 4.x words, when the record speaks them.
    pub fn job(self) -> Option<S> {
        match self {
            Status::Job(s) => Some(s),
            Status::Copy(_) => None,
        }
    }
}

impl From<JobStatus> for JobState {
    fn from(s: JobStatus) -> JobState {
        Status::Job(s)
    }
}

impl From<TaskStatus> for TaskState {
    fn from(s: TaskStatus) -> TaskState {
        Status::Job(s)
    }
}

impl<S> From<CopyStatus> for Status<S> {
    fn from(c: CopyStatus) -> Status<S> {
        Status::Copy(c)
    }
}

impl<S: StateMachine> fmt::Display for Status<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status word lists the SQL views filter on, named as the `sql/*.sql` files name them
/// (`${JOB_LIVE}`, ...): derived from the state machines, so a view's live and history rows
/// are always exactly the states that can and cannot change.
pub fn view_placeholders() -> Vec<(&'static str, String)> {
    fn quoted(words: Vec<&'static str>) -> String {
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    vec![
        ("${JOB_LIVE}", quoted(JobStatus::live())),
        ("${JOB_ENDED}", quoted(JobStatus::ends())),
        ("${TASK_LIVE}", quoted(TaskStatus::live())),
        ("${TASK_ENDED}", quoted(TaskStatus::ends())),
        ("${COPY_LIVE}", quoted(CopyStatus::live())),
        ("${COPY_ENDED}", quoted(CopyStatus::ends())),
    ]
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
        for &from in JobStatus::ALL {
            for &to in JobStatus::ALL {
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
        for &from in TaskStatus::ALL {
            for &to in TaskStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
            assert_eq!(TaskStatus::parse(from.as_str()), Some(from));
        }
    }

    /// The ends the views and the executor use are derived from the transitions; these are
    /// the ends SPEC §4 names.
    #[test]
    fn ends_are_the_states_nothing_leaves() {
        assert_eq!(JobStatus::ends(), vec!["COMPLETED", "FAILED", "CANCELED"]);
        assert_eq!(
            JobStatus::live(),
            vec!["INIT", "DOING", "CANCELING", "SUSPENDING", "SUSPENDED"]
        );
        assert_eq!(TaskStatus::ends(), vec!["COMPLETED", "FAILED", "CANCELED"]);
        assert_eq!(RoundStatus::ends(), vec!["STOP"]);
        assert_eq!(PieceStatus::ends(), vec!["FROZEN"]);
        assert_eq!(JobStatus::sources(JobStatus::Canceled).len(), 4);
        let job = JobState::parse("FINISH", true).unwrap();
        assert!(job.is_end() && job.job().is_none());
        assert_eq!(JobState::parse("FINISH", false), None);
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
        for &from in RoundStatus::ALL {
            for &to in RoundStatus::ALL {
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
        for &from in PieceStatus::ALL {
            for &to in PieceStatus::ALL {
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
        for &from in CopyStatus::ALL {
            for &to in CopyStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        assert_eq!(CopyStatus::ends(), vec!["FINISH", "CANCEL"]);
    }
}
