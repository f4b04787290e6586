//! Workloads: when items land in the queue. Either a file of arrivals or a built-in,
//! seeded scenario.
//!
//! Arrivals file format (CSV, one arrival batch per line, in time order):
//!
//! ```text
//! # comments and blank lines are ignored; a `t_seconds,count` header is optional
//! t_seconds,count
//! 0,200
//! 1,0
//! 12.5,40
//! ```
//!
//! A count of 0 means nothing arrives then, so a per-second trace can be given as is. Times
//! go up to 24 h and counts add up to 10⁸ items at most ([`crate::limits`]).

use std::path::Path;

use crate::error::{Error, Result};
use crate::limits::{MAX_HORIZON, MAX_ITEMS, past_horizon};
use crate::rng::SplitMix64;

/// `count` items land at `at_ms` after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub at_ms: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    /// In time order.
    pub arrivals: Vec<Arrival>,
}

/// Built-in scenarios, all on a 100 ms grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// 200 items at once at t = 10 s (the README's demo), then nothing.
    Burst,
    /// Poisson arrivals whose rate climbs from 0 to 16/s over 120 s, then stops.
    Ramp,
    /// A compressed day: the rate follows a cosine from 1/s up to 12/s and back over 600 s.
    Diurnal,
    /// 1/s in the background plus bursts of 40–200 items about every 40 s, for 300 s.
    Spiky,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Burst,
        Scenario::Ramp,
        Scenario::Diurnal,
        Scenario::Spiky,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Burst => "burst",
            Scenario::Ramp => "ramp",
            Scenario::Diurnal => "diurnal",
            Scenario::Spiky => "spiky",
        }
    }
}

const GRID_MS: u64 = 100;

impl Workload {
    pub fn scenario(scenario: Scenario, seed: u64) -> Workload {
        let mut rng = SplitMix64::new(seed);
        let arrivals = match scenario {
            Scenario::Burst => vec![Arrival {
                at_ms: 10_000,
                count: 200,
            }],
            Scenario::Ramp => poisson(&mut rng, 120_000, |t| 16.0 * t / 120.0),
            Scenario::Diurnal => poisson(&mut rng, 600_000, |t| {
                1.0 + 11.0 * (1.0 - (std::f64::consts::TAU * t / 600.0).cos()) / 2.0
            }),
            Scenario::Spiky => {
                let mut arrivals = poisson(&mut rng, 300_000, |_| 1.0);
                let mut at_ms = rng.range(5_000, 40_000);
                while at_ms < 300_000 {
                    let at_ms_on_grid = at_ms / GRID_MS * GRID_MS;
                    arrivals.push(Arrival {
                        at_ms: at_ms_on_grid,
                        count: rng.range(40, 201),
                    });
                    at_ms += rng.range(20_000, 60_000);
                }
                arrivals.sort_by_key(|arrival| arrival.at_ms);
                arrivals
            }
        };
        Workload {
            name: scenario.name().to_owned(),
            arrivals,
        }
    }

    pub fn from_file(path: &Path) -> Result<Workload> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path.display().to_string();
        let arrivals = parse_arrivals(&text, &name)?;
        Ok(Workload { name, arrivals })
    }

    /// The arrivals that bring items: lines with a count of 0 bring nothing.
    pub fn batches(&self) -> impl DoubleEndedIterator<Item = Arrival> + '_ {
        self.arrivals
            .iter()
            .copied()
            .filter(|arrival| arrival.count > 0)
    }

    pub fn total_items(&self) -> u64 {
        self.batches()
            .map(|arrival| arrival.count)
            .fold(0, u64::saturating_add)
    }

    /// When the last item arrives; 0 when none does.
    pub fn last_arrival_ms(&self) -> u64 {
        self.batches()
            .next_back()
            .map_or(0, |arrival| arrival.at_ms)
    }
}

/// Poisson arrivals on the 100 ms grid over `[0, length_ms)`, with `rate(t_seconds)` per second.
fn poisson(rng: &mut SplitMix64, length_ms: u64, rate: impl Fn(f64) -> f64) -> Vec<Arrival> {
    (0..length_ms / GRID_MS)
        .filter_map(|slot| {
            let at_ms = slot * GRID_MS;
            let mean = rate(at_ms as f64 / 1000.0) * GRID_MS as f64 / 1000.0;
            let count = rng.poisson(mean);
            (count > 0).then_some(Arrival { at_ms, count })
        })
        .collect()
}

/// Parses the arrivals format; `source` names the input in error messages.
pub fn parse_arrivals(text: &str, source: &str) -> Result<Vec<Arrival>> {
    let mut arrivals: Vec<Arrival> = Vec::new();
    let mut previous_seconds = 0.0;
    let mut total_items: u64 = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let bad = |what: String| Error::BadArrivalLine {
            path: source.to_owned(),
            line: index + 1,
            what,
        };
        if line.is_empty() || line.starts_with('#') || line.replace(' ', "") == "t_seconds,count" {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [seconds_text, count_text] = fields[..] else {
            return Err(bad(format!(
                "expected 2 fields `t_seconds,count`, got {}: `{line}`",
                fields.len()
            )));
        };
        let seconds: f64 = seconds_text
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| {
                bad(format!(
                    "time `{seconds_text}` is not a number of seconds ≥ 0"
                ))
            })?;
        if seconds > MAX_HORIZON.as_secs_f64() {
            return Err(bad(past_horizon(&format!("time {seconds_text} s"))));
        }
        let count: u64 = count_text.parse().map_err(|_| {
            bad(format!(
                "count `{count_text}` is not a whole number from 0 to {MAX_ITEMS}"
            ))
        })?;
        total_items = total_items.saturating_add(count);
        if total_items > MAX_ITEMS {
            return Err(bad(format!(
                "{total_items} items in all by this line, above the limit of {MAX_ITEMS}"
            )));
        }
        if seconds < previous_seconds {
            return Err(bad(format!(
                "time {seconds} s is before the previous line's {previous_seconds} s (lines must be in time order)"
            )));
        }
        previous_seconds = seconds;
        arrivals.push(Arrival {
            at_ms: (seconds * 1000.0).round() as u64,
            count,
        });
    }
    if arrivals.is_empty() {
        return Err(Error::NoArrivals {
            path: source.to_owned(),
        });
    }
    Ok(arrivals)
}
