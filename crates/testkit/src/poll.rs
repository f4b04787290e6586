//! The one way a test waits for something to become true: look, and look again after a pause,
//! until the look says yes or the time is up. A test never sleeps a guessed time for a
//! condition it can observe.
//!
//! A look answers with anything that is a [`Look`]: a `bool`, an `Option<T>` (the value is
//! returned), or a `Result<Option<T>, String>`, whose `Err` is "not yet, and this is what I
//! saw". On timeout the error names what was awaited and what the last look saw, so a failure
//! says more than "timed out".
//!
//! [`until`] is for async tests, [`until_blocking`] for synchronous code (a `#[test]`, a
//! `Drop`, a helper called from both); both follow [`Looks`], so the deadline and the pauses
//! are one rule.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use crate::{Error, Result};

/// The first pause between two looks. Each pause doubles up to [`LONGEST_PAUSE`]: what is
/// already true is seen in milliseconds, what takes a while costs a look every 250 ms (a
/// kubectl call takes about that long anyway).
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);

/// What one look saw.
pub trait Look {
    type Value;
    /// `Ok(Some(value))`: done; `Ok(None)`: not yet; `Err(seen)`: not yet, and what was seen.
    fn seen(self) -> Result<Option<Self::Value>, String>;
}

impl Look for bool {
    type Value = ();
    fn seen(self) -> Result<Option<()>, String> {
        Ok(self.then_some(()))
    }
}

impl<T> Look for Option<T> {
    type Value = T;
    fn seen(self) -> Result<Option<T>, String> {
        Ok(self)
    }
}

impl<T> Look for Result<Option<T>, String> {
    type Value = T;
    fn seen(self) -> Result<Option<T>, String> {
        self
    }
}

/// The waiting rule both front-ends follow: after each look, stop with the value, fail past
/// the deadline with what was last seen, or pause.
struct Looks<'a> {
    what: &'a str,
    timeout: Duration,
    pause: Duration,
    last: String,
}

impl<'a> Looks<'a> {
    fn new(what: &'a str, timeout: Duration) -> Self {
        Looks {
            what,
            timeout,
            pause: FIRST_PAUSE,
            last: String::from("nothing yet"),
        }
    }

    /// After a look made `elapsed` after the start: the result, or how long to pause.
    fn after<T>(
        &mut self,
        look: Result<Option<T>, String>,
        elapsed: Duration,
    ) -> ControlFlow<Result<T>, Duration> {
        match look {
            Ok(Some(value)) => return ControlFlow::Break(Ok(value)),
            Ok(None) => {}
            Err(seen) => self.last = seen,
        }
        if elapsed >= self.timeout {
            return ControlFlow::Break(Err(Error::Timeout {
                what: self.what.to_owned(),
                timeout: self.timeout,
                last: std::mem::take(&mut self.last),
            }));
        }
        let pause = self.pause.min(self.timeout - elapsed);
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        ControlFlow::Continue(pause)
    }
}

/// Looks with `check` until it says done, or fails after `timeout` with what it last saw.
pub async fn until<L, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<L::Value>
where
    L: Look,
    F: FnMut() -> Fut,
    Fut: Future<Output = L>,
{
    let started = tokio::time::Instant::now();
    let mut looks = Looks::new(what, timeout);
    loop {
        match looks.after(check().await.seen(), started.elapsed()) {
            ControlFlow::Break(done) => return done,
            ControlFlow::Continue(pause) => tokio::time::sleep(pause).await,
        }
    }
}

/// [`until`] for synchronous code: the thread sleeps between looks.
pub fn until_blocking<L: Look>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> L,
) -> Result<L::Value> {
    let started = std::time::Instant::now();
    let mut looks = Looks::new(what, timeout);
    loop {
        match looks.after(check().seen(), started.elapsed()) {
            ControlFlow::Break(done) => return done,
            ControlFlow::Continue(pause) => std::thread::sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test]
    async fn a_timeout_reports_what_was_awaited_and_the_last_observation() {
        let error = until("the answer", Duration::from_millis(300), || async {
            Err::<Option<()>, _>("41".to_string())
        })
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "timed out after 300ms waiting for the answer; last seen: 41"
        );
    }

    #[test]
    fn the_value_of_the_first_look_that_says_done_is_returned() {
        let looks = Cell::new(0);
        let value = until_blocking("the third look", Duration::from_secs(10), || {
            looks.set(looks.get() + 1);
            (looks.get() == 3).then_some("three")
        })
        .unwrap();
        assert_eq!((value, looks.get()), ("three", 3));
    }

    #[test]
    fn a_bool_look_that_never_holds_times_out_having_seen_nothing() {
        let error = until_blocking("never", Duration::from_millis(50), || false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "timed out after 50ms waiting for never; last seen: nothing yet"
        );
    }

    #[test]
    fn pauses_double_from_the_first_up_to_the_longest_and_stop_at_the_deadline() {
        let mut looks = Looks::new("x", Duration::from_secs(1));
        let mut pauses = Vec::new();
        let mut elapsed = Duration::ZERO;
        while let ControlFlow::Continue(pause) = looks.after::<()>(Ok(None), elapsed) {
            pauses.push(pause.as_millis());
            elapsed += pause;
        }
        assert_eq!(&pauses[..6], [10, 20, 40, 80, 160, 250]);
        assert_eq!(elapsed, Duration::from_secs(1), "{pauses:?}");
    }
}
