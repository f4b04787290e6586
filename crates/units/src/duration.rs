//! Go `time.Duration` text, as the dojo's flags take it, and back.

use std::time::Duration;

use crate::error::{DurationProblem, Error, Result};

/// Writes `duration` so that [`parse_duration`] reads it back exactly: whole milliseconds as
/// `250ms`, anything finer in nanoseconds.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}ns", duration.as_nanos())
    }
}

/// Parses a Go `time.Duration` string as the dojo's flags take them: `1s`, `250ms`, `1.5s`,
/// `1m30s`, `2h`, `0` (units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`). Negative durations are
/// refused. The error is one line saying what is wrong.
pub fn parse_duration(given: &str) -> Result<Duration> {
    let invalid = |problem: DurationProblem| Error::InvalidDuration {
        given: given.to_owned(),
        problem,
    };
    if given == "0" {
        return Ok(Duration::ZERO);
    }
    if given.is_empty() {
        return Err(invalid(DurationProblem::Empty));
    }
    if given.starts_with('-') {
        return Err(invalid(DurationProblem::Negative));
    }
    let mut rest = given.strip_prefix('+').unwrap_or(given);
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| invalid(DurationProblem::MissingUnit))?;
        let number: f64 = rest[..number_end]
            .parse()
            .map_err(|_| invalid(DurationProblem::MissingNumber))?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(invalid(DurationProblem::UnknownUnit(unit.to_owned()))),
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid(DurationProblem::TooLarge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_durations_read_back_exactly() {
        for duration in [
            Duration::ZERO,
            Duration::from_millis(250),
            Duration::from_secs(90),
            Duration::from_nanos(1_500),
            Duration::new(3, 7),
        ] {
            let text = format_duration(duration);
            assert_eq!(parse_duration(&text), Ok(duration), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(1)), "1000ms");
    }

    #[test]
    fn reads_go_durations() {
        for (given, millis) in [
            ("0", 0),
            ("1s", 1000),
            ("250ms", 250),
            ("1.5s", 1500),
            ("1m30s", 90_000),
            ("2h", 7_200_000),
            ("0s", 0),
            ("+3s", 3000),
        ] {
            assert_eq!(
                parse_duration(given),
                Ok(Duration::from_millis(millis)),
                "{given}"
            );
        }
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn refuses_the_rest_in_one_line() {
        for (given, reason) in [
            ("", "empty"),
            ("1", "missing unit"),
            ("-1s", "negative"),
            ("1d", "unknown unit \"d\""),
            ("s", "expected a number"),
            ("1..2s", "expected a number"),
        ] {
            let error = parse_duration(given).unwrap_err().to_string();
            assert!(error.contains(reason), "{given}: {error}");
        }
    }
}
