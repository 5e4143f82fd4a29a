//! The aws-sdk-ssm boundary: what each answer of the service becomes as an [`SsmError`] or a
//! record, through the real SDK and its retries.

use std::time::{Duration, SystemTime};

use ssm_association_exporter::config::{self, Watch};
use ssm_association_exporter::sim::{Fault, Faults, Sim, SimSchedule, SimTarget};
use ssm_association_exporter::ssm::aws::{AwsSsm, ClientOptions};
use ssm_association_exporter::ssm::{
    Association, AssociationQuery, Execution, ExecutionQuery, Overview, ScheduleFields, Ssm,
    SsmError, Target,
};

use crate::harness::client_options;

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";
const MISSING: &str = "00000000-0000-4000-8000-000000000000";

fn at(seconds: f64) -> Option<SystemTime> {
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds))
}

#[tokio::test]
async fn records_and_errors() {
    let sim = Sim::new(41);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.5,
        vec![SimTarget::instance("i-06666666666a00001", "Failed").detailed("Undeliverable")],
    );
    const E0: &str = "0d6d51ef-5eca-48ef-9d7d-bd6ce3e4f5a6";
    sim.insert_execution(
        A,
        E0,
        1_699_990_000.0,
        vec![SimTarget::instance("i-06666666666a00001", "Success")],
    );
    sim.set_created(A, 1_699_000_000.0);
    sim.set_schedule(
        A,
        SimSchedule {
            expression: Some("cron(0 2 ? * THU#2 *)".to_owned()),
            offset_days: Some(3),
            duration_hours: Some(4),
            apply_only_at_cron_interval: true,
        },
    );
    let server = sim.start().await.expect("simulator");
    let ssm = AwsSsm::connect(&client_options(server.endpoint_url()))
        .await
        .expect("client");

    let page = ssm
        .describe_association_executions(A, &ExecutionQuery::All, None)
        .await
        .expect("executions");
    assert_eq!(
        page.items,
        [
            Execution {
                execution_id: E1.to_owned(),
                status: Some("Failed".into()),
                detailed_status: Some("Failed".into()),
                created_time: at(1_700_000_000.5),
                resource_count_by_status: Some("{Failed=1}".to_owned()),
            },
            Execution {
                execution_id: E0.to_owned(),
                status: Some("Success".into()),
                detailed_status: Some("Success".into()),
                created_time: at(1_699_990_000.0),
                resource_count_by_status: Some("{Success=1}".to_owned()),
            }
        ]
    );
    let successes = ssm
        .describe_association_executions(A, &ExecutionQuery::Status("Success"), None)
        .await
        .expect("executions");
    let ids: Vec<&str> = successes
        .items
        .iter()
        .map(|e| e.execution_id.as_str())
        .collect();
    assert_eq!(ids, [E0]);
    assert_eq!(page.next_token, None);
    let targets = ssm
        .describe_association_execution_targets(A, E1, &[], None)
        .await
        .expect("targets");
    assert_eq!(
        targets.items,
        [Target {
            resource_id: Some("i-06666666666a00001".to_owned()),
            status: Some("Failed".to_owned()),
            detailed_status: Some("Undeliverable".to_owned()),
            resource_type: Some("ManagedInstance".to_owned()),
        }]
    );
    let association = ssm.describe_association(A).await.expect("association");
    assert_eq!(
        association,
        Association {
            association_id: A.to_owned(),
            association_name: Some("patch".to_owned()),
            document_name: Some("AWS-RunPatchBaseline".to_owned()),
            document_version: Some("$DEFAULT".to_owned()),
            association_version: Some("2".to_owned()),
            last_execution_date: at(1_700_000_000.5),
            overview: Some(Overview {
                status: Some("Failed".into()),
                detailed_status: Some("Failed".into()),
                counts: vec![("Failed".into(), 1)],
            }),
            schedule: ScheduleFields {
                expression: Some("cron(0 2 ? * THU#2 *)".to_owned()),
                offset_days: Some(3),
                duration_hours: Some(4),
                apply_only_at_cron_interval: Some(true),
            },
            created: at(1_699_000_000.0),
            last_successful_execution_date: at(1_699_990_000.0),
        }
    );
    // A listing carries the schedule, but not what only DescribeAssociation says.
    let all = ssm
        .list_associations(&AssociationQuery::default(), None)
        .await
        .expect("list");
    assert_eq!(
        all.items,
        [Association {
            schedule: ScheduleFields {
                apply_only_at_cron_interval: None,
                ..association.schedule.clone()
            },
            created: None,
            last_successful_execution_date: None,
            ..association.clone()
        }]
    );
    let listed = ssm
        .list_associations(
            &AssociationQuery {
                document_name: Some("AWS-GatherSoftwareInventory".to_owned()),
            },
            None,
        )
        .await
        .expect("list");
    assert_eq!(listed.items, []);

    assert_eq!(
        ssm.describe_association(MISSING).await,
        Err(SsmError::AssociationDoesNotExist)
    );
    assert_eq!(
        ssm.describe_association_execution_targets(A, MISSING, &[], None)
            .await,
        Err(SsmError::ExecutionDoesNotExist)
    );
    assert_eq!(
        ssm.describe_association_execution_targets(A, E1, &[], Some("garbage".to_owned()))
            .await,
        Err(SsmError::InvalidNextToken)
    );

    let cases = [
        (Fault::Throttle, "throttled", 2),
        (Fault::InternalError, "server_error", 2),
        (Fault::Unavailable, "server_error", 2),
        (Fault::AccessDenied, "client_error", 1),
    ];
    for (fault, kind, attempts) in cases {
        sim.fail_association(A, Some(fault));
        sim.clear_requests();
        let err = ssm
            .describe_association(A)
            .await
            .expect_err("the fault answers");
        assert_eq!(err.kind(), kind, "{fault:?}: {err}");
        let seen: Vec<Option<u32>> = sim.requests().iter().map(|r| r.attempt).collect();
        let want: Vec<Option<u32>> = (1..=attempts).map(Some).collect();
        assert_eq!(
            seen, want,
            "{fault:?}: retried as the SDK's classifier says"
        );
    }
    sim.fail_association(A, None);
    assert_eq!(
        ssm.describe_association(A).await.map(|a| a.association_id),
        Ok(A.to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn filters_reach_the_wire() {
    let sim = Sim::new(42);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.0,
        vec![
            SimTarget::instance("i-07777777777a00001", "Failed"),
            SimTarget::instance("i-07777777777a00002", "Success"),
        ],
    );
    let server = sim.start().await.expect("simulator");
    let ssm = AwsSsm::connect(&client_options(server.endpoint_url()))
        .await
        .expect("client");
    let config = config::parse(&format!(
        "associations:\n  - association_id: {A}\n    filters:\n      - {{ key: ResourceId, value: i-07777777777a00002 }}\n"
    ))
    .expect("config");
    let Watch::Explicit(list) = config.watch else {
        panic!("explicit")
    };
    let page = ssm
        .describe_association_execution_targets(A, E1, &list[0].filters, None)
        .await
        .expect("targets");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].status.as_deref(), Some("Success"));
    server.stop().await;
}

#[tokio::test]
async fn transport_failures() {
    // A port with nothing listening: bind, read the port, close.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let ssm = AwsSsm::connect(&client_options(format!("http://{closed}")))
        .await
        .expect("client");
    let err = ssm.describe_association(A).await.expect_err("refused");
    assert_eq!(err.kind(), "network_error", "{err}");

    let sim = Sim::new(43);
    sim.insert_association(A, None, "AWS-RunPatchBaseline");
    sim.set_faults(Faults {
        latency: Duration::from_secs(30),
        ..Faults::default()
    });
    let server = sim.start().await.expect("simulator");
    let ssm = AwsSsm::connect(&ClientOptions {
        operation_timeout: Duration::from_millis(200),
        ..client_options(server.endpoint_url())
    })
    .await
    .expect("client");
    let err = ssm.describe_association(A).await.expect_err("times out");
    assert_eq!(err.kind(), "timeout", "{err}");
}
