//! Numbers as flags and URLs take them: plain decimal digits only, so `+5`, `-3`, `0x10` and
//! `1e3` are refused with a reason instead of being read some surprising way. The errors are
//! reasons without the value: clap prefixes them with the flag and the value it refused.

use std::fmt::Display;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A positive integer: one or more ASCII digits, not zero, and within `T`.
pub fn parse_positive<T>(given: &str) -> Result<T>
where
    T: FromStr + Default + PartialEq + Display + Bounded,
{
    if given.is_empty() || !given.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Error::NotPositive);
    }
    match given.parse::<T>() {
        Ok(zero) if zero == T::default() => Err(Error::NotPositive),
        Ok(number) => Ok(number),
        Err(_) => Err(Error::TooLarge {
            max: T::MAX.to_string(),
        }),
    }
}

/// A count: zero or more, ASCII digits only, within `T`.
pub fn parse_count<T>(given: &str) -> Result<T>
where
    T: FromStr + Default + PartialEq + Display + Bounded,
{
    if given.is_empty() || !given.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Error::NotCount);
    }
    given.parse::<T>().map_err(|_| Error::TooLarge {
        max: T::MAX.to_string(),
    })
}

/// A size in bytes: `1048576`, `512KiB`, `64MiB`, `1GiB`; positive.
pub fn parse_bytes(given: &str) -> Result<u64> {
    let (digits, unit) = given.split_at(
        given
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(given.len()),
    );
    let multiplier: u64 = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(Error::NotSize),
    };
    let number = parse_positive::<u64>(digits).map_err(|_| Error::NotSize)?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| Error::TooLarge {
            max: format!("{} bytes", u64::MAX),
        })
}

/// The largest value of an integer type, for "too large" messages.
pub trait Bounded {
    const MAX: Self;
}

macro_rules! bounded {
    ($($type:ty),*) => { $(impl Bounded for $type { const MAX: Self = <$type>::MAX; })* };
}
bounded!(u16, u32, u64, usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_zero_and_refuse_signs() {
        assert_eq!(parse_count::<u32>("0"), Ok(0));
        assert_eq!(parse_count::<u32>("20"), Ok(20));
        for refused in ["-3", "+5", "", "1e3"] {
            assert_eq!(
                parse_count::<u32>(refused),
                Err(Error::NotCount),
                "{refused}"
            );
        }
        assert!(
            parse_count::<u32>("99999999999")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn positive_integers_are_plain_digits() {
        assert_eq!(parse_positive::<u64>("1"), Ok(1));
        assert_eq!(parse_positive::<u32>("007"), Ok(7));
        for given in [
            "", "0", "000", "-3", "+5", " 5", "5 ", "1.5", "1e3", "0x10", "ten",
        ] {
            assert_eq!(
                parse_positive::<u64>(given),
                Err(Error::NotPositive),
                "{given:?}"
            );
        }
        assert_eq!(
            parse_positive::<u32>("4294967296"),
            Err(Error::TooLarge {
                max: "4294967295".to_owned()
            })
        );
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        for given in [
            "", "0", "0MiB", "-1", "+1", "MiB", "64MB", "64 MiB", "1.5MiB", "64mib",
        ] {
            assert_eq!(parse_bytes(given), Err(Error::NotSize), "{given:?}");
        }
        assert!(
            parse_bytes("99999999999GiB")
                .unwrap_err()
                .to_string()
                .starts_with("is too large")
        );
    }
}
