//! SQL functions the views and client drivers need beyond DataFusion's own.

use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// What `SELECT version()` answers: drivers parse the PostgreSQL version from it.
pub fn version_string() -> String {
    format!(
        "PostgreSQL 16.6 (backstop {}) on {}, a backup server",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// `1.50GB`, as OceanBase's `*_DISPLAY` columns print sizes.
pub fn display_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

fn display_bytes_udf() -> ScalarUDF {
    let f = Arc::new(|args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let array = args[0].clone().into_array(1)?;
        let ints = array
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("signature coerces to Int64");
        let out: StringArray = ints.iter().map(|v| v.map(display_bytes)).collect();
        Ok(match &args[0] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(out)),
        })
    });
    create_udf(
        "backstop_display_bytes",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        f,
    )
}

fn version_udf() -> ScalarUDF {
    let f = Arc::new(|_args: &[ColumnarValue]| -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            version_string(),
        ))))
    });
    create_udf("version", vec![], DataType::Utf8, Volatility::Stable, f)
}

/// A function backstop adds, as `pg_proc` and `\df` list it.
#[derive(Debug, Clone)]
pub struct Described {
    pub oid: i64,
    pub name: &'static str,
    /// Argument and result type OIDs.
    pub args: Vec<i64>,
    pub result: i64,
    pub description: &'static str,
}

pub fn described() -> Vec<Described> {
    vec![
        Described {
            oid: 90_001,
            name: "backstop_display_bytes",
            args: vec![20],
            result: 1043,
            description: "bytes as OceanBase's *_DISPLAY columns print them (1.50GB)",
        },
        Described {
            oid: 90_002,
            name: "version",
            args: vec![],
            result: 1043,
            description: "the PostgreSQL version drivers parse, and backstop's",
        },
    ]
}

pub fn all() -> Vec<ScalarUDF> {
    vec![display_bytes_udf(), version_udf()]
}

#[cfg(test)]
mod tests {
    use super::display_bytes;

    #[test]
    fn sizes_read_like_oceanbase() {
        assert_eq!(display_bytes(512), "512B");
        assert_eq!(display_bytes(1536), "1.50KB");
        assert_eq!(display_bytes(1610612736), "1.50GB");
    }
}
