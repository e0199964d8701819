//! Arrow results to PostgreSQL rows: column types, text and binary formats.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int8Array,
    Int16Array, Int32Array, Int64Array, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{
    DataType, Schema, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions as ArrowFormat};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

/// The PostgreSQL type a column of `dt` is sent as.
pub fn pg_type(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        // Times are UTC throughout backstop; zoned ones are sent as their UTC wall time.
        DataType::Timestamp(_, _) => Type::TIMESTAMP,
        DataType::Date32 => Type::DATE,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::VARCHAR,
        _ => Type::TEXT,
    }
}

pub fn fields(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            FieldInfo::new(
                f.name().clone(),
                None,
                None,
                pg_type(f.data_type()),
                format.format_for(i),
            )
        })
        .collect()
}

/// Encodes every row of `batches` for the client.
pub fn rows(batches: &[RecordBatch], fields: Arc<Vec<FieldInfo>>) -> PgWireResult<Vec<DataRow>> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let mut encoder = DataRowEncoder::new(fields.clone());
    let options = ArrowFormat::default().with_null("");
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        for row in 0..batch.num_rows() {
            for (col, array) in batch.columns().iter().enumerate() {
                encode_value(&mut encoder, array, row, &fields[col], &formatters[col])?;
            }
            out.push(encoder.take_row());
        }
    }
    Ok(out)
}

fn encode_value(
    encoder: &mut DataRowEncoder,
    array: &ArrayRef,
    row: usize,
    field: &FieldInfo,
    formatter: &ArrayFormatter,
) -> PgWireResult<()> {
    let ty = field.datatype();
    let format = field.format();
    let options = field.format_options().clone();
    macro_rules! put {
        ($value:expr) => {
            encoder.encode_field_with_type_and_format(&$value, ty, format, options.as_ref())
        };
    }
    if array.is_null(row) {
        return put!(None::<i8>);
    }
    let any = array.as_any();
    match array.data_type() {
        DataType::Boolean => put!(any.downcast_ref::<BooleanArray>().unwrap().value(row)),
        DataType::Int8 => put!(any.downcast_ref::<Int8Array>().unwrap().value(row) as i16),
        DataType::UInt8 => put!(any.downcast_ref::<UInt8Array>().unwrap().value(row) as i16),
        DataType::Int16 => put!(any.downcast_ref::<Int16Array>().unwrap().value(row)),
        DataType::UInt16 => put!(any.downcast_ref::<UInt16Array>().unwrap().value(row) as i32),
        DataType::Int32 => put!(any.downcast_ref::<Int32Array>().unwrap().value(row)),
        DataType::UInt32 => put!(any.downcast_ref::<UInt32Array>().unwrap().value(row) as i64),
        DataType::Int64 => put!(any.downcast_ref::<Int64Array>().unwrap().value(row)),
        DataType::UInt64 => put!(any.downcast_ref::<UInt64Array>().unwrap().value(row) as i64),
        DataType::Float32 => put!(any.downcast_ref::<Float32Array>().unwrap().value(row)),
        DataType::Float64 => put!(any.downcast_ref::<Float64Array>().unwrap().value(row)),
        DataType::Date32 => {
            let days = any.downcast_ref::<Date32Array>().unwrap().value(row);
            let date = NaiveDate::from_num_days_from_ce_opt(days + 719_163);
            put!(date)
        }
        DataType::Timestamp(unit, _) => put!(timestamp(array, *unit, row)),
        DataType::Utf8 => put!(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => put!(array.as_string::<i64>().value(row)),
        DataType::Utf8View => put!(array.as_string_view().value(row)),
        DataType::Binary => put!(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => put!(array.as_binary::<i64>().value(row)),
        _ => put!(formatter.value(row).to_string()),
    }
}

fn timestamp(array: &ArrayRef, unit: TimeUnit, row: usize) -> Option<NaiveDateTime> {
    let micros = match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row) * 1_000_000,
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row) * 1000,
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row) / 1000,
    };
    DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}
