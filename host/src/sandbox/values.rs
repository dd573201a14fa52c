//! What the values of a batch a plugin sent must be: each within the domain
//! of its column's type.
//!
//! arrow-ipc checks offsets and UTF-8 when it decodes a batch, not domains.
//! A plugin can send a `Decimal128(12, 2)` holding 10^30, a `Time64` of -1 µs
//! or of 40 hours, a date or timestamp in a year no reader computes with.
//! None of them is harmless downstream: Parquet stores a decimal of
//! precision 18 or less in 64 bits and parquet-rs truncates the value to fit
//! (a silent wrong number), and DuckDB 1.5 prints a time of -1 µs as
//! `00:00:00.00000/`, fails one of 40 hours with an INTERNAL error that
//! invalidates its database, and cannot convert a timestamp before
//! 290309 BC. A later step's model would then fail, or be wrong, on a value
//! it did not write. So every such value is refused where it enters, and the
//! step fails naming the plugin, the column and the row.
//!
//! The ranges: decimals within their precision; times of day from 00:00:00
//! to 23:59:59.999999; dates and µs timestamps in the years -262143 to
//! 262142, which every reader of the table can compute with (chrono's range,
//! which arrow, iceberg-rust's partition transforms and DuckDB all cover).
//! Nanosecond timestamps span 1677 to 2262 whatever their value.

use arrow_array::types::{Date32Type, Decimal128Type, DecimalType, Time64MicrosecondType, TimestampMicrosecondType};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

/// Days since 1970-01-01 of -262143-01-01 and of 262142-12-31.
pub const DAYS: (i32, i32) = (-96_465_292, 95_026_236);
/// Microseconds since 1970-01-01 of the first and last instant of those days.
pub const MICROS: (i64, i64) = (-8_334_601_228_800_000_000, 8_210_266_876_799_999_999);
/// Microseconds in a day: a time of day is below it.
const DAY_MICROS: i64 = 86_400_000_000;
/// What the refusals say of the date and timestamp range.
const YEARS: &str = "the years -262143 to 262142, which every reader of the table computes with";

/// Checks every value of `batch` against its column's domain; the message
/// names the column, the row in the batch and the value.
pub fn check(batch: &RecordBatch) -> Result<(), String> {
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let name = || super::text::escape(field.name());
        let outside = match field.data_type() {
            &DataType::Decimal128(precision, scale) => {
                let array = column.as_any().downcast_ref::<PrimitiveArray<Decimal128Type>>();
                first_outside(array, |v| Decimal128Type::is_valid_decimal_precision(v, precision)).map(|(row, v)| {
                    format!(
                        "column `{}` holds {} in row {row} of a batch: more digits than its type \
                         decimal({precision},{scale}) holds",
                        name(),
                        decimal_text(v, scale)
                    )
                })
            }
            DataType::Time64(TimeUnit::Microsecond) => {
                let array = column.as_any().downcast_ref::<PrimitiveArray<Time64MicrosecondType>>();
                first_outside(array, |v| (0..DAY_MICROS).contains(&v)).map(|(row, v)| {
                    format!(
                        "column `{}` holds a time of {v} µs after midnight in row {row} of a batch: a time of \
                         day is 0 (00:00:00) to {} µs (23:59:59.999999)",
                        name(),
                        DAY_MICROS - 1
                    )
                })
            }
            DataType::Date32 => {
                let array = column.as_any().downcast_ref::<PrimitiveArray<Date32Type>>();
                first_outside(array, |v| (DAYS.0..=DAYS.1).contains(&v)).map(|(row, v)| {
                    format!(
                        "column `{}` holds day {v} since 1970-01-01 in row {row} of a batch, outside {YEARS}",
                        name()
                    )
                })
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                let array = column.as_any().downcast_ref::<PrimitiveArray<TimestampMicrosecondType>>();
                first_outside(array, |v| (MICROS.0..=MICROS.1).contains(&v)).map(|(row, v)| {
                    format!(
                        "column `{}` holds {v} µs since 1970-01-01 in row {row} of a batch, outside {YEARS}",
                        name()
                    )
                })
            }
            _ => None,
        };
        if let Some(message) = outside {
            return Err(message);
        }
    }
    Ok(())
}

/// `value` of a decimal of `scale` as its digits, all of them (arrow's
/// `format_decimal` cuts them at the precision, which would hide the point).
fn decimal_text(value: i128, scale: i8) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let scale = usize::try_from(scale).unwrap_or(0); // the guard accepts no negative scale
    let digits = format!("{:0>width$}", value.unsigned_abs(), width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    if scale == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") }
}

/// The first non-null value of `array` that is not `ok`, with its row.
/// (`array` is `None` only if the column's type and array disagree, which
/// a decoded batch never does.)
fn first_outside<T: ArrowPrimitiveType>(
    array: Option<&PrimitiveArray<T>>,
    ok: impl Fn(T::Native) -> bool,
) -> Option<(usize, T::Native)> {
    let array = array?;
    let values = array.values();
    let row = match array.nulls() {
        // The common case, one tight loop over the values.
        None => values.iter().position(|v| !ok(*v)),
        // A null's slot may hold anything: it is not a value.
        Some(nulls) => values.iter().enumerate().position(|(i, v)| nulls.is_valid(i) && !ok(*v)),
    }?;
    Some((row, values[row]))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::temporal_conversions::{date32_to_datetime, timestamp_us_to_datetime};
    use arrow_array::{
        ArrayRef, Date32Array, Decimal128Array, Int64Array, Time64MicrosecondArray, TimestampMicrosecondArray,
    };

    use super::*;

    fn one(name: &str, column: ArrayRef) -> RecordBatch {
        RecordBatch::try_from_iter([(name, column)]).unwrap()
    }

    #[test]
    fn the_date_range_is_what_arrow_can_convert() {
        assert!(date32_to_datetime(DAYS.0).is_some() && date32_to_datetime(DAYS.0 - 1).is_none());
        assert!(date32_to_datetime(DAYS.1).is_some() && date32_to_datetime(DAYS.1 + 1).is_none());
        assert!(timestamp_us_to_datetime(MICROS.0).is_some() && timestamp_us_to_datetime(MICROS.0 - 1).is_none());
        assert!(timestamp_us_to_datetime(MICROS.1).is_some() && timestamp_us_to_datetime(MICROS.1 + 1).is_none());
        assert_eq!(MICROS.0, DAYS.0 as i64 * DAY_MICROS);
        assert_eq!(MICROS.1, (DAYS.1 as i64 + 1) * DAY_MICROS - 1);
    }

    #[test]
    fn accepts_the_edges_of_every_domain() {
        let decimal = Decimal128Array::from(vec![999_999_999_999, -999_999_999_999]).with_precision_and_scale(12, 2);
        let batch = RecordBatch::try_from_iter([
            ("amount", Arc::new(decimal.unwrap()) as ArrayRef),
            ("t", Arc::new(Time64MicrosecondArray::from(vec![0, DAY_MICROS - 1]))),
            ("d", Arc::new(Date32Array::from(vec![DAYS.0, DAYS.1]))),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![MICROS.0, MICROS.1]))),
            ("tz", Arc::new(TimestampMicrosecondArray::from(vec![MICROS.0, MICROS.1]).with_timezone("UTC"))),
            ("n", Arc::new(Int64Array::from(vec![i64::MIN, i64::MAX]))),
        ])
        .unwrap();
        assert_eq!(check(&batch), Ok(()));
    }

    #[test]
    fn refuses_a_value_one_past_an_edge_naming_column_row_and_value() {
        let decimal = |v: i128| {
            one("amount", Arc::new(Decimal128Array::from(vec![0, v]).with_precision_and_scale(12, 2).unwrap()))
        };
        assert_eq!(
            check(&decimal(1_000_000_000_000)).unwrap_err(),
            "column `amount` holds 10000000000.00 in row 1 of a batch: more digits than its type decimal(12,2) holds"
        );
        assert!(check(&decimal(i128::MIN)).unwrap_err().contains("holds -1701411834604692317316873037158841057.28"));
        let time = |v| one("t", Arc::new(Time64MicrosecondArray::from(vec![v])));
        assert!(check(&time(-1)).unwrap_err().starts_with("column `t` holds a time of -1 µs after midnight in row 0"));
        assert!(check(&time(DAY_MICROS)).is_err());
        let date = |v| one("d", Arc::new(Date32Array::from(vec![v])));
        assert!(check(&date(DAYS.0 - 1)).unwrap_err().contains("holds day -96465293 since 1970-01-01 in row 0"));
        assert!(check(&date(i32::MAX)).is_err());
        let ts = |v| one("ts\nx", Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone("+00:00")));
        assert_eq!(
            check(&ts(i64::MIN)).unwrap_err(),
            "column `ts\\nx` holds -9223372036854775808 µs since 1970-01-01 in row 0 of a batch, outside the years \
             -262143 to 262142, which every reader of the table computes with"
        );
        assert!(check(&ts(MICROS.1 + 1)).is_err());
    }

    #[test]
    fn a_null_slot_is_not_a_value() {
        // The slot under a null holds -1: not a time, and not checked.
        let column = Time64MicrosecondArray::new(vec![-1, 5].into(), Some(vec![false, true].into()));
        assert_eq!(check(&one("t", Arc::new(column))), Ok(()));
        let column = Time64MicrosecondArray::new(vec![5, -1].into(), Some(vec![true, true].into()));
        assert!(check(&one("t", Arc::new(column))).unwrap_err().contains("in row 1"));
    }
}
