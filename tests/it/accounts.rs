//! Several accounts × regions: each pair on its own simulated endpoint, its client signing with
//! credentials that the STS stub issued for the pair's role, and no pair's failure, hang or
//! throttling reaching another.

use std::collections::BTreeMap;
use std::time::Duration;

use ssm_association_exporter::app::{Exporter, aws_pairs};
use ssm_association_exporter::config::{self, Place};
use ssm_association_exporter::server::ServerOptions;
use ssm_association_exporter::sim::{Faults, Sim, SimServer};
use ssm_association_exporter::ssm::aws::ClientOptions;
use tokio::net::TcpListener;

use crate::harness::{Metrics, fleet, get};

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const ROLE_A: &str = "arn:aws:iam::111111111111:role/ssm-reader";
const ROLE_B: &str = "arn:aws:iam::222222222222:role/ssm-reader";

/// One simulated SSM endpoint per pair, expecting that pair's account and region, each with
/// its own associations; and one STS stub that knows both roles (B's wants an external ID).
struct World {
    sts: Sim,
    sts_server: SimServer,
    pairs: Vec<Pair>,
}

struct Pair {
    place: Place,
    sim: Sim,
    server: SimServer,
    /// Association ID → targets of its one execution.
    associations: BTreeMap<String, usize>,
}

impl World {
    async fn start() -> World {
        let sts = Sim::new(7);
        sts.add_role(ROLE_A, None);
        sts.add_role(ROLE_B, Some("b-external-id"));
        let sts_server = sts.start().await.expect("STS stub starts");
        let mut pairs = Vec::new();
        for (n, (account, region)) in [ACCOUNT_A, ACCOUNT_B]
            .iter()
            .flat_map(|a| REGIONS.iter().map(move |r| (*a, *r)))
            .enumerate()
        {
            let sim = Sim::new(20 + n as u64);
            sim.expect_caller(account, region);
            let mut associations = BTreeMap::new();
            // A different fleet in every pair: 1 to 4 associations of 3, 4, 5… targets.
            for k in 0..=n {
                let id =
                    sim.create_association(Some(&format!("pair{n}-{k}")), "AWS-RunPatchBaseline");
                let targets = 3 + n + k;
                sim.start_execution(
                    &id,
                    fleet(
                        &format!("i-{n}{k}aaaaaaaaaaaa"),
                        targets,
                        &["Success", "Failed"],
                    ),
                )
                .expect("association exists");
                associations.insert(id, targets);
            }
            let server = sim.start().await.expect("simulator starts");
            pairs.push(Pair {
                place: Place {
                    account_id: account.to_owned(),
                    region: region.to_owned(),
                },
                sim,
                server,
                associations,
            });
        }
        World {
            sts,
            sts_server,
            pairs,
        }
    }

    /// The `accounts` section for these endpoints; `b_external_id` is what account B's entry
    /// sends.
    fn yaml(&self, b_external_id: &str, extra: &str) -> String {
        let endpoints = |account: &str| {
            self.pairs
                .iter()
                .filter(|p| p.place.account_id == account)
                .map(|p| format!("      {}: {}\n", p.place.region, p.server.endpoint_url()))
                .collect::<String>()
        };
        format!(
            "poll_interval: 1h\n{extra}sts_endpoint_url: {sts}\naccounts:\n  - role_arn: {ROLE_A}\n    regions: [us-east-1, eu-west-1]\n    endpoint_urls:\n{a}  - role_arn: {ROLE_B}\n    external_id: {b_external_id}\n    session_name: exporter-test\n    regions: [us-east-1, eu-west-1]\n    endpoint_urls:\n{b}",
            sts = self.sts_server.endpoint_url(),
            a = endpoints(ACCOUNT_A),
            b = endpoints(ACCOUNT_B),
        )
    }

    fn pair(&self, account: &str, region: &str) -> &Pair {
        self.pairs
            .iter()
            .find(|p| p.place.account_id == account && p.place.region == region)
            .expect("a pair of the world")
    }

    async fn stop(self) {
        for pair in self.pairs {
            pair.server.stop().await;
        }
        self.sts_server.stop().await;
    }
}

/// Builds one client per pair of `yaml` as the binary does, base credentials static, and
/// starts an exporter over them.
async fn launch(yaml: &str, adjust: impl Fn(ClientOptions) -> ClientOptions) -> Exporter {
    let config = config::parse(yaml).expect("test config is valid");
    let pairs = aws_pairs(&config, |options| {
        adjust(ClientOptions {
            // Tests run side by side in one process and name the same pairs: each test's
            // clients keep retry quotas of their own, as harness::client_options does.
            retry_partition: format!(
                "{}-{}",
                options.retry_partition,
                options.endpoint_url.as_deref().unwrap_or_default()
            ),
            static_credentials: Some(("AKIDBASE".to_owned(), "base-secret".to_owned())),
            initial_backoff: Duration::from_millis(1),
            max_attempts: 2,
            operation_timeout: Duration::from_secs(10),
            ..options
        })
    })
    .await
    .expect("clients build");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Exporter::start_pairs(pairs, &config, listener, ServerOptions::default())
        .expect("exporter starts")
}

async fn scrape(exporter: &Exporter) -> Metrics {
    let response = get(exporter.local_addr(), "/metrics").await;
    assert_eq!(response.status, 200, "{}", response.body);
    Metrics::parse(&response.body)
}

/// Targets by (account, region, association) → total count, from the exposition.
fn targets_by_pair(metrics: &Metrics) -> BTreeMap<(String, String, String), f64> {
    let mut out = BTreeMap::new();
    for (labels, value) in metrics.family("ssm_association_targets") {
        *out.entry((
            labels["account_id"].clone(),
            labels["region"].clone(),
            labels["association_id"].clone(),
        ))
        .or_insert(0.0) += value;
    }
    out
}

fn place_labels(place: &Place) -> [(&str, &str); 2] {
    [
        ("account_id", place.account_id.as_str()),
        ("region", place.region.as_str()),
    ]
}

#[tokio::test]
async fn two_accounts_in_two_regions_each_through_its_role() {
    let world = World::start().await;
    let exporter = launch(&world.yaml("b-external-id", ""), |o| o).await;
    exporter.wait_for_cycle(1).await.expect("first cycles");
    let metrics = scrape(&exporter).await;

    let mut expected = BTreeMap::new();
    for pair in &world.pairs {
        for (id, targets) in &pair.associations {
            expected.insert(
                (
                    pair.place.account_id.clone(),
                    pair.place.region.clone(),
                    id.clone(),
                ),
                *targets as f64,
            );
        }
        let labels = place_labels(&pair.place);
        assert_eq!(
            metrics.get("ssm_association_exporter_last_cycle_success", &labels),
            Some(1.0),
            "{}",
            pair.place
        );
        assert_eq!(
            metrics.get("ssm_association_exporter_watched_associations", &labels),
            Some(pair.associations.len() as f64),
            "{}",
            pair.place
        );
        // Every request reached its endpoint signed with its own account's role, for its
        // own region: the simulator answers nothing else with 200.
        let requests = pair.sim.requests();
        assert!(!requests.is_empty(), "{} was polled", pair.place);
        assert!(
            requests.iter().all(|r| r.status == 200),
            "{}: {requests:?}",
            pair.place
        );
    }
    assert_eq!(targets_by_pair(&metrics), expected);
    // Each pair's client assumed its role once, through STS; a second cycle reuses the
    // credentials.
    let assumed = || {
        world
            .sts
            .requests()
            .iter()
            .filter(|r| r.operation == "AssumeRole" && r.status == 200)
            .count()
    };
    assert_eq!(assumed(), 4);
    exporter.poll_now().await.expect("second cycles");
    assert_eq!(assumed(), 4);
    assert_eq!(targets_by_pair(&scrape(&exporter).await), expected);

    exporter.shutdown().await;
    world.stop().await;
}

#[tokio::test]
async fn a_denied_role_and_an_unreachable_region_fail_only_their_own_pairs() {
    let world = World::start().await;
    // Account B's role wants another external ID; account A's eu-west-1 endpoint is a port
    // nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let yaml = world.yaml("wrong-external-id", "").replace(
        &world.pair(ACCOUNT_A, "eu-west-1").server.endpoint_url(),
        &format!("http://127.0.0.1:{closed}"),
    );
    let exporter = launch(&yaml, |o| o).await;
    exporter.wait_for_cycle(1).await.expect("first cycles");
    let metrics = scrape(&exporter).await;

    let healthy = world.pair(ACCOUNT_A, "us-east-1");
    let expected: BTreeMap<(String, String, String), f64> = healthy
        .associations
        .iter()
        .map(|(id, n)| {
            (
                (ACCOUNT_A.to_owned(), "us-east-1".to_owned(), id.clone()),
                *n as f64,
            )
        })
        .collect();
    assert_eq!(targets_by_pair(&metrics), expected);
    let health = |account: &str, region: &str| {
        let place = Place {
            account_id: account.to_owned(),
            region: region.to_owned(),
        };
        metrics.get(
            "ssm_association_exporter_last_cycle_success",
            &place_labels(&place),
        )
    };
    assert_eq!(health(ACCOUNT_A, "us-east-1"), Some(1.0));
    assert_eq!(health(ACCOUNT_A, "eu-west-1"), Some(0.0));
    assert_eq!(health(ACCOUNT_B, "us-east-1"), Some(0.0));
    assert_eq!(health(ACCOUNT_B, "eu-west-1"), Some(0.0));
    let listing_failures = |account: &str, region: &str, outcome: &str| {
        metrics.get(
            "ssm_association_exporter_api_requests_total",
            &[
                ("operation", "ListAssociations"),
                ("outcome", outcome),
                ("account_id", account),
                ("region", region),
            ],
        )
    };
    assert_eq!(
        listing_failures(ACCOUNT_A, "eu-west-1", "network_error"),
        Some(1.0)
    );
    assert_eq!(
        listing_failures(ACCOUNT_B, "us-east-1", "credentials_error"),
        Some(1.0)
    );
    assert_eq!(
        listing_failures(ACCOUNT_B, "eu-west-1", "credentials_error"),
        Some(1.0)
    );
    // The denied role never reached SSM: no request of B's was sent, signed or not.
    for region in REGIONS {
        assert_eq!(world.pair(ACCOUNT_B, region).sim.requests(), []);
    }
    let denied = world
        .sts
        .requests()
        .iter()
        .filter(|r| r.operation == "AssumeRole" && r.status == 403)
        .count();
    assert!(denied >= 2, "B's two clients asked STS: {denied}");

    exporter.shutdown().await;
    world.stop().await;
}

/// A pair whose every answer is throttled, an answer only after a second's wait, spends its
/// first cycle retrying; meanwhile the other pairs finish theirs, never throttled, each call
/// answered at its first attempt: they run on schedulers and clients of their own.
#[tokio::test]
async fn a_throttled_pair_leaves_the_others_cycles_alone() {
    let world = World::start().await;
    let slow = world.pair(ACCOUNT_A, "us-east-1");
    slow.sim.set_faults(Faults {
        throttle_rate: 1.0,
        latency: Duration::from_secs(1),
        ..Faults::default()
    });
    let exporter = launch(
        &world.yaml("b-external-id", "api:\n  retry_mode: adaptive\n"),
        |o| ClientOptions {
            max_attempts: 5,
            ..o
        },
    )
    .await;
    let others: Vec<&Pair> = world
        .pairs
        .iter()
        .filter(|p| p.place != slow.place)
        .collect();
    for pair in &others {
        exporter
            .wait_for_place(&pair.place, 1)
            .await
            .expect("first cycle");
    }
    let metrics = scrape(&exporter).await;
    let cycles = |metrics: &Metrics, place: &Place| -> f64 {
        metrics
            .family("ssm_association_exporter_cycles_total")
            .iter()
            .filter(|(l, _)| l["account_id"] == place.account_id && l["region"] == place.region)
            .map(|(_, v)| v)
            .sum()
    };
    // Five attempts of a second each at least: the slow pair is still in its first cycle.
    assert_eq!(cycles(&metrics, &slow.place), 0.0);
    for pair in &others {
        assert_eq!(cycles(&metrics, &pair.place), 1.0, "{}", pair.place);
        let labels = place_labels(&pair.place);
        let mut throttled = vec![("operation", "ListAssociations"), ("outcome", "throttled")];
        throttled.extend(labels);
        assert_eq!(
            metrics.get("ssm_association_exporter_api_requests_total", &throttled),
            None,
            "{}",
            pair.place
        );
        let requests = pair.sim.requests();
        assert!(
            requests
                .iter()
                .all(|r| r.status == 200 && r.attempt == Some(1)),
            "{}: {requests:?}",
            pair.place
        );
    }
    // Ready: the pairs that finished are served, the slow one does not hold them back.
    assert_eq!(get(exporter.local_addr(), "/-/ready").await.status, 200);
    let slow_requests = slow.sim.requests();
    assert!(
        !slow_requests.is_empty() && slow_requests.iter().all(|r| r.status == 400),
        "the slow pair was only throttled: {slow_requests:?}"
    );

    exporter.shutdown().await;
    world.stop().await;
}

#[tokio::test]
async fn explicit_associations_are_asked_for_only_in_their_pair() {
    let world = World::start().await;
    let home = world.pair(ACCOUNT_B, "eu-west-1");
    let id = home
        .associations
        .keys()
        .next()
        .expect("an association")
        .clone();
    let yaml = format!(
        "{}associations:\n  - association_id: {id}\n    account_id: \"{ACCOUNT_B}\"\n    region: eu-west-1\n",
        world.yaml("b-external-id", "")
    );
    let exporter = launch(&yaml, |o| o).await;
    exporter.wait_for_cycle(1).await.expect("first cycles");
    let metrics = scrape(&exporter).await;
    assert_eq!(
        targets_by_pair(&metrics),
        BTreeMap::from([(
            (ACCOUNT_B.to_owned(), "eu-west-1".to_owned(), id.clone()),
            home.associations[&id] as f64
        )])
    );
    for pair in &world.pairs {
        let asked = pair.sim.requests().len();
        if pair.place == home.place {
            // DescribeAssociation, DescribeAssociationExecutions, the targets.
            assert_eq!(asked, 3, "{}", pair.place);
        } else {
            assert_eq!(asked, 0, "{}", pair.place);
        }
    }

    exporter.shutdown().await;
    world.stop().await;
}
