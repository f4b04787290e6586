//! The scaler's flags, defined once for every command that builds a scaler (`ebb up`,
//! `ebb simulate`): flatten [`ScalerArgs`] into a command's own flags with
//! `#[command(flatten)]`. Same names, `EBB_*` variables, defaults ([`crate::settings`]) and
//! parsing (`ebb-units`: digits only, Go-style durations) everywhere.

use std::time::Duration;

use clap::Args;
use ebb_units::{parse_count, parse_duration, parse_positive};

use crate::config::ScalerConfig;
use crate::error::Result;
use crate::settings::{
    DEFAULT_ACTIVATION_THRESHOLD, DEFAULT_MAX_REPLICAS, DEFAULT_MIN_REPLICAS,
    DEFAULT_TARGET_PER_REPLICA, DEFAULT_TOLERANCE, ScalerSettings,
};

/// The flags of [`ScalerSettings`]. A duration's default is written as text here, checked
/// against the constant by this module's tests.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(next_help_heading = "Scaler")]
pub struct ScalerArgs {
    /// Fewest replicas; 0 lets the system scale to zero.
    #[arg(long, env = "EBB_MIN_REPLICAS", default_value_t = DEFAULT_MIN_REPLICAS,
          value_parser = parse_count::<u32>, allow_hyphen_values = true)]
    pub min_replicas: u32,

    /// Most replicas.
    #[arg(long, env = "EBB_MAX_REPLICAS", default_value_t = DEFAULT_MAX_REPLICAS,
          value_parser = parse_positive::<u32>, allow_hyphen_values = true)]
    pub max_replicas: u32,

    /// Items waiting per replica (the HPA's AverageValue target).
    #[arg(long, env = "EBB_TARGET_PER_REPLICA", default_value_t = DEFAULT_TARGET_PER_REPLICA,
          allow_hyphen_values = true)]
    pub target_per_replica: f64,

    /// From 0 replicas, scale up only when more items than this wait.
    #[arg(long, env = "EBB_ACTIVATION_THRESHOLD", default_value_t = DEFAULT_ACTIVATION_THRESHOLD,
          value_parser = parse_count::<u64>, allow_hyphen_values = true)]
    pub activation_threshold: u64,

    /// Scale to 0 only after the queue (waiting + in flight) stayed empty this long.
    #[arg(long, env = "EBB_COOLDOWN", default_value = "20s",
          value_parser = parse_duration, allow_hyphen_values = true)]
    pub cooldown: Duration,

    /// Scale down to the highest count recommended over this window.
    #[arg(long, env = "EBB_SCALE_DOWN_STABILIZATION", default_value = "20s",
          value_parser = parse_duration, allow_hyphen_values = true)]
    pub scale_down_stabilization: Duration,

    /// Ratio of usage to target within which the count does not change (0 to 1).
    #[arg(long, env = "EBB_TOLERANCE", default_value_t = DEFAULT_TOLERANCE,
          allow_hyphen_values = true)]
    pub tolerance: f64,

    /// Drain-time mode: the smallest count that empties the backlog within this time, from
    /// the measured arrival and service rates.
    #[arg(long, env = "EBB_DRAIN_TIME", value_parser = parse_duration, allow_hyphen_values = true)]
    pub drain_time: Option<Duration>,

    /// How often the scaler reads the queue and decides.
    #[arg(long, env = "EBB_INTERVAL", default_value = "250ms",
          value_parser = parse_duration, allow_hyphen_values = true)]
    pub interval: Duration,
}

impl ScalerArgs {
    pub fn settings(&self) -> ScalerSettings {
        ScalerSettings {
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            target_per_replica: self.target_per_replica,
            activation_threshold: self.activation_threshold,
            cooldown: self.cooldown,
            scale_down_stabilization: self.scale_down_stabilization,
            tolerance: self.tolerance,
            drain_time: self.drain_time,
            interval: self.interval,
        }
    }

    /// The scaler configuration these flags describe, validated: see
    /// [`ScalerSettings::scaler_config`].
    pub fn scaler_config(&self) -> Result<ScalerConfig> {
        self.settings().scaler_config()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::settings::Setting;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        scaler: ScalerArgs,
    }

    fn parse(flags: &[&str]) -> std::result::Result<ScalerSettings, clap::Error> {
        let argv = std::iter::once("test").chain(flags.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.scaler.settings())
    }

    #[test]
    fn no_flag_gives_the_documented_defaults() {
        assert_eq!(parse(&[]).unwrap(), ScalerSettings::default());
    }

    #[test]
    fn every_setting_has_its_flag_and_variable() {
        let command = <Cli as clap::CommandFactory>::command();
        for setting in Setting::ALL {
            let long = setting.flag().trim_start_matches("--");
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(long))
                .unwrap_or_else(|| panic!("no {} flag", setting.flag()));
            let variable = format!("EBB_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|env| env.to_str()),
                Some(variable.as_str())
            );
        }
        assert_eq!(command.get_arguments().count(), Setting::ALL.len());
    }

    #[test]
    fn values_read_as_every_other_ebb_flag() {
        let settings = parse(&[
            "--min-replicas=2",
            "--max-replicas=007",
            "--cooldown=1m30s",
            "--drain-time=45s",
            "--interval=100ms",
        ])
        .unwrap();
        assert_eq!(
            (settings.min_replicas, settings.max_replicas),
            (2, 7),
            "{settings:?}"
        );
        assert_eq!(settings.cooldown, Duration::from_secs(90));
        assert_eq!(settings.drain_time, Some(Duration::from_secs(45)));
        assert_eq!(settings.interval, Duration::from_millis(100));
        for (flags, reason) in [
            (["--min-replicas", "-1"], "must be 0 or a positive integer"),
            (["--max-replicas", "0"], "must be a positive integer"),
            (["--activation-threshold", "+5"], "must be 0 or a positive"),
            (["--cooldown", "-5s"], "invalid duration \"-5s\": negative"),
            (["--interval", "5"], "missing unit"),
        ] {
            let error = parse(&flags).unwrap_err().to_string();
            assert!(
                error.contains(flags[0]) && error.contains(reason),
                "{flags:?}: {error}"
            );
        }
    }
}
