//! The master's state machine, driven by hand: joins, losses, stages and stops, and what
//! each worker is told.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::cluster::bundle::Bundle;
use crate::engine::Plan;
use crate::stats::{RequestSample, RunMeta, Tally};

/// A master's configuration for driving a `Run` by hand (the page's tests and the fuzz
/// properties use it too): `plan` for `expect_workers` workers, a bundle of one URL,
/// `unique_rows`, and what it says told to `notify`.
pub(super) fn master_config(
    plan: Plan,
    unique_rows: Option<u64>,
    expect_workers: usize,
    notify: Notify,
) -> MasterConfig {
    MasterConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        token: None,
        expect_workers,
        bundle: Bundle::from_urls(&["http://127.0.0.1:9/".to_owned()], None),
        plan,
        unique_rows,
        stop_timeout: Duration::from_secs(1),
        max_body: None,
        accept_invalid_certs: false,
        meta: RunMeta::default(),
        iterations: None,
        monitors: Vec::new(),
        notify,
    }
}

/// Worker `id` (2 cores) joins `run` and says it is ready; what it is told comes to the inbox.
pub(super) fn join(run: &mut Run, id: u32) -> mpsc::UnboundedReceiver<ToWorker> {
    let (sender, inbox) = mpsc::unbounded_channel();
    run.on_event(Event::Joined {
        id,
        name: format!("w{id}"),
        peer: "127.0.0.1:1".parse().unwrap(),
        cores: 2,
        sender,
    });
    run.on_event(Event::Message {
        id,
        message: ToMaster::Ready,
    });
    inbox
}

struct Fixture {
    run: Run,
    said: Arc<Mutex<Vec<String>>>,
    inboxes: BTreeMap<u32, mpsc::UnboundedReceiver<ToWorker>>,
}

impl Fixture {
    fn new(users: u64, rows: Option<u64>, expect: usize) -> Fixture {
        let plan = Plan::users(users, Some(100.0), Some(Duration::from_secs(60))).unwrap();
        Fixture::with_plan(plan, rows, expect)
    }

    fn with_plan(plan: Plan, rows: Option<u64>, expect: usize) -> Fixture {
        let said = Arc::new(Mutex::new(Vec::new()));
        let log = said.clone();
        let notify = Arc::new(move |line: &str| log.lock().unwrap().push(line.to_owned()));
        let config = master_config(plan, rows, expect, notify);
        Fixture {
            run: Run::new(config, Arc::new(Mutex::new(Status::default()))),
            said,
            inboxes: BTreeMap::new(),
        }
    }

    fn join(&mut self, id: u32) {
        let inbox = join(&mut self.run, id);
        self.inboxes.insert(id, inbox);
    }

    fn told(&mut self, id: u32) -> Vec<ToWorker> {
        let inbox = self.inboxes.get_mut(&id).unwrap();
        std::iter::from_fn(|| inbox.try_recv().ok())
            .filter(|m| !matches!(m, ToWorker::Heartbeat))
            .collect()
    }

    fn said(&self) -> String {
        self.said.lock().unwrap().join("\n")
    }
}

fn started(messages: &[ToWorker]) -> (u64, Vec<u32>) {
    match messages {
        [ToWorker::Start { users, rows, .. }] => (*users, rows.clone()),
        other => panic!("expected one start, got {other:?}"),
    }
}

fn set_to(messages: &[ToWorker]) -> u64 {
    match messages {
        [ToWorker::SetUsers { users, .. }] => *users,
        other => panic!("expected one set_users, got {other:?}"),
    }
}

/// What a worker's tally takes after `requests` GETs of `/a` of 3 ms.
pub(super) fn snapshot_of(requests: usize) -> Snapshot {
    let mut tally = Tally::new();
    for _ in 0..requests {
        tally.record(&RequestSample {
            method: "GET",
            name: "/a",
            latency: Duration::from_millis(3),
            response_bytes: 1,
            failure: None,
        });
    }
    tally.take()
}

fn stats(requests: usize) -> ToMaster {
    ToMaster::Stats {
        process: None,
        users: 10,
        seconds: vec![SecondStats {
            second: 0,
            snapshot: snapshot_of(requests),
        }],
    }
}

#[test]
fn shares_move_on_loss_and_join_and_rows_are_never_given_twice() {
    let mut fixture = Fixture::new(30, Some(100), 3);
    fixture.join(1);
    fixture.join(2);
    assert!(
        fixture.told(1).is_empty(),
        "nothing starts before 3 are ready"
    );
    fixture.join(3);
    let mut given = BTreeSet::new();
    for id in 1..=3 {
        let (users, rows) = started(&fixture.told(id));
        assert_eq!(users, 10);
        assert!(rows.len() >= 10, "{rows:?}");
        for row in rows {
            assert!(given.insert(row), "row {row} given twice");
        }
    }
    fixture.run.on_event(Event::Message {
        id: 3,
        message: stats(7),
    });
    fixture.run.on_event(Event::Gone {
        id: 3,
        why: "the connection closed".to_owned(),
    });
    assert_eq!(set_to(&fixture.told(1)), 15);
    assert_eq!(set_to(&fixture.told(2)), 15);
    assert!(
        fixture.said().contains(
            "went missing: the connection closed; the 7 requests it reported are counted, \
             its 10 user(s) were moved to the other workers"
        ),
        "{}",
        fixture.said()
    );
    fixture.join(4);
    let (users, rows) = started(&fixture.told(4));
    assert_eq!(users, 10);
    for row in rows {
        assert!(given.insert(row), "row {row} given twice (to a joiner)");
    }
    assert_eq!(set_to(&fixture.told(1)), 10);
    assert_eq!(set_to(&fixture.told(2)), 10);

    fixture.run.stop(false);
    for id in [1, 2, 4] {
        assert_eq!(fixture.told(id), [ToWorker::Stop { now: false }]);
    }
    for id in [1, 2] {
        fixture.run.on_event(Event::Message {
            id,
            message: ToMaster::Finished {
                seconds: Vec::new(),
            },
        });
    }
    assert!(!fixture.run.is_done(), "w4 has not finished");
    fixture.run.on_event(Event::Message {
        id: 4,
        message: stats(5),
    });
    fixture.run.on_event(Event::Message {
        id: 4,
        message: ToMaster::Finished {
            seconds: Vec::new(),
        },
    });
    assert!(fixture.run.is_done());
    let mut inbox = fixture.inboxes.remove(&1).unwrap();
    let result = fixture.run.finish();
    assert_eq!(result.total.requests, 12);
    assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
    assert!(matches!(inbox.try_recv(), Ok(ToWorker::Quit { .. })));
}

#[test]
fn too_few_rows_cap_the_users_and_say_so() {
    let mut fixture = Fixture::new(30, Some(30), 2);
    fixture.join(1);
    fixture.join(2);
    assert_eq!(started(&fixture.told(1)).0, 15);
    assert_eq!(started(&fixture.told(2)).0, 15);
    fixture.run.on_event(Event::Gone {
        id: 2,
        why: "gone".to_owned(),
    });
    // w1 holds 15 rows: it cannot take w2's users, whose rows are not given again.
    assert!(fixture.told(1).is_empty());
    assert!(
        fixture.said().contains("only 15 of 30 users can run"),
        "{}",
        fixture.said()
    );
}

#[test]
fn without_unique_data_any_worker_takes_any_share() {
    let mut fixture = Fixture::new(7, None, 2);
    fixture.join(1);
    fixture.join(2);
    assert_eq!(started(&fixture.told(1)), (4, Vec::new()));
    assert_eq!(started(&fixture.told(2)), (3, Vec::new()));
    fixture.run.on_event(Event::Gone {
        id: 1,
        why: "gone".to_owned(),
    });
    assert_eq!(set_to(&fixture.told(2)), 7);
}

#[test]
fn stopping_again_never_puts_the_end_later() {
    let mut fixture = Fixture::new(4, None, 2);
    fixture.join(1);
    fixture.join(2);
    fixture.run.stop(false);
    let first = fixture.run.wake_at().expect("a deadline while stopping");
    fixture.run.stop(false);
    assert_eq!(fixture.run.wake_at(), Some(first));
    fixture.run.stop(true);
    let now_deadline = fixture.run.wake_at().unwrap();
    assert!(now_deadline < first, "stop now brings the end closer");
    fixture.run.on_timer(now_deadline);
    assert!(fixture.run.is_done());
}

#[test]
fn each_stage_sends_the_new_shares_and_the_last_one_stops() {
    let plan = Plan::parse_stages("10s:20,10s:20,10s:0").unwrap();
    let mut fixture = Fixture::with_plan(plan, None, 2);
    fixture.join(1);
    fixture.join(2);
    let start = Instant::now();
    let rate = |messages: &[ToWorker]| match messages {
        [ToWorker::Start { spawn_rate, .. } | ToWorker::SetUsers { spawn_rate, .. }] => *spawn_rate,
        other => panic!("{other:?}"),
    };
    let told = fixture.told(1);
    assert_eq!(started(&told).0, 10);
    // 20 users in 10 s, half of them on each worker.
    assert_eq!(rate(&told), 1.0);
    fixture.told(2);
    fixture.run.on_timer(start + Duration::from_secs(11));
    assert_eq!(set_to(&fixture.told(1)), 10);
    assert_eq!(set_to(&fixture.told(2)), 10);
    fixture.run.on_timer(start + Duration::from_secs(21));
    assert_eq!(set_to(&fixture.told(1)), 0);
    assert_eq!(set_to(&fixture.told(2)), 0);
    fixture.run.on_timer(start + Duration::from_secs(31));
    assert_eq!(fixture.told(1), [ToWorker::Stop { now: false }]);
}

#[test]
fn a_lost_workers_users_are_taken_over_faster_than_a_slow_spawn_rate() {
    let plan = Plan::users(30, Some(1.0), None).unwrap();
    let mut fixture = Fixture::with_plan(plan, None, 3);
    for id in 1..=3 {
        fixture.join(id);
    }
    for id in 1..=3 {
        fixture.told(id);
    }
    fixture.run.on_event(Event::Gone {
        id: 3,
        why: "gone".to_owned(),
    });
    match fixture.told(1).as_slice() {
        [ToWorker::SetUsers { users, spawn_rate }] => {
            assert_eq!(*users, 15);
            // 5 more users within 2 s, not at the plan's 1/3 user per second.
            assert_eq!(*spawn_rate, 2.5);
        }
        other => panic!("{other:?}"),
    }
}

/// The arrival rate and most users each worker was told (at its start or since).
fn arrivals_told(messages: &[ToWorker]) -> (f64, u64) {
    match messages {
        [
            ToWorker::Start {
                arrival_rate: Some(rate),
                users,
                ..
            },
        ] => (*rate, *users),
        [
            ToWorker::SetArrivals {
                per_second,
                max_users,
            },
        ] => (*per_second, *max_users),
        other => panic!("expected one arrival rate, got {other:?}"),
    }
}

#[test]
fn the_arrival_rate_is_split_and_split_again_on_a_loss_and_a_join() {
    let plan = Plan::arrivals("90/s", 300, Some(Duration::from_secs(60))).unwrap();
    let mut fixture = Fixture::with_plan(plan, None, 3);
    for id in 1..=3 {
        fixture.join(id);
    }
    for id in 1..=3 {
        assert_eq!(arrivals_told(&fixture.told(id)), (30.0, 100));
    }
    assert_eq!(fixture.run.page_state(), RunState::Running);
    fixture.run.on_event(Event::Gone {
        id: 3,
        why: "killed".to_owned(),
    });
    assert!(
        fixture.said().contains("went missing"),
        "{}",
        fixture.said()
    );
    for id in 1..=2 {
        assert_eq!(arrivals_told(&fixture.told(id)), (45.0, 150));
    }
    fixture.join(4);
    assert_eq!(arrivals_told(&fixture.told(4)), (30.0, 100));
    for id in 1..=2 {
        assert_eq!(arrivals_told(&fixture.told(id)), (30.0, 100));
    }
    // A heartbeat's rebalance with nothing changed tells nobody anything.
    fixture.run.rebalance();
    for id in [1, 2, 4] {
        assert!(fixture.told(id).is_empty());
    }
}

#[test]
fn with_iterations_the_run_is_done_when_every_worker_with_users_has_finished() {
    let plan = Plan::users(3, Some(100.0), None).unwrap();
    let mut fixture = Fixture::with_plan(plan, None, 2);
    fixture.run.config.iterations = Some(4);
    fixture.join(1);
    fixture.join(2);
    for id in [1, 2] {
        match &fixture.told(id)[..] {
            [ToWorker::Start { iterations, .. }] => assert_eq!(*iterations, Some(4)),
            other => panic!("{other:?}"),
        }
    }
    fixture.run.on_event(Event::Message {
        id: 1,
        message: ToMaster::Finished {
            seconds: Vec::new(),
        },
    });
    assert!(!fixture.run.is_done(), "worker 2 still runs its users");
    fixture.run.on_event(Event::Message {
        id: 2,
        message: ToMaster::Finished {
            seconds: Vec::new(),
        },
    });
    assert!(fixture.run.is_done(), "{}", fixture.said());
    assert!(
        fixture
            .said()
            .contains("every worker's users ran their 4 iteration(s)")
    );
}

#[test]
fn with_iterations_a_lost_worker_does_not_keep_a_finished_run_going() {
    let plan = Plan::users(4, Some(100.0), None).unwrap();
    let mut fixture = Fixture::with_plan(plan, None, 2);
    fixture.run.config.iterations = Some(2);
    fixture.join(1);
    fixture.join(2);
    fixture.run.on_event(Event::Message {
        id: 1,
        message: ToMaster::Finished {
            seconds: Vec::new(),
        },
    });
    assert!(!fixture.run.is_done());
    fixture.run.on_event(Event::Gone {
        id: 2,
        why: "killed".to_owned(),
    });
    assert!(fixture.run.is_done(), "{}", fixture.said());
}

#[test]
fn a_workers_own_load_reaches_the_status_and_the_result() {
    let mut fixture = Fixture::new(4, None, 1);
    fixture.join(1);
    for second in 0..4 {
        fixture.run.on_event(Event::Message {
            id: 1,
            message: ToMaster::Stats {
                users: 4,
                seconds: Vec::new(),
                process: Some(crate::cluster::protocol::ProcessLoad {
                    second,
                    cpu_percent: 195.0,
                    memory_bytes: 40 << 20,
                    cores: 2,
                }),
            },
        });
    }
    let status = fixture.run.status.lock().unwrap().clone();
    let load = status.workers[0].load.expect("a load");
    assert_eq!((load.cpu_percent, load.memory_bytes), (195.0, 40 << 20));
    assert!(load.saturated);
    assert!(
        fixture
            .said()
            .contains("worker \"w1\" used 195 % CPU (2 core(s)) for 3 s")
    );
    let result = fixture.run.finish();
    let names: Vec<&str> = result.monitors.series.iter().map(|s| &*s.name).collect();
    assert!(
        names.contains(&"worker:w1.cpu") && names.contains(&"worker:w1.memory"),
        "{names:?}"
    );
    // The run began just now: second 3 is past the latest allowed (2 s ahead), so it is
    // counted as second 2, which came already, and dropped.
    assert_eq!(result.monitors.workers_saturated_seconds["w1"], 3);
    let cpu = result
        .monitors
        .series
        .iter()
        .find(|s| s.name == "worker:w1.cpu");
    assert_eq!(cpu.unwrap().points.len(), 3);
}
