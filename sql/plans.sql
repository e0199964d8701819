-- Scheduled backup plans, their policies, the chains they build, and one row per run.

CREATE VIEW oceanbase.cdb_ob_backup_plans AS
SELECT plan_name AS name, status, tenants, policies, chain_length, retention,
       execution_count, notify, create_time, next_run_time
FROM backstop.backup_plan;

CREATE VIEW oceanbase.cdb_ob_backup_policies AS
SELECT policy_name AS name, schedule, timezone, create_time
FROM backstop.backup_policy;

CREATE VIEW oceanbase.cdb_ob_backup_chains AS
SELECT chain_id, tenant_id, plan_name, kind, points, first_set_id, last_set_id, status,
       create_time
FROM backstop.backup_chain;

CREATE VIEW oceanbase.cdb_ob_backup_plan_history AS
SELECT run_id, plan_name, policy_name, job_id, start_ts AS start_timestamp,
       end_ts AS end_timestamp, status, comment
FROM backstop.plan_run;
