//! The query handlers: every statement a client sends, in the simple or the extended protocol,
//! goes to `control` when it is backstop's own and to DataFusion otherwise.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use futures::FutureExt;
use futures::Sink;
use futures::stream;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_USER, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use super::Shared;
use super::compat::{self, Answer};
use super::encode;
use super::session::Session;
use crate::control::{Caller, Outcome};
use crate::error::{SqlError, SqlResult, from_datafusion};
use crate::sql::ast::{ArchiveStatement, Command, Role, Statement};
use crate::sql::{self, Parsed, SegmentBytes};

/// A statement prepared with the extended protocol.
#[derive(Clone)]
pub enum Prepared {
    Backstop(Command),
    /// SET, SHOW, transaction control: answered by `compat` when executed.
    Compat(String),
    Query {
        sql: String,
        plan: LogicalPlan,
    },
}

pub struct Backend {
    shared: Arc<Shared>,
    parser: Arc<StatementParser>,
}

impl Backend {
    pub fn new(shared: Arc<Shared>) -> Backend {
        Backend {
            parser: Arc::new(StatementParser {
                shared: shared.clone(),
            }),
            shared,
        }
    }
}

fn session_of<C: ClientInfo + ?Sized>(shared: &Shared, client: &C) -> Arc<Session> {
    client.session_extensions().get_or_insert_with(|| {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        Session::new(
            shared.views.session(),
            user,
            client.socket_addr().to_string(),
        )
    })
}

fn caller(shared: &Shared, session: &Session) -> SqlResult<Caller> {
    let user = shared.catalog.user(&session.user)?.ok_or_else(|| {
        SqlError::not_permitted(format!("user {} no longer exists", session.user))
    })?;
    Ok(Caller {
        user: user.name,
        role: user.role,
        keys: session.keys(),
    })
}

fn is_compat(sql: &str) -> bool {
    let upper = sql.trim_start().to_ascii_uppercase();
    let first = upper.split_whitespace().next().unwrap_or_default();
    let keyword = matches!(
        first,
        "SET"
            | "SHOW"
            | "RESET"
            | "BEGIN"
            | "START"
            | "COMMIT"
            | "END"
            | "ROLLBACK"
            | "ABORT"
            | "DISCARD"
            | "DEALLOCATE"
            | "LISTEN"
            | "UNLISTEN"
    );
    (keyword && !upper.starts_with("SET DATAFUSION.")) || super::psql::recognise(sql).is_some()
}

/// What a statement gets while the server shuts down.
pub(super) fn shutting_down() -> SqlError {
    SqlError::new(
        crate::error::sqlstate::ADMIN_SHUTDOWN,
        "backstop is shutting down; running data backups are suspended and resume when it starts again",
    )
}

fn query_response(
    batches: &[RecordBatch],
    schema: &datafusion::arrow::datatypes::Schema,
    format: &Format,
) -> PgWireResult<Response> {
    let fields = Arc::new(encode::fields(schema, format));
    let rows = encode::rows(batches, fields.clone())?;
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(rows.into_iter().map(Ok)),
    )))
}

impl Shared {
    async fn apply(&self, session: &Session, command: Command) -> SqlResult<Outcome> {
        if self.control.executor().is_shutting_down() {
            return Err(shutting_down());
        }
        let caller = caller(self, session)?;
        let control = self.control.clone();
        let audited = crate::sql::audit::is_audited(&command.statement).then(|| {
            (
                command.statement.name(),
                crate::sql::audit::audit_text(&command.statement),
            )
        });
        let result = tokio::task::spawn_blocking(move || control.apply(&caller, &command))
            .await
            .map_err(|e| SqlError::internal(format!("statement task failed: {e}")))
            .and_then(|applied| applied);
        if let Some((kind, text)) = audited {
            self.audit(session, kind, text, result.as_ref().err());
        }
        result
    }

    /// Appends a statement to the audit trail (CDB_OB_AUDIT). A trail that cannot be written is
    /// logged as an error; the statement has already run.
    fn audit(&self, session: &Session, kind: &str, text: String, error: Option<&SqlError>) {
        let entry = crate::catalog::audit::AuditEntry {
            user: session.user.clone(),
            client_address: session.client_address.clone(),
            statement_type: kind.to_string(),
            statement: text,
            error: error.map(|e| (e.code.code().to_string(), e.message.clone())),
        };
        if let Err(e) = self.catalog.record_audit(&entry) {
            tracing::error!(user = %entry.user, statement = kind, error = %e,
                "cannot record a statement in the audit trail");
        }
    }

    /// Answers a backstop statement; waiting statements stream NOTICEs to `client`.
    async fn run_command<C>(
        &self,
        client: &mut C,
        session: &Session,
        command: Command,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self.apply(session, command).await? {
            Outcome::Done(tag) => Ok(Response::Execution(Tag::new(tag))),
            Outcome::Job { wait: false, .. } => Ok(Response::Execution(Tag::new("ALTER SYSTEM"))),
            Outcome::Job { job_id, wait: true } => {
                super::wait::wait_for_job(client, self.control.executor(), job_id, None).await
            }
            Outcome::Notice {
                job_id,
                wait,
                notice,
            } => {
                super::wait::notice(client, notice).await?;
                if wait {
                    super::wait::wait_for_job(client, self.control.executor(), job_id, None).await
                } else {
                    Ok(Response::Execution(Tag::new("ALTER SYSTEM")))
                }
            }
            Outcome::Wait { job_id, timeout } => {
                super::wait::wait_for_job(client, self.control.executor(), job_id, timeout).await
            }
            Outcome::Rows(batch) => {
                query_response(std::slice::from_ref(&batch), &batch.schema(), format)
            }
            Outcome::SessionKeys(change) => {
                session.change_keys(change);
                Ok(Response::Execution(Tag::new("SET")))
            }
        }
    }

    async fn run_compat(
        &self,
        session: &Session,
        sql: &str,
        format: &Format,
    ) -> Option<PgWireResult<Response>> {
        let answer = compat::answer(self, session, sql).await?;
        Some(match answer {
            Err(e) => Err(e.into()),
            Ok(Answer::Tag(tag)) => Ok(Response::Execution(Tag::new(tag))),
            Ok(Answer::Begin) => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Ok(Answer::Commit) => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
            Ok(Answer::Rollback) => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            Ok(Answer::Rows(batch)) => {
                query_response(std::slice::from_ref(&batch), &batch.schema(), format)
            }
        })
    }

    /// Plans a DataFusion statement for `session`, checking the caller may run it.
    async fn plan(&self, session: &Session, sql: &str) -> SqlResult<LogicalPlan> {
        let plan = self
            .views
            .plan(&session.ctx, &session.plans, sql)
            .await
            .map_err(from_datafusion)?;
        if matches!(
            plan,
            LogicalPlan::Ddl(DdlStatement::CreateView(_) | DdlStatement::DropView(_))
        ) {
            let caller = caller(self, session)?;
            if caller.role < Role::Operator {
                return Err(SqlError::not_permitted(format!(
                    "permission denied: creating and dropping views needs the operator role, and \
                     {} has the monitor role",
                    caller.user
                )));
            }
        }
        Ok(plan)
    }

    async fn run_plan(
        &self,
        session: &Session,
        sql: &str,
        plan: LogicalPlan,
        parameters_bound: bool,
        format: &Format,
    ) -> PgWireResult<Response> {
        if !matches!(plan, LogicalPlan::Ddl(_)) {
            let schema = plan.schema().as_arrow().clone();
            // A panic while answering (a bug in a function or a table) is this query's error,
            // never a connection that stops answering.
            let answered = std::panic::AssertUnwindSafe(self.views.query(
                &session.ctx,
                &session.plans,
                sql,
                &plan,
                parameters_bound,
            ))
            .catch_unwind()
            .await
            .map_err(|_| {
                SqlError::internal("the query failed inside the server; the server goes on")
            })?;
            let batches = answered.map_err(from_datafusion)?;
            return query_response(&batches, &schema, format);
        }
        let tag = if sql.trim_start().to_ascii_uppercase().starts_with("DROP") {
            "DROP VIEW"
        } else {
            "CREATE VIEW"
        };
        let executed = match self.views.execute(&session.ctx, sql, plan).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(e) => Err(e),
        }
        .map_err(from_datafusion);
        let text = crate::sql::audit::mask_literals(sql.trim());
        self.audit(session, tag, text, executed.as_ref().err());
        executed?;
        Ok(Response::Execution(Tag::new(tag)))
    }

    async fn run_one<C>(
        &self,
        client: &mut C,
        session: &Session,
        parsed: Parsed,
    ) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match parsed {
            Parsed::Backstop(command) => {
                self.run_command(client, session, command, &Format::UnifiedText)
                    .await
            }
            Parsed::Other(text) => {
                if let Some(answer) = self.run_compat(session, &text, &Format::UnifiedText).await {
                    return answer;
                }
                let plan = self.plan(session, &text).await?;
                self.run_plan(session, &text, plan, false, &Format::UnifiedText)
                    .await
            }
        }
    }
}

fn df_error(e: datafusion::error::DataFusionError) -> PgWireError {
    from_datafusion(e).into()
}

fn parse(sql: &str) -> SqlResult<Vec<Parsed>> {
    sql::parse(sql).map_err(|e| SqlError::syntax(e.message, e.position))
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(&self.shared, client);
        let mut responses = Vec::new();
        for parsed in parse(query)? {
            match self.shared.run_one(client, &session, parsed).await {
                Ok(response) => responses.push(response),
                Err(e) => {
                    responses.push(Response::Error(Box::new(e.into())));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

pub struct StatementParser {
    shared: Arc<Shared>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut parsed = parse(sql)?;
        if parsed.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
                1,
            )
            .into());
        }
        let Some(one) = parsed.pop() else {
            return Ok(None);
        };
        Ok(Some(match one {
            Parsed::Backstop(command) => Prepared::Backstop(command),
            Parsed::Other(text) if is_compat(&text) => Prepared::Compat(text),
            Parsed::Other(text) => {
                let session = session_of(&self.shared, client);
                let plan = self.shared.plan(&session, &text).await?;
                Prepared::Query { sql: text, plan }
            }
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        if let Prepared::Backstop(command) = stmt {
            return Ok(match command.statement {
                Statement::Archive(ArchiveStatement::ReceiveArchivelog { .. }) => vec![Type::BYTEA],
                _ => vec![],
            });
        }
        let Prepared::Query { plan, .. } = stmt else {
            return Ok(vec![]);
        };
        let types = plan.get_parameter_types().map_err(df_error)?;
        let mut ordered: Vec<(usize, Type)> = types
            .into_iter()
            .filter_map(|(name, ty)| {
                let index = name.trim_start_matches('$').parse::<usize>().ok()?;
                Some((index, ty.map_or(Type::UNKNOWN, |t| encode::pg_type(&t))))
            })
            .collect();
        ordered.sort_by_key(|(i, _)| *i);
        Ok(ordered.into_iter().map(|(_, t)| t).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.cloned().unwrap_or_default();
        Ok(match stmt {
            Prepared::Query { plan, .. } if !matches!(plan, LogicalPlan::Ddl(_)) => {
                encode::fields(plan.schema().as_arrow(), &format)
            }
            Prepared::Compat(sql) if sql.trim_start().to_ascii_uppercase().starts_with("SHOW") => {
                let name = compat::show_name(sql);
                vec![FieldInfo::new(
                    name,
                    None,
                    None,
                    Type::VARCHAR,
                    format.format_for(0),
                )]
            }
            Prepared::Backstop(command) => match crate::control::row_schema(&command.statement) {
                Some(schema) => encode::fields(&schema, &format),
                None => vec![],
            },
            _ => vec![],
        })
    }
}

/// Decodes bound parameter `i` as the type the plan expects.
fn parameter(
    portal: &Portal<Prepared>,
    i: usize,
    expected: Option<&DataType>,
) -> PgWireResult<ScalarValue> {
    let sent = portal.statement.parameter_types.get(i).cloned().flatten();
    let ty = sent.unwrap_or_else(|| expected.map_or(Type::UNKNOWN, encode::pg_type));
    let value = match ty {
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, &ty)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, &ty)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, &ty)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, &ty)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, &ty)?),
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, &ty)?),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<chrono::NaiveDateTime>(i, &ty)?
                .map(|t| t.and_utc().timestamp_micros()),
            None,
        ),
        _ => ScalarValue::Utf8(portal.parameter::<String>(i, &Type::VARCHAR)?),
    };
    match expected {
        Some(dt) if value.data_type() != *dt => value
            .cast_to(dt)
            .map_err(|e| SqlError::invalid_value(format!("parameter ${}: {e}", i + 1)).into()),
        _ => Ok(value),
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(&self.shared, client);
        let format = &portal.result_column_format;
        match &portal.statement.statement {
            Prepared::Backstop(command) => {
                let mut command = command.clone();
                if let Statement::Archive(ArchiveStatement::ReceiveArchivelog { data, .. }) =
                    &mut command.statement
                {
                    let bytes = portal
                        .parameter::<Vec<u8>>(0, &Type::BYTEA)?
                        .ok_or_else(|| {
                            SqlError::invalid_value(
                                "PUSH ARCHIVELOG ... DATA $1 needs the segment's bytes, not NULL",
                            )
                        })?;
                    *data = SegmentBytes(Some(Arc::new(bytes)));
                }
                self.shared
                    .run_command(client, &session, command, format)
                    .await
            }
            Prepared::Compat(sql) => self
                .shared
                .run_compat(&session, sql, format)
                .await
                .unwrap_or_else(|| Ok(Response::Execution(Tag::new("SET")))),
            Prepared::Query { sql, plan } => {
                let expected = plan.get_parameter_types().map_err(df_error)?;
                let values = (0..portal.parameter_len())
                    .map(|i| {
                        parameter(
                            portal,
                            i,
                            expected
                                .get(&format!("${}", i + 1))
                                .and_then(Option::as_ref),
                        )
                    })
                    .collect::<PgWireResult<Vec<_>>>()?;
                let bound = !values.is_empty();
                let plan = if bound {
                    plan.clone()
                        .with_param_values(ParamValues::from(values))
                        .map_err(df_error)?
                } else {
                    plan.clone()
                };
                self.shared
                    .run_plan(&session, sql, plan, bound, format)
                    .await
            }
        }
    }
}
