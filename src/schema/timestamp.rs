//! The `DateTime` scalar, written one way everywhere: RFC 3339 in UTC with a `Z` and
//! milliseconds (`2025-01-10T10:30:00.000Z`), whatever form the block sent. async-graphql's
//! own chrono scalar writes `+00:00` and as many fractional digits as the value has, so one
//! answer mixed `…:00Z`-less and fractional forms; clients comparing or sorting strings, and
//! caches comparing values, need one form. Input keeps accepting any RFC 3339 offset.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time, as the `DateTime` scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl From<DateTime<Utc>> for Timestamp {
    fn from(time: DateTime<Utc>) -> Self {
        Self(time)
    }
}

impl Timestamp {
    /// The value as written in answers.
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// A point in time in RFC 3339. Answers are always in UTC with a `Z` suffix and
/// milliseconds (`2025-01-10T10:30:00.000Z`); arguments may use any offset
/// (`2025-01-10T12:30:00+02:00`).
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        DateTime::parse_from_rfc3339(text.trim())
            .map(|time| Self(time.with_timezone(&Utc)))
            .map_err(|_| {
                InputValueError::custom(format!(
                    "{text:?} is not an RFC 3339 date-time (like 2025-01-10T10:30:00Z)"
                ))
            })
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_rfc3339())
    }
}

/// `Option<DateTime<Utc>>` as the scalar.
pub fn optional(time: Option<DateTime<Utc>>) -> Option<Timestamp> {
    time.map(Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> String {
        let parsed = DateTime::parse_from_rfc3339(text).expect("RFC 3339");
        Timestamp(parsed.with_timezone(&Utc)).to_rfc3339()
    }

    #[test]
    fn answers_are_utc_with_z_and_milliseconds() {
        assert_eq!(written("2025-01-10T10:30:00Z"), "2025-01-10T10:30:00.000Z");
        assert_eq!(written("2025-01-10T10:30:00+00:00"), "2025-01-10T10:30:00.000Z");
        assert_eq!(written("2025-01-10T12:30:00.5+02:00"), "2025-01-10T10:30:00.500Z");
        // Finer precision is cut to milliseconds, never rounded into the next second.
        assert_eq!(written("2025-01-10T10:30:59.999999Z"), "2025-01-10T10:30:59.999Z");
    }

    #[test]
    fn arguments_take_any_offset_and_refuse_other_forms() {
        let parsed = Timestamp::parse(Value::String("2025-01-10T12:30:00+02:00".into())).expect("an offset");
        assert_eq!(parsed.to_rfc3339(), "2025-01-10T10:30:00.000Z");
        for bad in ["2025-01-10", "2025-01-10 10:30:00", "yesterday"] {
            assert!(Timestamp::parse(Value::String(bad.into())).is_err(), "{bad}");
        }
        assert!(Timestamp::parse(Value::Number(5.into())).is_err());
    }
}
