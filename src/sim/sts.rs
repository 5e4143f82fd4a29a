//! The STS side of the simulator: `AssumeRole` over the awsQuery protocol (a form-encoded POST
//! answered in XML), enough for the SDK's `AssumeRoleProvider`. The credentials it hands out
//! name the role's account in their key ID, so that a simulated SSM endpoint set to expect an
//! account can tell whether a request was signed with that account's role.

use std::collections::BTreeMap;

use hyper::StatusCode;
use percent_encoding::percent_decode_str;

use super::{Recorded, State};

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// What a role asks of whoever assumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoleRule {
    pub external_id: Option<String>,
}

/// The key ID of credentials issued for `account_id`: `ASIA`, the account, 4 hex digits.
pub(super) fn access_key_id(account_id: &str, serial: u64) -> String {
    format!("{}{:04X}", access_key_prefix(account_id), serial & 0xffff)
}

/// What every key ID issued for `account_id` starts with.
pub(super) fn access_key_prefix(account_id: &str) -> String {
    format!("ASIA{account_id}")
}

/// Answers one awsQuery request: status and XML body.
pub(super) fn answer(state: &mut State, body: &[u8]) -> (StatusCode, String) {
    let form = parse_form(body);
    state.requests.push(Recorded {
        operation: form.get("Action").cloned().unwrap_or_default(),
        association_id: None,
        queue_url: None,
        attempt: None,
        max_results: None,
        status: 0,
    });
    let (status, xml) = assume_role(state, &form);
    if let Some(last) = state.requests.last_mut() {
        last.status = status.as_u16();
    }
    (status, xml)
}

fn assume_role(state: &mut State, form: &BTreeMap<String, String>) -> (StatusCode, String) {
    let request_id = format!("00000000-0000-4000-9000-{:012x}", state.serial);
    let error = |status: StatusCode, code: &str, message: &str| {
        let xml = format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            escape(message)
        );
        (status, xml)
    };
    if form.get("Action").map(String::as_str) != Some("AssumeRole") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "Could not find operation for this simulator",
        );
    }
    let (Some(arn), Some(session)) = (form.get("RoleArn"), form.get("RoleSessionName")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "RoleArn and RoleSessionName are required",
        );
    };
    // An unknown role and a wrong external ID get the same denial.
    let allowed = state.roles.get(arn).is_some_and(|rule| {
        rule.external_id.is_none() || rule.external_id.as_ref() == form.get("ExternalId")
    });
    if !allowed {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!("User is not authorized to perform: sts:AssumeRole on resource: {arn}"),
        );
    }
    // The fifth field of an ARN; a test that adds a malformed ARN gets keys of no account.
    let account = arn.split(':').nth(4).unwrap_or_default().to_owned();
    let role_name = arn.rsplit('/').next().unwrap_or_default();
    state.serial += 1;
    let key = access_key_id(&account, state.serial);
    let expiration = crate::timestamp::format_time((super::now() + 3600.0).floor());
    let xml = format!(
        "<AssumeRoleResponse xmlns=\"{NAMESPACE}\"><AssumeRoleResult>\
<AssumedRoleUser><AssumedRoleId>AROA{account}:{session}</AssumedRoleId>\
<Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn></AssumedRoleUser>\
<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>sim-secret-{serial}</SecretAccessKey>\
<SessionToken>sim-session-{serial}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
</AssumeRoleResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></AssumeRoleResponse>",
        session = escape(session),
        role_name = escape(role_name),
        serial = state.serial,
    );
    (StatusCode::OK, xml)
}

/// `application/x-www-form-urlencoded` → pairs; `+` is a space, `%XX` a byte.
fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    // `+` first: an encoded plus (`%2B`) holds none, so it stays a plus.
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(crate::timestamp::format_time(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(
            crate::timestamp::format_time(1_700_000_000.0),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            crate::timestamp::format_time(1_709_208_000.0),
            "2024-02-29T12:00:00Z"
        );
    }

    #[test]
    fn forms() {
        let form =
            parse_form(b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa+b&X=%zz");
        assert_eq!(form["Action"], "AssumeRole");
        assert_eq!(form["RoleArn"], "arn:aws:iam::1:role/a b");
        assert_eq!(form["X"], "%zz");
        let form = parse_form(b"A=1%2B1+%3D+2&B=%E2%9C%93%FF%4");
        assert_eq!(form["A"], "1+1 = 2");
        assert_eq!(form["B"], "\u{2713}\u{fffd}%4");
    }
}
