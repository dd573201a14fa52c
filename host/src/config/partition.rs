//! `partition_by` entries of floe.yaml: a column (identity) or a temporal
//! transform of one, written the way Iceberg and SQL engines spell them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a partition value is derived from its source column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionTransform {
    /// The column's value itself.
    Identity,
    /// The calendar year of a date or timestamp.
    Year,
    /// The calendar month of a date or timestamp.
    Month,
    /// The calendar day of a date or timestamp.
    Day,
}

impl PartitionTransform {
    /// The name Iceberg gives this transform (`identity`, `day`, …).
    pub fn name(self) -> &'static str {
        match self {
            PartitionTransform::Identity => "identity",
            PartitionTransform::Year => "year",
            PartitionTransform::Month => "month",
            PartitionTransform::Day => "day",
        }
    }

    /// How a partition value of this transform is written, for messages.
    pub fn value_format(self) -> &'static str {
        match self {
            PartitionTransform::Identity => "the column's value",
            PartitionTransform::Year => "a year as `YYYY` (or `YYYY-01-01`), for example `2024`",
            PartitionTransform::Month => "a month as `YYYY-MM` (or `YYYY-MM-01`), for example `2024-01`",
            PartitionTransform::Day => "a day as `YYYY-MM-DD`, for example `2024-01-03`",
        }
    }

    /// The first day of the period a partition value names, for the temporal
    /// transforms. Also accepts the period's first day written as a date
    /// (Dagster's monthly partition keys are `2024-01-01`).
    pub fn parse_period(self, text: &str) -> Result<CivilDate, String> {
        let wrong = || format!("`{text}` is not {}", self.value_format());
        let parts: Vec<&str> = text.split('-').collect();
        let number = |part: &str, digits: usize| {
            (part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u32>().ok())
                .flatten()
        };
        let date = match parts.as_slice() {
            [y, m, d] => CivilDate::new(
                number(y, 4).ok_or_else(wrong)? as i32,
                number(m, 2).ok_or_else(wrong)?,
                number(d, 2).ok_or_else(wrong)?,
            ),
            [y, m] if self == PartitionTransform::Month => {
                CivilDate::new(number(y, 4).ok_or_else(wrong)? as i32, number(m, 2).ok_or_else(wrong)?, 1)
            }
            [y] if self == PartitionTransform::Year => CivilDate::new(number(y, 4).ok_or_else(wrong)? as i32, 1, 1),
            _ => None,
        }
        .ok_or_else(wrong)?;
        let first_of_period = match self {
            PartitionTransform::Identity => false,
            PartitionTransform::Day => true,
            PartitionTransform::Month => date.day == 1,
            PartitionTransform::Year => date.day == 1 && date.month == 1,
        };
        if first_of_period { Ok(date) } else { Err(wrong()) }
    }
}

/// A calendar date (proleptic Gregorian), checked to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl CivilDate {
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days_in_month).contains(&day).then_some(CivilDate { year, month, day })
    }

    /// Days since 1970-01-01 (Iceberg's `date`).
    pub fn days_since_epoch(self) -> i32 {
        // Howard Hinnant's days_from_civil.
        let y = if self.month <= 2 { self.year - 1 } else { self.year } as i64;
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let m = self.month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        (era * 146097 + doe - 719468) as i32
    }

    /// The first day of the next period of `transform` (day, month or year).
    pub fn next(self, transform: PartitionTransform) -> CivilDate {
        match transform {
            PartitionTransform::Year => CivilDate { year: self.year + 1, month: 1, day: 1 },
            PartitionTransform::Month if self.month == 12 => CivilDate { year: self.year + 1, month: 1, day: 1 },
            PartitionTransform::Month => CivilDate { year: self.year, month: self.month + 1, day: 1 },
            PartitionTransform::Day | PartitionTransform::Identity => {
                CivilDate::new(self.year, self.month, self.day + 1)
                    .unwrap_or_else(|| CivilDate { day: 1, ..self.next(PartitionTransform::Month) })
            }
        }
    }
}

/// One field of a table's partitioning: `order_date` (identity) or
/// `day(order_ts)`, `month(order_date)`, `year(order_date)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartitionField {
    /// The source column of the step's output.
    pub column: String,
    pub transform: PartitionTransform,
}

impl PartitionField {
    /// The partition field's name, as Iceberg engines name it: the column for
    /// identity, `<column>_<transform>` otherwise (`order_ts_day`).
    pub fn partition_name(&self) -> String {
        match self.transform {
            PartitionTransform::Identity => self.column.clone(),
            other => format!("{}_{}", self.column, other.name()),
        }
    }
}

const HELP: &str = "write a column name (one partition per value, for example `order_date`) or \
                    `day(column)`, `month(column)` or `year(column)` of a date or timestamp column \
                    (for example `day(order_ts)`)";

fn valid_column(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

impl TryFrom<String> for PartitionField {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let text = value.trim();
        let (transform, column) = match text.split_once('(') {
            None => (PartitionTransform::Identity, text),
            Some((name, rest)) => {
                let Some(column) = rest.strip_suffix(')') else {
                    return Err(format!("`{value}` is not a partition field: a `)` is missing; {HELP}"));
                };
                let transform = match name.trim().to_ascii_lowercase().as_str() {
                    "identity" => PartitionTransform::Identity,
                    "year" | "years" => PartitionTransform::Year,
                    "month" | "months" => PartitionTransform::Month,
                    "day" | "days" => PartitionTransform::Day,
                    other => {
                        return Err(format!(
                            "`{value}` is not a partition field: floe-host supports the transforms \
                             identity, day, month and year, not `{other}`; {HELP}"
                        ));
                    }
                };
                (transform, column.trim())
            }
        };
        if !valid_column(column) {
            return Err(format!("`{value}` is not a partition field: `{column}` is not a column name; {HELP}"));
        }
        Ok(PartitionField { column: column.to_string(), transform })
    }
}

impl From<PartitionField> for String {
    fn from(field: PartitionField) -> Self {
        field.to_string()
    }
}

impl fmt::Display for PartitionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transform {
            PartitionTransform::Identity => f.write_str(&self.column),
            other => write!(f, "{}({})", other.name(), self.column),
        }
    }
}

impl schemars::JsonSchema for PartitionField {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PartitionField".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A column (identity: one partition per value), or `day(column)`, `month(column)` \
                            or `year(column)` of a date or timestamp column, for example `day(order_ts)`",
            "type": "string",
            "pattern": "^\\s*((identity|years?|months?|days?)\\(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*\\)|[A-Za-z_][A-Za-z0-9_]*)\\s*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PartitionField, String> {
        PartitionField::try_from(text.to_string())
    }

    #[test]
    fn parses_columns_and_transforms() {
        let field = parse("order_date").unwrap();
        assert_eq!((field.column.as_str(), field.transform), ("order_date", PartitionTransform::Identity));
        let field = parse("day(order_ts)").unwrap();
        assert_eq!((field.column.as_str(), field.transform), ("order_ts", PartitionTransform::Day));
        assert_eq!(field.partition_name(), "order_ts_day");
        assert_eq!(field.to_string(), "day(order_ts)");
        assert_eq!(parse(" month( order_date ) ").unwrap().to_string(), "month(order_date)");
        assert_eq!(parse("years(d)").unwrap().transform, PartitionTransform::Year);
        assert_eq!(parse("identity(region)").unwrap().to_string(), "region");
    }

    #[test]
    fn parses_periods_of_temporal_transforms() {
        let date = |y, m, d| CivilDate::new(y, m, d).unwrap();
        assert_eq!(PartitionTransform::Day.parse_period("2024-02-29"), Ok(date(2024, 2, 29)));
        assert_eq!(PartitionTransform::Month.parse_period("2024-01"), Ok(date(2024, 1, 1)));
        assert_eq!(PartitionTransform::Month.parse_period("2024-12-01"), Ok(date(2024, 12, 1)));
        assert_eq!(PartitionTransform::Year.parse_period("2024"), Ok(date(2024, 1, 1)));
        for (transform, bad) in [
            (PartitionTransform::Day, "2023-02-29"),
            (PartitionTransform::Day, "2024-01"),
            (PartitionTransform::Day, "2024-1-03"),
            (PartitionTransform::Month, "2024-13"),
            (PartitionTransform::Month, "2024-01-15"),
            (PartitionTransform::Year, "2024-02-01"),
            (PartitionTransform::Year, "24"),
        ] {
            let error = transform.parse_period(bad).unwrap_err();
            assert!(error.contains(&format!("`{bad}` is not a {}", transform.name())), "{bad}: {error}");
        }
    }

    #[test]
    fn counts_days_and_steps_periods() {
        let date = |y, m, d| CivilDate::new(y, m, d).unwrap();
        assert_eq!(date(1970, 1, 1).days_since_epoch(), 0);
        assert_eq!(date(2024, 1, 3).days_since_epoch(), 19725);
        assert_eq!(date(1969, 12, 31).days_since_epoch(), -1);
        assert_eq!(date(2024, 2, 28).next(PartitionTransform::Day), date(2024, 2, 29));
        assert_eq!(date(2024, 12, 31).next(PartitionTransform::Day), date(2025, 1, 1));
        assert_eq!(date(2024, 12, 1).next(PartitionTransform::Month), date(2025, 1, 1));
        assert_eq!(date(2024, 1, 1).next(PartitionTransform::Year), date(2025, 1, 1));
    }

    #[test]
    fn rejects_what_it_cannot_partition_by() {
        for (bad, needle) in [
            ("week(order_ts)", "not `week`"),
            ("bucket(16, id)", "not `bucket`"),
            ("day(order_ts", "a `)` is missing"),
            ("", "`` is not a column name"),
            ("order date", "`order date` is not a column name"),
            ("day()", "`` is not a column name"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(needle) && error.contains("for example `day(order_ts)`"), "{bad}: {error}");
        }
    }
}
