//! The progress line a WAIT sends as a NOTICE: what the job has done so far, in the words of its
//! kind (a backup reads, a restore writes, a validation checks, a copy sends, a deletion
//! reclaims), read from the catalog with the live figures of running work over it.

use super::Executor;
use crate::catalog::jobs::{JobKind, JobRecord};
use crate::error::{SqlError, SqlResult};
use crate::views::functions::display_bytes;

/// What the tasks of a job (or a restore's job row) add up to.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct JobFigures {
    pub tasks: i64,
    pub tasks_done: i64,
    /// Bytes processed (read, written, checked, sent or reclaimed), and of how many.
    pub bytes: i64,
    pub total_bytes: i64,
    /// Entries, objects or segments processed, and of how many.
    pub items: i64,
    pub total_items: i64,
    /// Bytes a backup has written to its destination (compressed, new chunks only).
    pub written: i64,
}

impl Executor {
    /// The state a WAIT reports: the job's status and a progress line.
    pub fn job_state(&self, job_id: i64) -> SqlResult<(JobRecord, String)> {
        let job = self
            .catalog
            .job(job_id)?
            .ok_or_else(|| SqlError::undefined(format!("job {job_id} does not exist")))?;
        let figures = self.job_figures(&job)?;
        let line = format!(
            "job {job_id} {}: {}",
            job.status.as_str(),
            progress_line(job.kind, &figures, job.comment.as_deref())
        );
        Ok((job, line))
    }

    fn job_figures(&self, job: &JobRecord) -> SqlResult<JobFigures> {
        let live = self.catalog.live_progress();
        let job_row = self.catalog.read(
            "SELECT coalesce(finish_bytes, 0), coalesce(total_bytes, 0), \
             coalesce(finish_file_count, 0), coalesce(file_count, 0), coalesce(output_bytes, 0) \
             FROM job WHERE job_id = ?",
            &[job.job_id.into()],
        )?;
        let int = |i: usize| job_row.first().and_then(|r| r[i].as_i64()).unwrap_or(0);
        if job.kind == JobKind::Restore {
            // A restore has no tasks: its job row holds what it writes.
            let running = live.job(job.job_id);
            return Ok(JobFigures {
                bytes: running.map_or(int(0), |f| f.bytes),
                total_bytes: int(1),
                items: running.map_or(int(2), |f| f.files),
                total_items: running.map_or(int(3), |f| f.total_files),
                written: running.map_or(int(4), |f| f.written),
                ..JobFigures::default()
            });
        }
        let rows = self.catalog.read(
            "SELECT task_id, status, input_bytes, total_bytes, finish_file_count, file_count, \
             coalesce(result, 0), output_bytes FROM task WHERE job_id = ?",
            &[job.job_id.into()],
        )?;
        let mut f = JobFigures {
            tasks: rows.len() as i64,
            ..JobFigures::default()
        };
        for r in &rows {
            // Copies speak 3.x's words: FINISH with RESULT 0 is a completed task.
            let done = match r[1].as_str().unwrap_or_default() {
                "COMPLETED" => true,
                "FINISH" => r[6].as_i64() == Some(0),
                _ => false,
            };
            f.tasks_done += i64::from(done);
            let int = |i: usize| r[i].as_i64().unwrap_or(0);
            let (bytes, total, items, total_items, written) =
                match r[0].as_i64().and_then(|id| live.task(id)) {
                    Some(p) => (
                        p.input_bytes,
                        p.total_bytes,
                        p.finish_file_count,
                        p.file_count,
                        p.output_bytes,
                    ),
                    None => (int(2), int(3), int(4), int(5), int(7)),
                };
            f.written += written;
            f.bytes += bytes;
            f.total_bytes += total;
            f.items += items;
            f.total_items += total_items;
        }
        if job.kind == JobKind::Delete {
            // A deletion's bytes are what its collection reclaimed, kept on the job.
            f.bytes = int(0);
        }
        Ok(f)
    }
}

/// One line of progress in the words of the job's kind.
pub fn progress_line(kind: JobKind, f: &JobFigures, comment: Option<&str>) -> String {
    let of = |verb: &str| {
        if f.total_bytes > 0 {
            format!(
                "{} of {} {verb} ({:.1}%)",
                display_bytes(f.bytes),
                display_bytes(f.total_bytes),
                percent(f.bytes, f.total_bytes)
            )
        } else {
            format!("{} {verb}", display_bytes(f.bytes))
        }
    };
    let tasks = format!("{}/{} tasks completed", f.tasks_done, f.tasks);
    let items = |noun: &str| {
        if f.total_items > 0 {
            format!("{}/{} {noun}", f.items, f.total_items)
        } else {
            format!("{} {noun}", f.items)
        }
    };
    match kind {
        JobKind::Backup => format!(
            "{tasks}, {}, {}, {} written",
            items("files"),
            of("read"),
            display_bytes(f.written)
        ),
        JobKind::Restore => format!(
            "{}, {}, {} written",
            items("files"),
            of("restored"),
            display_bytes(f.written)
        ),
        JobKind::Validate => format!("{tasks}, {}, {}", items("objects"), of("checked")),
        JobKind::BackupBackupset | JobKind::BackupBackuppiece => {
            format!("{tasks}, {}, {}", items("objects"), of("sent"))
        }
        JobKind::Delete => {
            let collecting = comment
                .filter(|c| c.starts_with("collecting"))
                .map(|c| format!("; {c}"))
                .unwrap_or_default();
            format!("{tasks}, {} reclaimed{collecting}", display_bytes(f.bytes))
        }
    }
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        100.0 * part.min(whole) as f64 / whole as f64
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_speaks_its_own_words() {
        let f = JobFigures {
            tasks: 2,
            tasks_done: 1,
            bytes: 512,
            total_bytes: 2048,
            items: 3,
            total_items: 12,
            written: 100,
        };
        assert_eq!(
            progress_line(JobKind::Backup, &f, None),
            "1/2 tasks completed, 3/12 files, 512B of 2.00KB read (25.0%), 100B written"
        );
        assert_eq!(
            progress_line(JobKind::Restore, &f, None),
            "3/12 files, 512B of 2.00KB restored (25.0%), 100B written"
        );
        assert_eq!(
            progress_line(JobKind::Validate, &f, None),
            "1/2 tasks completed, 3/12 objects, 512B of 2.00KB checked (25.0%)"
        );
        assert_eq!(
            progress_line(JobKind::BackupBackuppiece, &f, None),
            "1/2 tasks completed, 3/12 objects, 512B of 2.00KB sent (25.0%)"
        );
        assert_eq!(
            progress_line(JobKind::Delete, &f, Some("collecting: 1 of 4 roots read")),
            "1/2 tasks completed, 512B reclaimed; collecting: 1 of 4 roots read"
        );
        let nothing = JobFigures::default();
        assert_eq!(
            progress_line(JobKind::BackupBackupset, &nothing, None),
            "0/0 tasks completed, 0 objects, 0B sent"
        );
    }
}
