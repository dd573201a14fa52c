//! Human units in config: byte sizes (`512MiB`, `2GB`, `1048576`) and
//! durations (`30s`, `500ms`, `2m`, and for retention `90 days`, `7 years`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes, written as a number or with a unit: B, KB, MB, GB (powers
/// of 1000) or KiB, MiB, GiB (powers of 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// A duration written with a unit: `ms`, `s`, `m`, `h`, or days, weeks and
/// years (`d`, `w`, `y`, or spelt out: `90 days`, `7 years`; a year is 365
/// days).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// A size in bytes from text: config values, and DuckDB's own display of a
/// size (`244.1 MiB`, `512 bytes`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a size; write for example `512MiB` or `2GB`"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    Ok((number * factor as f64) as u64)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration; write for example `30s` or `500ms`"))?;
    const DAY: f64 = 86_400.0;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" | "day" | "days" => number * DAY,
        "w" | "week" | "weeks" => number * 7.0 * DAY,
        "y" | "year" | "years" => number * 365.0 * DAY,
        "" => return Err(format!("`{text}` needs a unit: ms, s, m, h, days, weeks or years")),
        other => {
            return Err(format!("unknown duration unit `{other}` in `{text}`; use ms, s, m, h, days, weeks or years"));
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

struct Visitor<T>(fn(&str) -> Result<T, String>, &'static str);

impl<T> serde::de::Visitor<'_> for Visitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        (self.0)(&v.to_string()).map_err(E::custom)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Visitor(|s| parse_bytes(s).map(ByteSize), "a size such as `512MiB`"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Visitor(|s| parse_duration(s).map(HumanDuration), "a duration such as `30s`"))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Bytes, as a number or with a unit: 512MiB, 2GB",
            "type": ["integer", "string"],
            "pattern": "^[0-9.]+ ?([KMG]i?B|B)?$"
        })
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration with a unit: 500ms, 30s, 2m, 1h, 90 days, 2 weeks, 7 years",
            "type": "string",
            "pattern": "^[0-9.]+ ?(ms|s|m|h|d|days?|w|weeks?|y|years?)$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_durations() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("1048576"), Ok(1_048_576));
        // As DuckDB shows its settings.
        assert_eq!(parse_bytes("244.1 MiB"), Ok((244.1 * (1u64 << 20) as f64) as u64));
        assert_eq!(parse_bytes("512 bytes"), Ok(512));
        assert_eq!(parse_bytes("1.0 TiB"), Ok(1 << 40));
        assert!(parse_bytes("12 parsecs").unwrap_err().contains("unknown size unit `parsecs`"));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("30").unwrap_err().contains("needs a unit"));
    }
}
