//! The load plan: every way of asking for load (`-u/-r/-t`, `--stages`, `--arrival-rate`, the
//! web page's "set users") normalised into one list of stages, validated once. The spawner
//! follows a `Plan` and knows no other shape of load.

use std::time::Duration;

use crate::units::{self, UnitError};

/// The most users one run starts (the CLI, the page and a cluster master alike): past a few
/// hundred thousand a machine runs out of sockets, and the bound catches a typo's extra
/// zeros before it allocates anything.
pub const MAX_USERS: u64 = 10_000_000;

/// What one stage asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Closed model: move the number of users to `users`, starting or stopping `spawn_rate`
    /// users per second, and keep them iterating.
    Users { users: u64, spawn_rate: f64 },
    /// Open model: start `per_second` iterations per second whatever the server does, with at
    /// most `max_users` users busy at once; an arrival that finds them all busy is dropped.
    Arrivals { per_second: f64, max_users: u64 },
}

/// One stage of a plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub load: Load,
    /// How long the stage lasts; `None` (last stage only): until the run is stopped.
    pub duration: Option<Duration>,
}

/// A validated list of stages. The run ends when the last stage with a duration ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    stages: Vec<Stage>,
}

/// Why a load request was refused. The message names the flag and what to write instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the plan has no stage; give -u USERS, --stages or --arrival-rate")]
    Empty,
    #[error("stage {stage}: only the last stage may run until stopped; give it a duration")]
    OpenEndedStage { stage: usize },
    #[error("stage {stage}: {why}")]
    SpawnRate { stage: usize, why: UnitError },
    #[error("stage {stage}: {why}")]
    ArrivalRate { stage: usize, why: UnitError },
    #[error("stage {stage}: --max-users must be at least 1")]
    MaxUsers { stage: usize },
    #[error(
        "stage {stage}: {users} users is more than one run starts ({MAX_USERS}); run fewer, or spread them over machines with --master and chorus worker"
    )]
    TooManyUsers { stage: usize, users: u64 },
    #[error("stage {stage}: a ramp stage needs a duration above 0")]
    ZeroDuration { stage: usize },
    #[error("stage {stage}: {why}")]
    StageDuration { stage: usize, why: UnitError },
    #[error("--stages: stage {stage}: {why}")]
    StagesDuration { stage: usize, why: UnitError },
    #[error(
        "--stages: the stages last {} in all; a run lasts at most {}",
        units::show(*total),
        units::show(units::MAX_RUN_TIME)
    )]
    TooLong { total: Duration },
    #[error("a plan is either all user-count stages or all arrival-rate stages, not both")]
    Mixed,
    #[error(
        "--stages: {found:?}: expected DURATION:USERS[,DURATION:USERS...] such as 30s:100,2m:100,30s:0 ({why})"
    )]
    Stages { found: String, why: String },
    #[error("--arrival-rate: {0}")]
    Rate(UnitError),
}

impl Plan {
    /// Validates the stages: at least one; only the last may be open-ended; rates positive.
    pub fn new(stages: Vec<Stage>) -> Result<Plan, PlanError> {
        if stages.is_empty() {
            return Err(PlanError::Empty);
        }
        let arrivals = |stage: &Stage| matches!(stage.load, Load::Arrivals { .. });
        if stages.iter().any(arrivals) && !stages.iter().all(arrivals) {
            return Err(PlanError::Mixed);
        }
        let last = stages.len() - 1;
        for (index, stage) in stages.iter().enumerate() {
            let number = index + 1;
            if stage.duration.is_none() && index != last {
                return Err(PlanError::OpenEndedStage { stage: number });
            }
            let users = match stage.load {
                Load::Users { users, .. } => users,
                Load::Arrivals { max_users, .. } => max_users,
            };
            if users > MAX_USERS {
                return Err(PlanError::TooManyUsers {
                    stage: number,
                    users,
                });
            }
            if let Some(duration) = stage.duration {
                if duration.is_zero() {
                    return Err(PlanError::ZeroDuration { stage: number });
                }
                if let Err(why) = units::from_seconds(duration.as_secs_f64(), units::RUN_TIME) {
                    return Err(PlanError::StageDuration { stage: number, why });
                }
            }
            match stage.load {
                Load::Users { spawn_rate, .. } => {
                    if let Err(why) = units::rate_per_second(spawn_rate, units::SPAWN_RATE) {
                        return Err(PlanError::SpawnRate { stage: number, why });
                    }
                }
                Load::Arrivals {
                    per_second,
                    max_users,
                } => {
                    if let Err(why) = units::rate_per_second(per_second, units::ARRIVAL_RATE) {
                        return Err(PlanError::ArrivalRate { stage: number, why });
                    }
                    if max_users == 0 {
                        return Err(PlanError::MaxUsers { stage: number });
                    }
                }
            }
        }
        let total: Duration = stages.iter().filter_map(|stage| stage.duration).sum();
        if total > units::MAX_RUN_TIME {
            return Err(PlanError::TooLong { total });
        }
        Ok(Plan { stages })
    }

    /// `-u USERS -r SPAWN_RATE [-t RUN_TIME]`. Without a spawn rate every user starts within
    /// the first second.
    pub fn users(
        users: u64,
        spawn_rate: Option<f64>,
        run_time: Option<Duration>,
    ) -> Result<Plan, PlanError> {
        let spawn_rate = spawn_rate.unwrap_or(users.max(1) as f64);
        Plan::new(vec![Stage {
            load: Load::Users { users, spawn_rate },
            duration: run_time,
        }])
    }

    /// `--stages 30s:100,2m:100,30s:0`: each stage moves linearly from the users of the stage
    /// before (0 at the start) to its own users over its duration.
    pub fn parse_stages(text: &str) -> Result<Plan, PlanError> {
        let fail = |why: String| PlanError::Stages {
            found: text.to_owned(),
            why,
        };
        let mut stages = Vec::new();
        let mut previous = 0u64;
        for (index, part) in text.split(',').enumerate() {
            let part = part.trim();
            let (duration, users) = part
                .split_once(':')
                .ok_or_else(|| fail(format!("stage {} {part:?} has no ':'", index + 1)))?;
            let duration = units::parse_duration(duration, units::RUN_TIME).map_err(|why| {
                if why.is_syntax() {
                    fail(format!(
                        "stage {}: {:?} is not a duration",
                        index + 1,
                        duration.trim()
                    ))
                } else {
                    PlanError::StagesDuration {
                        stage: index + 1,
                        why,
                    }
                }
            })?;
            let users: u64 = users.trim().parse().map_err(|_| {
                fail(format!(
                    "stage {}: {users:?} is not a number of users",
                    index + 1
                ))
            })?;
            let change = users.abs_diff(previous);
            // A stage that holds the count still needs a rate; any positive one will do.
            let spawn_rate = if change == 0 {
                1.0
            } else {
                // Kept within what a spawn rate may be: a ramp of one user over a year starts
                // it at the slowest rate, a jump in a millisecond at the fastest.
                (change as f64 / duration.as_secs_f64())
                    .clamp(units::MIN_RATE_PER_SECOND, units::MAX_RATE_PER_SECOND)
            };
            stages.push(Stage {
                load: Load::Users { users, spawn_rate },
                duration: Some(duration),
            });
            previous = users;
        }
        Plan::new(stages)
    }

    /// `--arrival-rate 200/s --max-users 2000 [-t RUN_TIME]`.
    pub fn arrivals(
        rate: &str,
        max_users: u64,
        run_time: Option<Duration>,
    ) -> Result<Plan, PlanError> {
        Plan::arrival_rate(parse_rate(rate)?, max_users, run_time)
    }

    /// `per_second` iterations a second, at most `max_users` users busy, for `run_time` (or
    /// until stopped): one open-model stage, its bounds checked.
    pub fn arrival_rate(
        per_second: f64,
        max_users: u64,
        run_time: Option<Duration>,
    ) -> Result<Plan, PlanError> {
        Plan::new(vec![Stage {
            load: Load::Arrivals {
                per_second,
                max_users,
            },
            duration: run_time,
        }])
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The most users any stage may run at once (what unique data sources must cover).
    pub fn peak_users(&self) -> u64 {
        self.stages
            .iter()
            .map(|stage| match stage.load {
                Load::Users { users, .. } => users,
                Load::Arrivals { max_users, .. } => max_users,
            })
            .max()
            .unwrap_or(0)
    }

    /// The first stage's spawn rate, for a plan that starts with users (closed model).
    pub fn spawn_rate(&self) -> Option<f64> {
        match self.stages.first()?.load {
            Load::Users { spawn_rate, .. } => Some(spawn_rate),
            Load::Arrivals { .. } => None,
        }
    }

    /// How long the whole plan lasts, or `None` when it runs until stopped.
    pub fn duration(&self) -> Option<Duration> {
        self.stages.iter().map(|stage| stage.duration).sum()
    }
}

/// What a result says about the run of `plan` on `scenario` (`plan` is `None` when nothing
/// ran: a download before the first run). The one place a `RunMeta` is made, so a local
/// run, a cluster's and the page's say the same.
pub fn run_meta(
    scenario: &crate::scenario::Scenario,
    plan: Option<&Plan>,
    thresholds: Vec<crate::stats::Threshold>,
    start_unix_ms: u64,
) -> crate::stats::RunMeta {
    crate::stats::RunMeta {
        scenario: scenario.source.display().to_string(),
        host: scenario.host.as_ref().map(|host| host.to_string()),
        start_unix_ms,
        end_unix_ms: 0,
        users: plan.map_or(0, Plan::peak_users),
        spawn_rate: plan.and_then(Plan::spawn_rate),
        thresholds,
    }
}

/// `200/s`, `600/m`, `600/min`, `36000/h`; a bare number means per second.
pub fn parse_rate(text: &str) -> Result<f64, PlanError> {
    units::parse_rate(text, units::ARRIVAL_RATE).map_err(PlanError::Rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(users: u64, spawn_rate: f64, secs: u64) -> Stage {
        Stage {
            load: Load::Users { users, spawn_rate },
            duration: Some(Duration::from_secs(secs)),
        }
    }

    #[test]
    fn users_spawn_rate_and_run_time_make_one_stage() {
        let plan = Plan::users(50, Some(5.0), Some(Duration::from_secs(30))).unwrap();
        assert_eq!(plan.stages(), &[users(50, 5.0, 30)]);
        assert_eq!(plan.peak_users(), 50);
        assert_eq!(plan.duration(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn without_spawn_rate_all_users_start_in_the_first_second() {
        let plan = Plan::users(200, None, None).unwrap();
        assert_eq!(
            plan.stages()[0].load,
            Load::Users {
                users: 200,
                spawn_rate: 200.0
            }
        );
        assert_eq!(plan.duration(), None);
    }

    #[test]
    fn stages_ramp_linearly_from_the_stage_before() {
        let plan = Plan::parse_stages("30s:100, 2m:100,30s:0").unwrap();
        assert_eq!(
            plan.stages(),
            &[
                users(100, 100.0 / 30.0, 30),
                users(100, 1.0, 120),
                users(0, 100.0 / 30.0, 30)
            ]
        );
        assert_eq!(plan.duration(), Some(Duration::from_secs(180)));
        assert_eq!(plan.peak_users(), 100);
    }

    #[test]
    fn bad_stages_teach_the_syntax() {
        assert_eq!(
            Plan::parse_stages("30s:100,2m").unwrap_err().to_string(),
            "--stages: \"30s:100,2m\": expected DURATION:USERS[,DURATION:USERS...] such as \
             30s:100,2m:100,30s:0 (stage 2 \"2m\" has no ':')"
        );
        assert_eq!(
            Plan::parse_stages("soon:10").unwrap_err().to_string(),
            "--stages: \"soon:10\": expected DURATION:USERS[,DURATION:USERS...] such as \
             30s:100,2m:100,30s:0 (stage 1: \"soon\" is not a duration)"
        );
        assert_eq!(
            Plan::parse_stages("0s:10").unwrap_err().to_string(),
            "--stages: stage 1: a run time must be more than 0s and at most 1y, found \"0s\""
        );
        assert_eq!(
            Plan::parse_stages("1e300:5").unwrap_err().to_string(),
            "--stages: stage 1: a run time must be more than 0s and at most 1y, found \"1e300\""
        );
        assert_eq!(
            Plan::parse_stages("200d:5,200d:5").unwrap_err().to_string(),
            "--stages: the stages last 400d in all; a run lasts at most 1y"
        );
    }

    #[test]
    fn arrival_rates() {
        assert_eq!(parse_rate("200/s"), Ok(200.0));
        assert_eq!(parse_rate("600/m"), Ok(10.0));
        assert_eq!(parse_rate("36000/h"), Ok(10.0));
        assert_eq!(parse_rate("5"), Ok(5.0));
        assert_eq!(
            parse_rate("fast").unwrap_err().to_string(),
            "--arrival-rate: expected a rate such as 10/s, 600/m or 36000/h (a bare number is per second), found \"fast\""
        );
        assert_eq!(
            parse_rate("1e300/s").unwrap_err().to_string(),
            "--arrival-rate: an arrival rate must be from 1/d to 10000000/s, found \"1e300/s\""
        );
        assert!(parse_rate("0/s").is_err());
        let plan = Plan::arrivals("200/s", 2000, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(
            plan.stages()[0].load,
            Load::Arrivals {
                per_second: 200.0,
                max_users: 2000
            }
        );
        assert_eq!(plan.peak_users(), 2000);
    }

    #[test]
    fn validation() {
        assert_eq!(Plan::new(vec![]), Err(PlanError::Empty));
        let open = Stage {
            load: Load::Users {
                users: 1,
                spawn_rate: 1.0,
            },
            duration: None,
        };
        assert_eq!(
            Plan::new(vec![open, users(1, 1.0, 1)]),
            Err(PlanError::OpenEndedStage { stage: 1 })
        );
        assert_eq!(
            Plan::users(10, Some(0.0), None).unwrap_err().to_string(),
            "stage 1: a spawn rate must be from 1/d to 10000000/s, found 0"
        );
        assert_eq!(
            Plan::users(10, Some(1e-300), None).unwrap_err().to_string(),
            "stage 1: a spawn rate must be from 1/d to 10000000/s, found 1e-300"
        );
        assert_eq!(
            Plan::users(1, None, Some(Duration::from_secs(u64::MAX)))
                .unwrap_err()
                .to_string(),
            "stage 1: a run time must be more than 0s and at most 1y, found 1.8446744073709552e19"
        );
        assert_eq!(
            Plan::arrivals("10/s", 0, None),
            Err(PlanError::MaxUsers { stage: 1 })
        );
        let err = Plan::users(u64::MAX, Some(10.0), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stage 1: 18446744073709551615 users is more than one run starts (10000000); run fewer, or spread them over machines with --master and chorus worker"
        );
        assert!(Plan::arrivals("10/s", MAX_USERS + 1, None).is_err());
        assert!(Plan::users(MAX_USERS, None, None).is_ok());
    }
}
