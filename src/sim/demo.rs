//! The demo fleet: the sample execution of the API reference, kept as it is, and a few
//! generated associations whose runs keep evolving, with some failed and timed-out targets.

use std::time::Duration;

use super::{Association, Sim, SimTarget, State};

/// The sample of the DescribeAssociationExecutionTargets reference page, with its IDs made
/// valid (the page's `…EXAMPLE` IDs do not match the API's pattern).
pub const SAMPLE_ASSOCIATION_ID: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
pub const SAMPLE_EXECUTION_ID: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";

/// Name, document and number of instances of each generated association.
const FLEET: [(&str, &str, u32); 4] = [
    ("patch-linux-fleet", "AWS-RunPatchBaseline", 120),
    ("patch-windows-fleet", "AWS-RunPatchBaseline", 60),
    ("inventory-all", "AWS-GatherSoftwareInventory", 80),
    ("config-baseline", "AWS-ApplyAnsiblePlaybooks", 40),
];

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

    let mut state = sim.lock();
    for (n, (name, document, size)) in FLEET.iter().enumerate() {
        let id = state.new_id();
        state.insert_association(&id, Some(name), document);
        let targets = (0..*size)
            .map(|i| {
                let resource_id = format!("i-{:017x}", (n as u64 + 1) << 32 | u64::from(i));
                let mut target = SimTarget::instance(resource_id, "Success");
                // The inventory association also reaches a few non-SSM resources.
                if *document == "AWS-GatherSoftwareInventory" && i % 10 == 0 {
                    target.resource_type = "AWS::EC2::Instance".to_owned();
                }
                finish(&mut state, &mut target);
                target
            })
            .collect();
        let execution_id = state.new_id();
        let created = super::now() - 600.0;
        state.insert_execution(&id, &execution_id, created, targets);
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
        .filter(|id| id.as_str() != SAMPLE_ASSOCIATION_ID)
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
    let mut moved = Vec::new();
    for (n, i) in unfinished.into_iter().enumerate() {
        let before = targets[i].status.clone();
        if n < batch {
            finish(state, &mut targets[i]);
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

/// Draws a final status: mostly success, some failures and time-outs, now and then a
/// detailed status no dashboard has seen before.
fn finish(state: &mut State, target: &mut SimTarget) {
    let roll = state.random();
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
        assert_eq!(ids.len(), FLEET.len() + 1);
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
    }
}
