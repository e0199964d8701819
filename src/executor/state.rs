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
        if legal {
            Ok(to)
        } else {
            Err(IllegalMove {
                from: self.as_str().into(),
                to: to.as_str().into(),
            })
        }
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
        if legal {
            Ok(to)
        } else {
            Err(IllegalMove {
                from: self.as_str().into(),
                to: to.as_str().into(),
            })
        }
    }
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
}
