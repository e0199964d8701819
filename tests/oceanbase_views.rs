//! Every view OceanBase documents carries every documented column, in the documented order,
//! before backstop's own (docs/oceanbase-views.md). The documented lists are in
//! `tests/oceanbase_views.tsv`: one line per view, `name<TAB>branch:page in
//! oceanbase/oceanbase-doc<TAB>columns`. Each `CDB_OB_X` has its `DBA_OB_X` twin with the same
//! columns but TENANT_ID, and every view of schema oceanbase plans.

mod common;

use common::TestServer;
use tokio_postgres::{Client, SimpleQueryMessage};

const DOCUMENTED: &str = include_str!("oceanbase_views.tsv");

/// The first column of every row `sql` answers.
async fn first_column(client: &Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect()
}

async fn columns_of(client: &Client, view: &str) -> Vec<String> {
    first_column(
        client,
        &format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'oceanbase' \
             AND table_name = '{view}' ORDER BY ordinal_position"
        ),
    )
    .await
}

/// `None` when `documented` are the first columns of `actual`, in order; else what is wrong.
fn first_mismatch(documented: &[&str], actual: &[String]) -> Option<String> {
    for (i, want) in documented.iter().enumerate() {
        match actual.get(i) {
            Some(got) if got == want => {}
            Some(got) => {
                return Some(format!(
                    "column {} is {got}, documented {want} (documented: {}; actual: {})",
                    i + 1,
                    documented.join(","),
                    actual.join(",")
                ));
            }
            None => {
                return Some(format!(
                    "has {} columns, documented {want} is column {} (actual: {})",
                    actual.len(),
                    i + 1,
                    actual.join(",")
                ));
            }
        }
    }
    None
}

struct Documented<'a> {
    view: &'a str,
    source: &'a str,
    columns: Vec<&'a str>,
}

fn documented() -> Vec<Documented<'static>> {
    DOCUMENTED
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.split('\t');
            let (Some(view), Some(source), Some(columns), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                panic!("oceanbase_views.tsv: not view<TAB>source<TAB>columns: {line}");
            };
            Documented {
                view,
                source,
                columns: columns.split(',').collect(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn documented_columns_come_first_in_documented_order() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let documented = documented();
    assert!(documented.len() >= 36, "{} views listed", documented.len());
    let mut wrong = Vec::new();
    for doc in &documented {
        assert!(
            doc.columns
                .iter()
                .all(|c| !c.is_empty() && *c == c.to_ascii_lowercase()),
            "{}: columns are written in lower case: {:?}",
            doc.view,
            doc.columns
        );
        let actual = columns_of(&client, doc.view).await;
        if actual.is_empty() {
            wrong.push(format!("{} ({}): no such view", doc.view, doc.source));
            continue;
        }
        if let Some(m) = first_mismatch(&doc.columns, &actual) {
            wrong.push(format!("{} ({}): {m}", doc.view, doc.source));
        }
        // The session's-tenant twin: the same columns without TENANT_ID.
        if let Some(rest) = doc.view.strip_prefix("cdb_ob_") {
            let twin = format!("dba_ob_{rest}");
            let twin_columns = columns_of(&client, &twin).await;
            let expected: Vec<&str> = doc
                .columns
                .iter()
                .copied()
                .filter(|c| *c != "tenant_id")
                .collect();
            if twin_columns.is_empty() {
                wrong.push(format!("{twin}: no such view (twin of {})", doc.view));
            } else if let Some(m) = first_mismatch(&expected, &twin_columns) {
                wrong.push(format!("{twin} (twin of {}): {m}", doc.view));
            }
            assert!(
                !twin_columns.iter().any(|c| c == "tenant_id"),
                "{twin} shows tenant_id"
            );
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_view_plans() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let views = first_column(
        &client,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'oceanbase' \
         ORDER BY table_name",
    )
    .await;
    for doc in documented() {
        assert!(
            views.iter().any(|v| v == doc.view),
            "{} is documented but not a view",
            doc.view
        );
    }
    for view in &views {
        let messages = client
            .simple_query(&format!("SELECT * FROM oceanbase.{view} LIMIT 0"))
            .await
            .unwrap_or_else(|e| panic!("SELECT * FROM oceanbase.{view}: {e:?}"));
        let described = messages
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::RowDescription(d) if !d.is_empty()));
        assert!(described, "{view}: no columns described");
    }
}

/// `SHOW PARAMETERS` answers in OceanBase's documented columns (V4.3.3, "View cluster
/// parameters"), filtered by LIKE and by tenant.
#[tokio::test(flavor = "multi_thread")]
async fn show_parameters_answers_in_oceanbase_columns() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let rows = client
        .simple_query("SHOW PARAMETERS LIKE 'archive_lag%'")
        .await
        .unwrap();
    let row = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("one row");
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "zone",
            "svr_type",
            "svr_ip",
            "svr_port",
            "name",
            "data_type",
            "value",
            "info",
            "section",
            "scope",
            "source",
            "edit_level",
            "default_value",
            "isdefault"
        ]
    );
    assert_eq!(row.get("name"), Some("archive_lag_target"));
    assert_eq!(
        row.get("svr_port"),
        Some(server.port().to_string().as_str())
    );
    assert_eq!(row.get("scope"), Some("CLUSTER"));
    let all = first_column(&client, "SHOW PARAMETERS").await;
    assert!(all.len() > 20, "{all:?}");
    let err = client
        .simple_query("SHOW PARAMETERS TENANT = nobody")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42704", "{err:?}");
}
