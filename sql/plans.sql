-- Scheduled backup plans, their policies, the chains they build, and one row per run.

CREATE VIEW oceanbase.cdb_ob_backup_plans AS
SELECT p.plan_name AS name, p.status, p.tenants, p.policies, p.chain_length, p.retention,
       p.notify_shown AS notify, p.execution_count, r.last_run_time, p.next_run_time, p.create_time
FROM backstop.backup_plan p
LEFT JOIN (SELECT plan_name, max(start_ts) AS last_run_time FROM backstop.plan_run
           GROUP BY plan_name) r ON r.plan_name = p.plan_name;

CREATE VIEW oceanbase.cdb_ob_backup_policies AS
SELECT policy_name AS name, schedule, timezone, create_time
FROM backstop.backup_policy;

CREATE VIEW oceanbase.cdb_ob_backup_chains AS
SELECT chain_id, tenant_id, plan_name, kind, points, first_set_id, last_set_id, status,
       create_time
FROM backstop.backup_chain;

-- One row per run: when it was due, when it ran, the jobs it started, how it ended.
CREATE VIEW oceanbase.cdb_ob_backup_plan_history AS
SELECT run_id, plan_name, policy_name, scheduled_ts AS scheduled_time,
       start_ts AS start_timestamp, end_ts AS end_timestamp, jobs, status AS result, comment,
       job_id
FROM backstop.plan_run;

-- Each delivery of a plan or job event: to a channel (at once) or a URL (retried).
CREATE VIEW oceanbase.cdb_ob_backup_notifications AS
SELECT notification_id, target, event, status, attempts, outcome, payload, create_time,
       update_time
FROM backstop.notification;
