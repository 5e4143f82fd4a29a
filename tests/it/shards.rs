//! Replicas that share the associations by shard: across them, every association is polled
//! exactly once.

use std::collections::BTreeMap;

use ssm_association_exporter::app::Setup;
use ssm_association_exporter::config::{self, Shard};
use ssm_association_exporter::server::ServerOptions;
use ssm_association_exporter::sim::Sim;

use crate::harness::{Rig, fleet};

#[tokio::test]
async fn across_shards_every_association_is_polled_exactly_once() {
    let sim = Sim::new(101);
    let ids: Vec<String> = (0..90)
        .map(|i| {
            let id = sim.create_association(Some(&format!("s-{i:02}")), "AWS-RunPatchBaseline");
            sim.start_execution(&id, fleet(&format!("i-{i:02}ccccccccccc"), 3, &["Success"]))
                .expect("association exists");
            id
        })
        .collect();
    let mut rigs = Vec::new();
    for index in 0..3 {
        let config = config::parse(
            "poll_interval: 1h\napi:\n  requests_per_second: 100000\n  burst: 1000\n",
        )
        .expect("valid");
        let setup = Setup {
            config,
            shard: Shard::new(index, 3).expect("valid shard"),
            file: None,
        };
        rigs.push(Rig::launch_config(sim.clone(), setup, |o| o, ServerOptions::default()).await);
    }
    let mut watched: BTreeMap<String, usize> = BTreeMap::new();
    for rig in &rigs {
        rig.exporter.wait_for_cycle(1).await.expect("first cycle");
        let metrics = rig.scrape().await;
        let mine = metrics.associations_in("ssm_association_poll_success");
        assert!(
            mine.len() > 10 && mine.len() < 50,
            "an uneven share: {}",
            mine.len()
        );
        for id in mine {
            *watched.entry(id).or_default() += 1;
        }
    }
    let mut expected: Vec<String> = ids.clone();
    expected.sort();
    assert_eq!(
        watched.keys().cloned().collect::<Vec<_>>(),
        expected,
        "every association has a shard"
    );
    assert!(
        watched.values().all(|&n| n == 1),
        "no association has two: {watched:?}"
    );

    // In calls: each association's executions were asked for once, by one replica; the
    // listing (two pages) was read by each.
    let mut asked: BTreeMap<String, usize> = BTreeMap::new();
    let mut lists = 0;
    for r in sim.requests() {
        match r.operation.as_str() {
            "DescribeAssociationExecutions" => {
                *asked
                    .entry(r.association_id.unwrap_or_default())
                    .or_default() += 1;
            }
            "ListAssociations" => lists += 1,
            _ => {}
        }
    }
    assert_eq!(asked.len(), 90);
    assert!(asked.values().all(|&n| n == 1), "{asked:?}");
    assert_eq!(lists, 3 * 2);
    for rig in rigs {
        rig.stop().await;
    }
}
