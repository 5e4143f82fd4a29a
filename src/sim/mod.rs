//! A simulated SSM endpoint: the four association operations over the real awsJson1.1 wire
//! protocol, on loopback, with state that tests script and faults they switch on. The demo,
//! the tests and the benchmarks all talk to it through the real `aws-sdk-ssm` client. Its SQS
//! side (`sqs`) shares the endpoint: queues that tests create, and State Manager's events,
//! which the simulated SSM puts into the queues subscribed to its account and region.

pub mod fleet;
mod protocol;
mod router;
mod sqs;
mod sts;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The simulator's state; clones share it.
#[derive(Debug, Clone)]
pub struct Sim {
    state: Arc<Mutex<State>>,
    /// Woken whenever a message is put in any queue, for long polls waiting outside the lock.
    queue_changed: Arc<Notify>,
}

/// The account the simulated SSM is in when no caller is expected (the user guide's example).
pub const DEFAULT_ACCOUNT: &str = "123456789012";
/// The region the simulated SSM is in when no caller is expected.
pub const DEFAULT_REGION: &str = "us-east-2";

/// One target of an execution, as the simulator stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTarget {
    pub resource_id: String,
    pub resource_type: String,
    pub status: String,
    pub detailed_status: String,
    pub last_execution_date: Option<f64>,
}

impl SimTarget {
    /// A managed instance whose detailed status equals its status.
    pub fn instance(resource_id: impl Into<String>, status: &str) -> Self {
        SimTarget {
            resource_id: resource_id.into(),
            resource_type: "ManagedInstance".to_owned(),
            status: status.to_owned(),
            detailed_status: status.to_owned(),
            last_execution_date: None,
        }
    }

    pub fn detailed(mut self, detailed_status: &str) -> Self {
        self.detailed_status = detailed_status.to_owned();
        self
    }

    pub fn resource_type(mut self, resource_type: &str) -> Self {
        self.resource_type = resource_type.to_owned();
        self
    }
}

/// An association's schedule, as SSM reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSchedule {
    /// `ScheduleExpression`; `None` for an association that runs only when created or updated.
    pub expression: Option<String>,
    /// `ScheduleOffset`, in days.
    pub offset_days: Option<u8>,
    /// `Duration`, in hours.
    pub duration_hours: Option<u8>,
    /// `ApplyOnlyAtCronInterval`.
    pub apply_only_at_cron_interval: bool,
}

impl SimSchedule {
    /// A schedule with no offset, no duration, whose first run is at creation.
    pub fn every(expression: &str) -> Self {
        SimSchedule {
            expression: Some(expression.to_owned()),
            offset_days: None,
            duration_hours: None,
            apply_only_at_cron_interval: false,
        }
    }
}

impl Default for SimSchedule {
    /// What every simulated association runs on unless a test says otherwise.
    fn default() -> Self {
        SimSchedule::every("rate(30 minutes)")
    }
}

/// Random faults applied to every request, each drawn independently.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Share of requests answered `400 ThrottlingException`, 0.0 to 1.0.
    pub throttle_rate: f64,
    /// Share of requests answered `500 InternalServerError`.
    pub error_rate: f64,
    /// Added before every answer.
    pub latency: Duration,
    /// Put an empty page carrying a NextToken before every page of items, as SSM sometimes does.
    pub empty_pages: bool,
    /// End every listing with `"NextToken": ""`, as ListAssociations is documented to.
    pub blank_final_token: bool,
    /// Calls a second the simulated account allows, with a burst of one second's worth;
    /// beyond it, `ThrottlingException`. `None`: no limit.
    pub rate_limit: Option<f64>,
    /// Share of requests whose connection is closed without an answer.
    pub reset_rate: f64,
    /// Share of requests answered 200 with a body that is not JSON.
    pub garbage_rate: f64,
    /// The next this-many requests that carry a NextToken get `InvalidNextToken`.
    pub expire_tokens: u32,
    /// The next this-many ListAssociations get `400 ExpiredTokenException`: a refusal that
    /// passes, as an expired session's does.
    pub refuse_listings: u32,
    /// List DescribeAssociationExecutions oldest first: nothing documents the newest-first
    /// order SSM has always used.
    pub executions_oldest_first: bool,
}

/// An error every call naming one association gets, whatever the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ThrottlingException`.
    Throttle,
    /// 500 `InternalServerError`.
    InternalError,
    /// 503 with a body that is not JSON.
    Unavailable,
    /// 400 `AccessDeniedException`.
    AccessDenied,
    /// The connection closes without an answer.
    Reset,
    /// 200 with a body that is not JSON.
    Garbage,
    /// No answer for an hour: the client's timeout ends the call.
    Hang,
}

/// A request as the simulator saw it, for tests that count calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub operation: String,
    pub association_id: Option<String>,
    /// The `QueueUrl` of an SQS request.
    pub queue_url: Option<String>,
    /// From the SDK's `amz-sdk-request: attempt=N; max=M` header.
    pub attempt: Option<u32>,
    pub max_results: Option<i64>,
    /// The HTTP status answered; 0 for a connection closed without an answer.
    pub status: u16,
}

#[derive(Debug)]
struct State {
    associations: BTreeMap<String, Association>,
    faults: Faults,
    failing: HashMap<String, Fault>,
    requests: Vec<Recorded>,
    rng: u64,
    /// Request IDs and generated IDs both come from here, so runs are reproducible.
    serial: u64,
    /// The rate limit's bucket: tokens left, and when it was last filled.
    bucket: (f64, std::time::Instant),
    /// Executions (association, execution) that expire the moment their targets are asked for.
    expire_on_read: Vec<(String, String)>,
    /// Roles that STS `AssumeRole` grants, by ARN.
    roles: BTreeMap<String, sts::RoleRule>,
    /// The account and region SSM requests must be signed for, when set; also where the
    /// simulated SSM's events come from.
    caller: Option<(String, String)>,
    queues: sqs::Queues,
    /// The URL of the running endpoint, for queue URLs.
    endpoint: Option<String>,
}

#[derive(Debug, Clone)]
struct Association {
    id: String,
    name: Option<String>,
    document_name: String,
    document_version: String,
    version: u32,
    created: f64,
    schedule: SimSchedule,
    executions: Vec<Execution>,
    /// The `LastExecutionDate` and `Overview` its records go on reporting whatever runs,
    /// once [`Sim::freeze_records`] froze them.
    frozen: Option<(Option<f64>, serde_json::Value)>,
}

#[derive(Debug, Clone)]
struct Execution {
    id: String,
    association_version: u32,
    created: f64,
    /// Set by a test to override the status derived from the targets.
    status: Option<(String, String)>,
    /// Sorted by resource ID, the order listings use.
    targets: Vec<SimTarget>,
}

impl Execution {
    /// Status and detailed status: the override, or derived from the targets as SSM appears
    /// to (ssm-api.md §6.5).
    fn status(&self) -> (String, String) {
        if let Some(s) = &self.status {
            return s.clone();
        }
        let any = |wanted: &[&str]| {
            self.targets
                .iter()
                .any(|t| wanted.contains(&t.status.as_str()))
        };
        let s = if any(&["Pending", "InProgress"]) {
            "InProgress"
        } else if any(&["Failed", "TimedOut"]) {
            "Failed"
        } else {
            "Success"
        };
        (s.to_owned(), s.to_owned())
    }

    /// Targets by status.
    fn counts_by_status(&self) -> BTreeMap<&str, u32> {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for t in &self.targets {
            *counts.entry(t.status.as_str()).or_insert(0) += 1;
        }
        counts
    }

    /// Java `Map.toString()` form, keys sorted: `{Failed=1, Success=2}`.
    fn resource_count_by_status(&self) -> String {
        let counts = self.counts_by_status();
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{{{}}}", parts.join(", "))
    }
}

impl Association {
    /// The overview's Status is one of Pending, Success, Failed; DetailedStatus says more.
    fn overview_status(&self) -> (&'static str, String) {
        match self.latest().map(Execution::status) {
            None => ("Pending", "Associated".to_owned()),
            Some((s, d)) => match s.as_str() {
                "Success" => ("Success", d),
                "Failed" | "TimedOut" => ("Failed", d),
                _ => ("Pending", d),
            },
        }
    }

    /// The `Overview` of its ListAssociations and DescribeAssociation records.
    fn overview(&self) -> serde_json::Value {
        let (status, detailed) = self.overview_status();
        let counts: serde_json::Map<String, serde_json::Value> = self
            .latest()
            .map(|e| {
                e.counts_by_status()
                    .into_iter()
                    .map(|(status, n)| (status.to_owned(), serde_json::json!(n)))
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({ "Status": status, "DetailedStatus": detailed, "AssociationStatusAggregatedCount": counts })
    }

    fn latest(&self) -> Option<&Execution> {
        self.executions
            .iter()
            .max_by(|a, b| a.created.total_cmp(&b.created))
    }

    /// The newest execution whose status is Success.
    fn latest_success(&self) -> Option<&Execution> {
        self.executions
            .iter()
            .filter(|e| e.status().0 == "Success")
            .max_by(|a, b| a.created.total_cmp(&b.created))
    }

    fn prune(&mut self, keep: usize) {
        self.executions
            .sort_by(|a, b| b.created.total_cmp(&a.created));
        self.executions.truncate(keep);
    }

    fn execution(&self, id: &str) -> Option<&Execution> {
        self.executions
            .iter()
            .find(|e| e.id.eq_ignore_ascii_case(id))
    }

    fn execution_mut(&mut self, id: &str) -> Option<&mut Execution> {
        self.executions
            .iter_mut()
            .find(|e| e.id.eq_ignore_ascii_case(id))
    }
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new(1)
    }
}

impl Sim {
    /// An empty simulator; `seed` makes its generated IDs and random faults reproducible.
    pub fn new(seed: u64) -> Self {
        Sim {
            state: Arc::new(Mutex::new(State {
                associations: BTreeMap::new(),
                faults: Faults::default(),
                failing: HashMap::new(),
                requests: Vec::new(),
                rng: seed.max(1),
                serial: 0,
                bucket: (0.0, std::time::Instant::now()),
                expire_on_read: Vec::new(),
                roles: BTreeMap::new(),
                caller: None,
                queues: sqs::Queues::default(),
                endpoint: None,
            })),
            queue_changed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still consistent enough
        // for a simulator: keep going rather than poison every later request.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets STS `AssumeRole` grant `role_arn` (`arn:aws:iam::<account>:role/<name>`), to a
    /// caller that sends `external_id` if one is given. Roles not added are denied.
    pub fn add_role(&self, role_arn: &str, external_id: Option<&str>) {
        self.lock().roles.insert(
            role_arn.to_owned(),
            sts::RoleRule {
                external_id: external_id.map(str::to_owned),
            },
        );
    }

    /// Answers SSM requests only when signed with credentials that STS issued for a role of
    /// `account_id`, scoped to `region`; others get `UnrecognizedClientException` or
    /// `InvalidSignatureException`, as AWS answers a key of another account or region.
    pub fn expect_caller(&self, account_id: &str, region: &str) {
        self.lock().caller = Some((account_id.to_owned(), region.to_owned()));
    }

    /// Adds an association with a generated ID and returns the ID.
    pub fn create_association(&self, name: Option<&str>, document_name: &str) -> String {
        let mut state = self.lock();
        let id = state.new_id();
        state.insert_association(&id, name, document_name);
        id
    }

    /// Adds an association with a given ID (kept in lower case).
    pub fn insert_association(&self, id: &str, name: Option<&str>, document_name: &str) {
        self.lock().insert_association(id, name, document_name);
    }

    /// Starts a new execution with `targets`, newer than every other of the association;
    /// returns its generated ID, or `None` if the association does not exist.
    pub fn start_execution(&self, association_id: &str, targets: Vec<SimTarget>) -> Option<String> {
        let mut state = self.lock();
        let id = state.new_id();
        let created = state
            .association(association_id)?
            .latest()
            .map_or(now(), |e| (e.created + 1.0).max(now()));
        state.insert_execution(association_id, &id, created, targets)?;
        self.queue_changed.notify_waiters();
        Some(id)
    }

    /// Adds an execution with a given ID and creation time (seconds since the epoch).
    /// Returns `None` if the association does not exist.
    pub fn insert_execution(
        &self,
        association_id: &str,
        execution_id: &str,
        created: f64,
        targets: Vec<SimTarget>,
    ) -> Option<()> {
        let inserted = self
            .lock()
            .insert_execution(association_id, execution_id, created, targets);
        self.queue_changed.notify_waiters();
        inserted
    }

    /// Sets a target's status and detailed status; adds the target (a managed instance) if
    /// the execution does not have it yet. Returns `None` if the execution does not exist.
    pub fn set_target(
        &self,
        association_id: &str,
        execution_id: &str,
        resource_id: &str,
        status: &str,
        detailed_status: &str,
    ) -> Option<()> {
        let mut state = self.lock();
        let execution = state
            .association_mut(association_id)?
            .execution_mut(execution_id)?;
        let run_before = execution.status();
        let position = execution
            .targets
            .binary_search_by(|t| t.resource_id.as_str().cmp(resource_id));
        let before = position.ok().map(|i| {
            (
                execution.targets[i].status.clone(),
                execution.targets[i].detailed_status.clone(),
            )
        });
        let target = match position {
            Ok(i) => &mut execution.targets[i],
            Err(i) => {
                execution
                    .targets
                    .insert(i, SimTarget::instance(resource_id, status));
                &mut execution.targets[i]
            }
        };
        target.status = status.to_owned();
        target.detailed_status = detailed_status.to_owned();
        target.last_execution_date = Some(now());
        let target_changed = before != Some((status.to_owned(), detailed_status.to_owned()));
        let run_changed = execution.status() != run_before;
        if target_changed {
            state.target_changed(association_id, execution_id, resource_id);
        }
        if run_changed {
            state.association_changed(association_id);
        }
        drop(state);
        self.queue_changed.notify_waiters();
        Some(())
    }

    /// Overrides the execution's overall status; `None` if it does not exist.
    pub fn set_execution_status(
        &self,
        association_id: &str,
        execution_id: &str,
        status: &str,
        detailed_status: &str,
    ) -> Option<()> {
        let mut state = self.lock();
        let execution = state
            .association_mut(association_id)?
            .execution_mut(execution_id)?;
        let before = execution.status();
        execution.status = Some((status.to_owned(), detailed_status.to_owned()));
        if execution.status() != before {
            state.association_changed(association_id);
        }
        drop(state);
        self.queue_changed.notify_waiters();
        Some(())
    }

    /// Replaces an association's schedule, as UpdateAssociation would (its version moves on);
    /// `None` if it does not exist.
    pub fn set_schedule(&self, association_id: &str, schedule: SimSchedule) -> Option<()> {
        let mut state = self.lock();
        let association = state.association_mut(association_id)?;
        association.schedule = schedule;
        association.version += 1;
        Some(())
    }

    /// Sets when an association was created (seconds since the epoch); `None` if it does not
    /// exist.
    pub fn set_created(&self, association_id: &str, created: f64) -> Option<()> {
        self.lock().association_mut(association_id)?.created = created;
        Some(())
    }

    /// Removes an association and its history; false if there was none.
    pub fn delete_association(&self, association_id: &str) -> bool {
        self.lock()
            .associations
            .remove(&association_id.to_ascii_lowercase())
            .is_some()
    }

    /// Removes one execution, as SSM's retention would; false if there was none.
    pub fn delete_execution(&self, association_id: &str, execution_id: &str) -> bool {
        let mut state = self.lock();
        let Some(association) = state.association_mut(association_id) else {
            return false;
        };
        let before = association.executions.len();
        association
            .executions
            .retain(|e| !e.id.eq_ignore_ascii_case(execution_id));
        association.executions.len() != before
    }

    /// IDs of every association, sorted.
    pub fn association_ids(&self) -> Vec<String> {
        self.lock().associations.keys().cloned().collect()
    }

    /// ID of the newest execution of an association.
    pub fn latest_execution(&self, association_id: &str) -> Option<String> {
        let state = self.lock();
        Some(state.association(association_id)?.latest()?.id.clone())
    }

    /// Targets of an execution, sorted by resource ID.
    pub fn targets(&self, association_id: &str, execution_id: &str) -> Option<Vec<SimTarget>> {
        let state = self.lock();
        let execution = state.association(association_id)?.execution(execution_id)?;
        Some(execution.targets.clone())
    }

    /// Replaces the fault settings; a rate limit starts with a full bucket.
    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.lock();
        state.bucket = (faults.rate_limit.unwrap_or(0.0), std::time::Instant::now());
        state.faults = faults;
    }

    /// Makes an execution expire (as retention would) when its targets are next asked for:
    /// the race between listing executions and reading one.
    pub fn expire_on_read(&self, association_id: &str, execution_id: &str) {
        self.lock().expire_on_read.push((
            association_id.to_ascii_lowercase(),
            execution_id.to_ascii_lowercase(),
        ));
    }

    /// Makes the association's ListAssociations and DescribeAssociation records go on
    /// reporting today's `LastExecutionDate` and `Overview`, whatever runs after: the one
    /// behaviour of SSM the exporter assumes does not happen, played to show what bounds it.
    pub fn freeze_records(&self, association_id: &str) -> Option<()> {
        let mut state = self.lock();
        let a = state.association_mut(association_id)?;
        a.frozen = Some((a.latest().map(|e| e.created), a.overview()));
        Some(())
    }

    /// Makes every call that names `association_id` fail with `fault`, or heals it with `None`.
    pub fn fail_association(&self, association_id: &str, fault: Option<Fault>) {
        let mut state = self.lock();
        let id = association_id.to_ascii_lowercase();
        match fault {
            Some(f) => state.failing.insert(id, f),
            None => state.failing.remove(&id),
        };
    }

    /// Creates an SQS queue (nothing if it exists) and returns its URL,
    /// `{endpoint}/{account}/{name}`. Queues are told apart by the URL's path, so a URL made
    /// before [`Sim::start`] (host `localhost`) names the same queue.
    pub fn create_queue(&self, account: &str, name: &str) -> String {
        let mut state = self.lock();
        let path = format!("/{account}/{name}");
        state.queues.create(path.clone());
        let endpoint = state.endpoint.as_deref().unwrap_or("http://localhost");
        format!("{endpoint}{path}")
    }

    /// Sets how long a received message stays hidden before it can be received again
    /// (SQS's default: 30 s). `None` if there is no such queue.
    pub fn set_visibility_timeout(&self, queue_url: &str, timeout: Duration) -> Option<()> {
        self.lock()
            .queues
            .set_visibility(sqs::queue_path(queue_url), timeout)
    }

    /// Delivers the simulated SSM's State Manager events for `account` and `region` to the
    /// queue, as an EventBridge rule would; they are emitted while the SSM side is in that
    /// place (the expected caller's, else [`DEFAULT_ACCOUNT`] and [`DEFAULT_REGION`]).
    /// `None` if there is no such queue.
    pub fn subscribe(&self, queue_url: &str, account: &str, region: &str) -> Option<()> {
        self.lock()
            .queues
            .subscribe(sqs::queue_path(queue_url), account, region)
    }

    /// Puts a message with this body in the queue, whatever it holds; returns its ID, or
    /// `None` if there is no such queue.
    pub fn send_raw(&self, queue_url: &str, body: &str) -> Option<String> {
        let id = self.lock().message_id();
        self.send_raw_as(queue_url, &id, body)?;
        Some(id)
    }

    /// Puts a message with this body and this `MessageId` in the queue, even one that another
    /// message has: a queue that misbehaves so; `None` if there is no such queue.
    pub fn send_raw_as(&self, queue_url: &str, message_id: &str, body: &str) -> Option<()> {
        self.lock().queues.push(
            sqs::queue_path(queue_url),
            message_id.to_owned(),
            body.to_owned(),
        )?;
        self.queue_changed.notify_waiters();
        Some(())
    }

    /// Messages in the queue that are not deleted, hidden ones included; `None` if there is
    /// no such queue.
    pub fn queue_depth(&self, queue_url: &str) -> Option<usize> {
        self.lock().queues.depth(sqs::queue_path(queue_url))
    }

    /// Makes every SQS call on the queue fail with `fault`, or heals it with `None`.
    /// `Throttle` answers `RequestThrottled`, `AccessDenied` a 403 `AccessDenied`.
    pub fn fail_queue(&self, queue_url: &str, fault: Option<Fault>) {
        self.lock().queues.fail(sqs::queue_path(queue_url), fault);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Binds `127.0.0.1:0` and serves the protocol there until the returned server is stopped.
    ///
    /// # Errors
    ///
    /// The bind error.
    pub async fn start(&self) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        self.lock().endpoint = Some(format!("http://{addr}"));
        let (stop, mut stopped) = watch::channel(false);
        let handler = router::handler(self.clone());
        let task = tokio::spawn(crate::http::serve(
            listener,
            handler,
            crate::http::ServeOptions {
                tls: None,
                // Keep-alive connections stay usable as long as an AWS endpoint's do: the
                // exporter's short idle limit would race the SDK's reuse of its pooled
                // connections at the demo's 5 s poll interval.
                limits: crate::http::Limits {
                    header_read_timeout: std::time::Duration::from_secs(60),
                    ..crate::http::Limits::default()
                },
            },
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
        Ok(SimServer { addr, stop, task })
    }
}

/// A running simulated endpoint.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SimServer {
    /// The URL to give the SDK as its SSM endpoint.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

impl State {
    fn association(&self, id: &str) -> Option<&Association> {
        self.associations.get(&id.to_ascii_lowercase())
    }

    fn association_mut(&mut self, id: &str) -> Option<&mut Association> {
        self.associations.get_mut(&id.to_ascii_lowercase())
    }

    fn insert_association(&mut self, id: &str, name: Option<&str>, document_name: &str) {
        let id = id.to_ascii_lowercase();
        self.associations.insert(
            id.clone(),
            Association {
                id,
                name: name.map(str::to_owned),
                document_name: document_name.to_owned(),
                document_version: "$DEFAULT".to_owned(),
                version: 1,
                created: now(),
                schedule: SimSchedule::default(),
                executions: Vec::new(),
                frozen: None,
            },
        );
    }

    fn insert_execution(
        &mut self,
        association_id: &str,
        execution_id: &str,
        created: f64,
        mut targets: Vec<SimTarget>,
    ) -> Option<()> {
        let association = self.association_mut(association_id)?;
        targets.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
        let version = association.version;
        let resources: Vec<String> = targets.iter().map(|t| t.resource_id.clone()).collect();
        association.executions.push(Execution {
            id: execution_id.to_ascii_lowercase(),
            association_version: version,
            created,
            status: None,
            targets,
        });
        // A run starts: its association's state, then each target's first status.
        self.association_changed(association_id);
        for resource_id in resources {
            self.target_changed(association_id, execution_id, &resource_id);
        }
        Some(())
    }

    /// Takes one call from the rate limit's bucket; false when the call is over the limit.
    fn within_rate(&mut self) -> bool {
        let Some(rate) = self.faults.rate_limit else {
            return true;
        };
        let now = std::time::Instant::now();
        let (tokens, since) = self.bucket;
        let tokens = (tokens + now.duration_since(since).as_secs_f64() * rate).min(rate.max(1.0));
        if tokens >= 1.0 {
            self.bucket = (tokens - 1.0, now);
            true
        } else {
            self.bucket = (tokens, now);
            false
        }
    }

    /// A uniformly distributed number in `[0, 1)` (xorshift64*).
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fresh UUID-shaped ID, distinct from every other this simulator made.
    fn new_id(&mut self) -> String {
        self.serial += 1;
        // 53 random bits, moved up to fill the high word that `uuid` formats from the top.
        let random = ((self.random() * (1u64 << 53) as f64) as u64) << 11;
        uuid(random, self.serial)
    }
}

/// A version-4-shaped UUID: the high bits of `high` and all 60 low bits of `low`, so IDs made
/// from distinct `low` values never collide.
fn uuid(high: u64, low: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        (low >> 48) & 0xfff,
        low & 0xffff_ffff_ffff
    )
}

/// Now, in seconds since the epoch, to the millisecond as SSM reports times.
fn now() -> f64 {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    ms as f64 / 1000.0
}
