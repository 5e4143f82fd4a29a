//! The simulator on the wire: raw awsJson1.1 requests, exact status codes, envelopes and
//! pagination, so that a change to the simulator that would let the exporter's tests pass
//! against something SSM never sends shows up here.

use serde_json::{Value, json};
use ssm_association_exporter::sim::{Faults, Sim, SimServer, SimTarget};

use crate::harness::{HttpResponse, fleet, send};

const A: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
const B: &str = "0b7e1a52-3c0d-4c1e-9f43-5a1d2c3b4e5f";
const E1: &str = "d6d51ef5-4eca-48ef-9d7d-bd6ce3e4f5a6";
const E2: &str = "7abb6378-a4a5-4f10-8312-0123456789ab";
const MISSING: &str = "00000000-0000-4000-8000-000000000000";

async fn call(server: &SimServer, operation: &str, body: Value) -> (u16, Value, HttpResponse) {
    let addr = server
        .endpoint_url()
        .trim_start_matches("http://")
        .parse()
        .expect("socket address");
    let target = format!("AmazonSSM.{operation}");
    let response = send(
        addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", &target),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        &body.to_string(),
    )
    .await;
    let json = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.status, json, response)
}

async fn fixture() -> (Sim, SimServer) {
    let sim = Sim::new(31);
    sim.insert_association(A, Some("patch"), "AWS-RunPatchBaseline");
    sim.insert_association(B, None, "AWS-GatherSoftwareInventory");
    sim.insert_execution(
        A,
        E1,
        1_700_000_000.5,
        fleet("i-05555555555a", 120, &["Success", "Failed"]),
    );
    sim.insert_execution(
        A,
        E2,
        1_700_000_600.25,
        vec![SimTarget::instance("i-05555555555a00001", "InProgress")],
    );
    let server = sim.start().await.expect("simulator starts");
    (sim, server)
}

fn error(code: &str, message: &str) -> Value {
    json!({ "__type": code, "message": message })
}

#[tokio::test]
async fn errors_carry_the_real_envelopes() {
    let (_sim, server) = fixture().await;
    let cases: Vec<(&str, Value, u16, Value)> = vec![
        (
            "DescribeAssociationExecutionTargets",
            json!({ "AssociationId": A, "ExecutionId": E1, "MaxResults": 51 }),
            400,
            error(
                "ValidationException",
                "1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50",
            ),
        ),
        (
            "ListAssociations",
            json!({ "MaxResults": 0 }),
            400,
            error(
                "ValidationException",
                "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ),
        ),
        (
            "DescribeAssociationExecutionTargets",
            json!({ "AssociationId": A }),
            400,
            error(
                "ValidationException",
                "1 validation error detected: Value null at 'executionId' failed to satisfy constraint: Member must not be null",
            ),
        ),
        (
            "DescribeAssociationExecutions",
            json!({ "AssociationId": "fa94c678-85c6-4d40-926b-7c791EXAMPLE" }),
            400,
            error(
                "ValidationException",
                "1 validation error detected: Value 'fa94c678-85c6-4d40-926b-7c791EXAMPLE' at 'associationId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            ),
        ),
        (
            "DescribeAssociationExecutionTargets",
            json!({ "AssociationId": A, "ExecutionId": E1, "Filters": [] }),
            400,
            error(
                "ValidationException",
                "1 validation error detected: Value '[]' at 'filters' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ),
        ),
        (
            "DescribeAssociationExecutionTargets",
            json!({ "AssociationId": A, "ExecutionId": E1, "Filters": [{ "Key": "Colour", "Value": "red" }] }),
            400,
            error(
                "ValidationException",
                "1 validation error detected: Value 'Colour' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [Status, ResourceId, ResourceType]",
            ),
        ),
        (
            "DescribeAssociationExecutions",
            json!({ "AssociationId": A, "Filters": [{ "Key": "ExecutionId", "Value": E1, "Type": "GREATER_THAN" }] }),
            400,
            error(
                "ValidationException",
                "1 validation error detected: Filter ExecutionId supports only the EQUAL type, not GREATER_THAN",
            ),
        ),
        (
            "DescribeAssociation",
            json!({ "AssociationId": MISSING }),
            400,
            error(
                "AssociationDoesNotExist",
                &format!("Association with ID {MISSING} does not exist."),
            ),
        ),
        (
            "DescribeAssociationExecutionTargets",
            json!({ "AssociationId": A, "ExecutionId": MISSING }),
            400,
            error(
                "AssociationExecutionDoesNotExist",
                &format!("AssociationExecution with ID {MISSING} does not exist."),
            ),
        ),
        (
            "DescribeAssociationExecutionTargets",
            json!({ "AssociationId": A, "ExecutionId": E1, "NextToken": "garbage" }),
            400,
            error("InvalidNextToken", "The specified token isn't valid."),
        ),
        (
            "DescribeAssociation",
            json!({ "AssociationId": A, "AssociationVersion": "7" }),
            400,
            error(
                "InvalidAssociationVersion",
                "Association version 7 does not exist.",
            ),
        ),
        (
            "DeleteAssociation",
            json!({ "AssociationId": A }),
            400,
            error(
                "UnknownOperationException",
                "unknown operation \"DeleteAssociation\"",
            ),
        ),
    ];
    for (operation, body, status, expected) in cases {
        let (got_status, got, response) = call(&server, operation, body.clone()).await;
        assert_eq!(
            (got_status, &got),
            (status, &expected),
            "{operation} {body}"
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert!(response.header("x-amzn-requestid").is_some());
    }
    server.stop().await;
}

#[tokio::test]
async fn pages_hold_fifty_and_tokens_are_bound_to_their_request() {
    let (_sim, server) = fixture().await;
    let request = json!({ "AssociationId": A, "ExecutionId": E1, "MaxResults": 50 });
    let mut resources = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut body = request.clone();
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let (status, page, _) = call(&server, "DescribeAssociationExecutionTargets", body).await;
        assert_eq!(status, 200, "{page}");
        let items = page["AssociationExecutionTargets"]
            .as_array()
            .expect("targets array");
        pages.push(items.len());
        resources.extend(
            items
                .iter()
                .map(|t| t["ResourceId"].as_str().expect("ResourceId").to_owned()),
        );
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, [50, 50, 20]);
    let expected: Vec<String> = (0..120).map(|i| format!("i-05555555555a{i:05}")).collect();
    assert_eq!(
        resources, expected,
        "every target once, sorted by resource ID"
    );

    // The first page's token, replayed against another execution or with a filter, is refused.
    let (_, first, _) = call(
        &server,
        "DescribeAssociationExecutionTargets",
        request.clone(),
    )
    .await;
    let first_token = first["NextToken"].clone();
    for other in [
        json!({ "AssociationId": A, "ExecutionId": E2, "NextToken": first_token }),
        json!({ "AssociationId": A, "ExecutionId": E1, "NextToken": first_token, "Filters": [{ "Key": "Status", "Value": "Failed" }] }),
    ] {
        let (status, body, _) = call(&server, "DescribeAssociationExecutionTargets", other).await;
        assert_eq!(
            (status, body),
            (
                400,
                error("InvalidNextToken", "The specified token isn't valid.")
            )
        );
    }
    // A smaller page size with the same token continues the same listing.
    let (status, body, _) = call(
        &server,
        "DescribeAssociationExecutionTargets",
        json!({ "AssociationId": A, "ExecutionId": E1, "NextToken": first_token, "MaxResults": 1 }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["AssociationExecutionTargets"][0]["ResourceId"],
        json!("i-05555555555a00050")
    );
    server.stop().await;
}

#[tokio::test]
async fn shapes_match_the_api_reference() {
    let (_sim, server) = fixture().await;
    let (status, executions, _) = call(
        &server,
        "DescribeAssociationExecutions",
        json!({ "AssociationId": A, "MaxResults": 50 }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        executions,
        json!({ "AssociationExecutions": [
            { "AssociationId": A, "AssociationVersion": "1", "ExecutionId": E2, "Status": "InProgress",
              "DetailedStatus": "InProgress", "CreatedTime": 1_700_000_600.25, "ResourceCountByStatus": "{InProgress=1}" },
            { "AssociationId": A, "AssociationVersion": "1", "ExecutionId": E1, "Status": "Failed",
              "DetailedStatus": "Failed", "CreatedTime": 1_700_000_000.5, "ResourceCountByStatus": "{Failed=60, Success=60}" },
        ]}),
        "newest first, times as numbers"
    );
    let (_, filtered, _) = call(
        &server,
        "DescribeAssociationExecutions",
        json!({ "AssociationId": A, "Filters": [{ "Key": "CreatedTime", "Value": "2023-11-14T22:15:00Z", "Type": "LESS_THAN" }] }),
    )
    .await;
    assert_eq!(
        filtered["AssociationExecutions"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        filtered["AssociationExecutions"][0]["ExecutionId"],
        json!(E1)
    );

    let (_, target, _) = call(
        &server,
        "DescribeAssociationExecutionTargets",
        json!({ "AssociationId": A, "ExecutionId": E2 }),
    )
    .await;
    let t = &target["AssociationExecutionTargets"][0];
    assert_eq!(t["ResourceId"], json!("i-05555555555a00001"));
    assert_eq!(t["ResourceType"], json!("ManagedInstance"));
    assert_eq!(t["OutputSource"]["OutputSourceType"], json!("RunCommand"));
    assert_eq!(
        t["OutputSource"]["OutputSourceId"].as_str().map(str::len),
        Some(36)
    );
    assert_eq!(target.get("NextToken"), None);

    let (_, listed, _) = call(
        &server,
        "ListAssociations",
        json!({ "AssociationFilterList": [{ "key": "Name", "value": "AWS-RunPatchBaseline" }] }),
    )
    .await;
    let associations = listed["Associations"].as_array().expect("array");
    assert_eq!(associations.len(), 1);
    assert_eq!(associations[0]["AssociationName"], json!("patch"));
    assert_eq!(
        associations[0]["LastExecutionDate"],
        json!(1_700_000_600.25)
    );
    assert_eq!(
        associations[0]["Overview"],
        json!({ "Status": "Pending", "DetailedStatus": "InProgress", "AssociationStatusAggregatedCount": { "InProgress": 1 } })
    );

    let (_, described, _) = call(
        &server,
        "DescribeAssociation",
        json!({ "AssociationId": B }),
    )
    .await;
    assert_eq!(
        described["AssociationDescription"]["AssociationId"],
        json!(B)
    );
    assert_eq!(
        described["AssociationDescription"].get("AssociationName"),
        None
    );
    assert_eq!(
        described["AssociationDescription"]["Status"]["Name"],
        json!("Pending")
    );
    server.stop().await;
}

#[tokio::test]
async fn faults_answer_as_ssm_does() {
    let (sim, server) = fixture().await;
    sim.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    });
    let (status, body, _) = call(&server, "ListAssociations", json!({})).await;
    assert_eq!(
        (status, body),
        (400, error("ThrottlingException", "Rate exceeded"))
    );
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let (status, body, _) = call(&server, "ListAssociations", json!({})).await;
    assert_eq!(
        (status, body),
        (
            500,
            error(
                "InternalServerError",
                "An error occurred on the server side."
            )
        )
    );
    sim.set_faults(Faults {
        empty_pages: true,
        ..Faults::default()
    });
    let (status, body, _) = call(&server, "ListAssociations", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["Associations"], json!([]));
    let (_, body, _) = call(
        &server,
        "ListAssociations",
        json!({ "NextToken": body["NextToken"] }),
    )
    .await;
    assert_eq!(body["Associations"].as_array().map(Vec::len), Some(2));
    assert_eq!(body.get("NextToken"), None);
    server.stop().await;
}
