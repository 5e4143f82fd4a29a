//! The demo fleet: the sample execution of the API reference, kept as it is, and a few
//! generated associations whose runs keep evolving, with some failed and timed-out targets.

use std::time::Duration;

use super::{Association, Sim, SimSchedule, SimTarget, State};

/// The sample of the DescribeAssociationExecutionTargets reference page, with its IDs made
/// valid (the page's `…EXAMPLE` IDs do not match the API's pattern).
pub const SAMPLE_ASSOCIATION_ID: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
pub const SAMPLE_EXECUTION_ID: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";

/// An hourly association whose schedule stopped firing three hours ago, after three failed
/// runs: what the missed-schedule and no-recent-success alerts are for. Its runs never move.
pub const STOPPED_ASSOCIATION_ID: &str = "5b7c0a1e-2f3d-4a4b-8c5d-000000000005";

/// Name, document, number of instances and schedule of each generated association.
const FLEET: [(&str, &str, u32, Schedule); 4] = [
    (
        "patch-linux-fleet",
        "AWS-RunPatchBaseline",
        120,
        Schedule::Cron("cron(0 2 ? * SUN *)", None),
    ),
    // Patch Tuesday's habit: the second Thursday of the month, applied the Sunday after.
    (
        "patch-windows-fleet",
        "AWS-RunPatchBaseline",
        60,
        Schedule::Cron("cron(0 3 ? * THU#2 *)", Some(3)),
    ),
    (
        "inventory-all",
        "AWS-GatherSoftwareInventory",
        80,
        Schedule::Rate("rate(30 minutes)"),
    ),
    (
        "config-baseline",
        "AWS-ApplyAnsiblePlaybooks",
        40,
        Schedule::Limited("rate(1 day)", 2),
    ),
];

/// A demo association's schedule.
#[derive(Clone, Copy)]
enum Schedule {
    Rate(&'static str),
    /// A cron expression and its offset in days.
    Cron(&'static str, Option<u8>),
    /// A rate, and the hours a run may take.
    Limited(&'static str, u8),
}

impl Schedule {
    fn sim(self) -> SimSchedule {
        match self {
            Schedule::Rate(expression) => SimSchedule::every(expression),
            Schedule::Cron(expression, offset_days) => SimSchedule {
                offset_days,
                apply_only_at_cron_interval: true,
                ..SimSchedule::every(expression)
            },
            Schedule::Limited(expression, hours) => SimSchedule {
                duration_hours: Some(hours),
                ..SimSchedule::every(expression)
            },
        }
    }
}

/// Fills `sim` with the sample association and the generated fleet, each with one finished run.
pub fn seed(sim: &Sim) {
    sim.insert_association(
        SAMPLE_ASSOCIATION_ID,
        Some("reference-sample"),
        "AWS-RunShellScript",
    );
    let sample = [
        ("i-02573cafcfEXAMPLE", 1_582_037_438.692),
        ("i-0471e04240EXAMPLE", 1_581_948_052.198),
        ("i-07782c72faEXAMPLE", 1_561_053_316.711),
    ]
    .map(|(id, at)| SimTarget {
        last_execution_date: Some(at),
        ..SimTarget::instance(id, "Success")
    });
    sim.insert_execution(
        SAMPLE_ASSOCIATION_ID,
        SAMPLE_EXECUTION_ID,
        1_561_053_300.0,
        sample.to_vec(),
    );
    // The reference page's association runs only when it is created or updated.
    if let Some(a) = sim.lock().association_mut(SAMPLE_ASSOCIATION_ID) {
        a.schedule.expression = None;
    }
    seed_stopped(sim);

    let mut state = sim.lock();
    for (n, (name, document, size, schedule)) in FLEET.iter().enumerate() {
        let id = state.new_id();
        state.insert_association(&id, Some(name), document);
        if let Some(a) = state.association_mut(&id) {
            a.schedule = schedule.sim();
        }
        let targets = (0..*size)
            .map(|i| {
                let resource_id = format!("i-{:017x}", (n as u64 + 1) << 32 | u64::from(i));
                let mut target = SimTarget::instance(resource_id, "Success");
                // The inventory association also reaches a few non-SSM resources.
                if *document == "AWS-GatherSoftwareInventory" && i % 10 == 0 {
                    target.resource_type = "AWS::EC2::Instance".to_owned();
                }
                finish(&mut state, &mut target, RELIABLE.contains(name));
                target
            })
            .collect();
        let execution_id = state.new_id();
        let created = super::now() - 600.0;
        state.insert_execution(&id, &execution_id, created, targets);
    }
}

/// The stopped association: a success six hours ago, then three failed hourly runs, the last
/// three hours ago, and nothing since.
fn seed_stopped(sim: &Sim) {
    sim.insert_association(
        STOPPED_ASSOCIATION_ID,
        Some("backup-hourly"),
        "AWS-RunShellScript",
    );
    let mut state = sim.lock();
    if let Some(a) = state.association_mut(STOPPED_ASSOCIATION_ID) {
        a.schedule = SimSchedule::every("rate(1 hour)");
    }
    let now = super::now();
    for hours_ago in [6.0, 5.0, 4.0, 3.0] {
        let targets = (0..10)
            .map(|i| {
                let status = if hours_ago < 6.0 && i < 3 {
                    "Failed"
                } else {
                    "Success"
                };
                SimTarget {
                    last_execution_date: Some(now - hours_ago * 3600.0),
                    ..SimTarget::instance(format!("i-0b0000000000000{i:02}"), status)
                }
            })
            .collect();
        let execution_id = state.new_id();
        state.insert_execution(
            STOPPED_ASSOCIATION_ID,
            &execution_id,
            now - hours_ago * 3600.0,
            targets,
        );
    }
}

/// Advances the fleet one step every `period` until `shutdown` completes.
pub async fn run(sim: Sim, period: Duration, shutdown: impl std::future::Future<Output = ()>) {
    let mut ticks = tokio::time::interval(period);
    tokio::pin!(shutdown);
    // The first tick is immediate; the seeded state should be seen as it is first.
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => step(&sim),
            () = &mut shutdown => return,
        }
    }
}

/// One step: every running execution moves a third of its unfinished targets to a final
/// status; an idle association starts a new run now and then. The sample stays as it is.
pub fn step(sim: &Sim) {
    let mut state = sim.lock();
    let ids: Vec<String> = state
        .associations
        .keys()
        .filter(|id| ![SAMPLE_ASSOCIATION_ID, STOPPED_ASSOCIATION_ID].contains(&id.as_str()))
        .cloned()
        .collect();
    for id in ids {
        let running = state
            .association(&id)
            .and_then(Association::latest)
            .filter(|e| e.status().0 == "InProgress")
            .map(|e| e.id.clone());
        match running {
            Some(execution_id) => advance(&mut state, &id, &execution_id),
            None if state.random() < 0.35 => start_run(&mut state, &id),
            None => {}
        }
    }
    drop(state);
    // A long poll waiting on the demo's queue hears of the events this step sent.
    sim.queue_changed.notify_waiters();
}

fn start_run(state: &mut State, association_id: &str) {
    let Some(previous) = state
        .association(association_id)
        .and_then(Association::latest)
    else {
        return;
    };
    let targets: Vec<SimTarget> = previous
        .targets
        .iter()
        .map(|t| SimTarget {
            status: "Pending".to_owned(),
            detailed_status: "Pending".to_owned(),
            last_execution_date: None,
            ..t.clone()
        })
        .collect();
    let created = (previous.created + 1.0).max(super::now());
    let execution_id = state.new_id();
    state.insert_execution(association_id, &execution_id, created, targets);
    // Keep the demo's memory flat however long it runs.
    if let Some(a) = state.association_mut(association_id) {
        a.prune(HISTORY);
    }
}

/// Executions each demo association keeps.
const HISTORY: usize = 20;

fn advance(state: &mut State, association_id: &str, execution_id: &str) {
    // The targets leave the state while `finish` draws from the state's random numbers.
    let Some(mut targets) = state
        .association_mut(association_id)
        .and_then(|a| a.execution_mut(execution_id))
        .map(|e| std::mem::take(&mut e.targets))
    else {
        return;
    };
    let unfinished: Vec<usize> = (0..targets.len())
        .filter(|&i| targets[i].status == "Pending" || targets[i].status == "InProgress")
        .collect();
    let batch = unfinished.len().div_ceil(3);
    let reliable = reliable(state, association_id);
    let mut moved = Vec::new();
    for (n, i) in unfinished.into_iter().enumerate() {
        let before = targets[i].status.clone();
        if n < batch {
            finish(state, &mut targets[i], reliable);
        } else {
            targets[i].status = "InProgress".to_owned();
            targets[i].detailed_status = "InProgress".to_owned();
        }
        if targets[i].status != before {
            moved.push(targets[i].resource_id.clone());
        }
    }
    let Some(e) = state
        .association_mut(association_id)
        .and_then(|a| a.execution_mut(execution_id))
    else {
        return;
    };
    let status_before = e.status();
    e.targets = targets;
    let status_moved = e.status() != status_before;
    // As State Manager announces them, for a queue subscribed to the demo's events.
    for resource_id in moved {
        state.target_changed(association_id, execution_id, &resource_id);
    }
    if status_moved {
        state.association_changed(association_id);
    }
}

/// Whether the demo association named so never fails a target: some of the fleet succeed, for
/// the last-success series to have something to say.
fn reliable(state: &State, association_id: &str) -> bool {
    state
        .association(association_id)
        .and_then(|a| a.name.as_deref())
        .is_some_and(|name| RELIABLE.contains(&name))
}

const RELIABLE: [&str; 2] = ["inventory-all", "config-baseline"];

/// Draws a final status: mostly success, some failures and time-outs, now and then a
/// detailed status no dashboard has seen before; always success for a `reliable` one.
fn finish(state: &mut State, target: &mut SimTarget, reliable: bool) {
    let roll = if reliable { 0.0 } else { state.random() };
    let (status, detailed) = match roll {
        r if r < 0.86 => ("Success", "Success"),
        r if r < 0.92 => ("Failed", "Failed"),
        r if r < 0.95 => ("TimedOut", "ExecutionTimedOut"),
        r if r < 0.97 => ("TimedOut", "DeliveryTimedOut"),
        r if r < 0.99 => ("Failed", "Undeliverable"),
        _ => ("Skipped", "NotApplicable"),
    };
    target.status = status.to_owned();
    target.detailed_status = detailed.to_owned();
    target.last_execution_date = Some(super::now());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_fleet_then_runs_progress_to_the_end() {
        let sim = Sim::new(7);
        seed(&sim);
        let ids = sim.association_ids();
        assert_eq!(ids.len(), FLEET.len() + 2);
        let sample = sim
            .targets(SAMPLE_ASSOCIATION_ID, SAMPLE_EXECUTION_ID)
            .expect("sample execution");
        assert_eq!(
            sample.iter().map(|t| t.status.as_str()).collect::<Vec<_>>(),
            ["Success", "Success", "Success"]
        );

        // Enough steps for every association to start a run and finish it.
        let mut started = std::collections::BTreeSet::new();
        for _ in 0..60 {
            step(&sim);
            for id in &ids {
                started.insert(sim.latest_execution(id));
            }
        }
        assert!(
            started.len() > ids.len(),
            "no association started a new run"
        );
        let state = sim.lock();
        for a in state.associations.values() {
            let sizes: Vec<usize> = a.executions.iter().map(|e| e.targets.len()).collect();
            assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
        }
        assert_eq!(
            state.associations[SAMPLE_ASSOCIATION_ID].executions.len(),
            1,
            "the sample never changes"
        );
        assert_eq!(
            state.associations[STOPPED_ASSOCIATION_ID].executions.len(),
            4,
            "the stopped schedule never fires"
        );
    }
}
