//! Basic auth: bcrypt checks of `Authorization: Basic` credentials, bounded so that wrong
//! ones cannot starve scrapes of a core: a cache of logins that verified, one check at a time
//! per peer, and one turn that all failing peers share.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use hyper::header::HeaderValue;
use tokio::sync::Semaphore;

use crate::logging::{LogBudget, shown};

/// The target of the failed-login lines: the module's path before it became a folder, so
/// that log filters naming it keep working.
const LOG_TARGET: &str = concat!(env!("CARGO_CRATE_NAME"), "::web");

/// The highest bcrypt cost accepted: each step doubles the time of a check, and at 14 one
/// check takes about a second of a core already.
pub const MAX_BCRYPT_COST: u32 = 14;

/// The prefixes of the bcrypt variants that agree with each other; `$2x$` marks hashes of a
/// buggy implementation and is refused, as exporter-toolkit does.
const BCRYPT_PREFIXES: [&str; 3] = ["$2a$", "$2b$", "$2y$"];

/// Checks a bcrypt hash and returns its cost.
pub(super) fn bcrypt_hash(hash: &str) -> Result<u32, String> {
    let not_bcrypt = |why: String| format!("is not a bcrypt hash ($2a$, $2b$ or $2y$): {why}");
    let parts = hash
        .parse::<bcrypt::HashParts>()
        .map_err(|e| not_bcrypt(e.to_string()))?;
    if !BCRYPT_PREFIXES.iter().any(|p| hash.starts_with(p)) {
        return Err(not_bcrypt(format!("the prefix is {}", &hash[..4])));
    }
    match parts.get_cost() {
        cost if cost > MAX_BCRYPT_COST => Err(format!(
            "bcrypt cost {cost} is above the maximum of {MAX_BCRYPT_COST}"
        )),
        cost if cost < 4 => Err(format!("bcrypt cost {cost} is below bcrypt's minimum of 4")),
        cost => Ok(cost),
    }
}

/// Users and their bcrypt hashes; checks `Authorization: Basic` headers.
#[derive(Debug)]
pub struct BasicAuth {
    pub(super) users: BTreeMap<String, String>,
    /// Credentials that verified once: bcrypt costs tens of milliseconds a check, by design,
    /// and a scraper sends the same ones every few seconds.
    verified: Mutex<HashSet<(String, String)>>,
    /// The hash checked for unknown users, so that their answer takes as long as a wrong
    /// password's and does not tell which users exist: the configured hash of the highest
    /// cost, since a check costs what the hash's cost says whatever the password.
    decoy: String,
    /// bcrypt checks running at once, a core fewer than the process may use: wrong
    /// credentials must leave a core to scrapes. A permit is held until its check ends, even
    /// when the client has gone.
    checks: Arc<Semaphore>,
    /// Peers (an IPv6 peer by its /64) with a check waiting or running: one each, so that a
    /// flood from one peer queues at most one check in front of anyone else's first login.
    pending: Arc<Mutex<HashSet<IpAddr>>>,
    /// Peers whose last check failed, with when, for [`FAILING_FOR`]: at most
    /// [`MAX_FAILING`], so that the record cannot grow without bound.
    failing: Mutex<HashMap<IpAddr, Instant>>,
    /// The one check at a time, waiting or running, that all failing peers share. A flood
    /// from many addresses would otherwise queue a check per address in front of a valid
    /// first login; this way each address queues one, its first, and then at most one of
    /// them all waits in front of a peer that has not failed.
    failing_turn: Arc<Semaphore>,
    failures: Mutex<LogBudget>,
}

/// The answer to a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Missing or wrong credentials.
    Denied,
    /// A check for the same peer is under way, or the peer failed lately and another failing
    /// peer's check is; answered without a check.
    Busy,
}

/// Remembered successes at most, so that the cache cannot grow without bound.
const MAX_VERIFIED: usize = 1024;

/// How long a peer whose check failed counts as failing, unless a check of its succeeds.
const FAILING_FOR: Duration = Duration::from_secs(600);
/// Failing peers remembered at most (some 40 bytes each); past it, a new one is not recorded
/// and keeps the place of a peer that has not failed.
const MAX_FAILING: usize = 16_384;

/// Failed logins logged per [`FAILURE_LOG_WINDOW`]; the rest are counted, and the count is
/// logged with the next failure after the window.
const FAILURE_LOG_BURST: u32 = 5;
const FAILURE_LOG_WINDOW: Duration = Duration::from_secs(10);
/// Characters of a user name that a log line shows.
const LOGGED_USER_CHARS: usize = 64;

/// One bcrypt check per core but one (`available_parallelism` follows the CPU quota of the
/// cgroup, so a 500m limit gives 1), and at least one.
pub(super) fn max_checks() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl BasicAuth {
    pub(super) fn new(users: BTreeMap<String, String>, max_checks: usize) -> BasicAuth {
        let cost = |hash: &String| {
            hash.parse::<bcrypt::HashParts>()
                .map_or(0, |p| p.get_cost())
        };
        let decoy = users
            .values()
            .max_by_key(|h| cost(h))
            .cloned()
            .unwrap_or_default();
        BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
            decoy,
            checks: Arc::new(Semaphore::new(max_checks)),
            pending: Arc::new(Mutex::new(HashSet::new())),
            failing: Mutex::new(HashMap::new()),
            failing_turn: Arc::new(Semaphore::new(1)),
            failures: Mutex::new(LogBudget::new(FAILURE_LOG_BURST, FAILURE_LOG_WINDOW)),
        }
    }

    /// Whether the `Authorization` header of a request from `peer` carries the credentials
    /// of a configured user. Remembered credentials are allowed at once; others wait for one
    /// of the bounded bcrypt checks, unless `peer` has one waiting or running already, or
    /// failed lately while another failing peer's check waits or runs.
    pub async fn allows(
        self: &Arc<Self>,
        peer: Option<SocketAddr>,
        header: Option<&HeaderValue>,
    ) -> Verdict {
        let Some((user, password)) = header.and_then(credentials) else {
            return Verdict::Denied;
        };
        let key = (user, password);
        if self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key)
        {
            return Verdict::Allowed;
        }
        let slot = match peer {
            Some(peer) => match PendingCheck::claim(&self.pending, peer.ip()) {
                Some(slot) => Some(slot),
                None => return Verdict::Busy,
            },
            None => None,
        };
        let failing_turn = if peer.is_some_and(|p| self.has_failed(p.ip())) {
            match Arc::clone(&self.failing_turn).try_acquire_owned() {
                Ok(turn) => Some(turn),
                Err(_) => return Verdict::Busy,
            }
        } else {
            None
        };
        let Ok(turn) = Arc::clone(&self.checks).acquire_owned().await else {
            return Verdict::Denied;
        };
        let this = Arc::clone(self);
        let checked = tokio::task::spawn_blocking(move || {
            // All end with the check, not with the request, which may be dropped meanwhile.
            let _turn = turn;
            let _slot = slot;
            let _failing_turn = failing_turn;
            let ok = match this.users.get(&key.0) {
                Some(hash) => bcrypt::verify(&key.1, hash).unwrap_or(false),
                None => {
                    let _ = bcrypt::verify(&key.1, &this.decoy);
                    false
                }
            };
            if let Some(peer) = peer {
                this.record_check(peer.ip(), ok);
            }
            if ok {
                let mut verified = this.verified.lock().unwrap_or_else(PoisonError::into_inner);
                if verified.len() < MAX_VERIFIED {
                    verified.insert(key);
                }
            } else {
                this.log_failure(&key.0, peer);
            }
            ok
        })
        .await;
        if checked.unwrap_or(false) {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    /// Whether the peer's last check failed within [`FAILING_FOR`].
    fn has_failed(&self, ip: IpAddr) -> bool {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer_key(ip))
            .is_some_and(|at| at.elapsed() < FAILING_FOR)
    }

    /// A check of the peer's ended: a failure marks it failing, a success clears it.
    fn record_check(&self, ip: IpAddr, ok: bool) {
        let peer = peer_key(ip);
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        if ok {
            failing.remove(&peer);
            return;
        }
        if failing.len() >= MAX_FAILING && !failing.contains_key(&peer) {
            failing.retain(|_, at| at.elapsed() < FAILING_FOR);
            if failing.len() >= MAX_FAILING {
                return;
            }
        }
        failing.insert(peer, Instant::now());
    }

    fn log_failure(&self, user: &str, peer: Option<SocketAddr>) {
        let admitted = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(Instant::now());
        let Some(left_out) = admitted else {
            return;
        };
        if left_out > 0 {
            tracing::warn!(
                target: LOG_TARGET,
                left_out,
                "{left_out} failed basic-auth logins were not logged, at most {FAILURE_LOG_BURST} are per {}s",
                FAILURE_LOG_WINDOW.as_secs()
            );
        }
        let shown = shown(user, LOGGED_USER_CHARS);
        let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        tracing::warn!(target: LOG_TARGET, user = %shown, peer = %peer, "basic-auth login failed: unknown user or wrong password");
    }
}

/// A peer's claim on its one check; released when dropped.
#[derive(Debug)]
struct PendingCheck {
    pending: Arc<Mutex<HashSet<IpAddr>>>,
    peer: IpAddr,
}

impl PendingCheck {
    /// `None` if the peer has a check waiting or running.
    fn claim(pending: &Arc<Mutex<HashSet<IpAddr>>>, ip: IpAddr) -> Option<PendingCheck> {
        let peer = peer_key(ip);
        let fresh = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer);
        fresh.then(|| PendingCheck {
            pending: Arc::clone(pending),
            peer,
        })
    }
}

impl Drop for PendingCheck {
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.peer);
    }
}

/// The unit a peer is counted by: its IPv4 address, or the /64 of its IPv6 one, since one
/// host commonly holds a whole /64.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// User and password of a `Basic` authorization header.
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::web::parse;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("header")
    }

    fn peer(ip: [u8; 4], port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from((ip, port)))
    }

    /// Polls `future` once: whether it finished, and with what.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut *future).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    fn auth(users: &[(&str, &str)], max_checks: usize) -> Arc<BasicAuth> {
        let users = users
            .iter()
            .map(|(u, p)| ((*u).to_owned(), bcrypt::hash(p, 4).expect("hash")))
            .collect();
        Arc::new(BasicAuth::new(users, max_checks))
    }

    /// While a peer's check waits or runs, its next one is answered Busy without a check;
    /// another peer's waits its turn and is checked.
    #[tokio::test]
    async fn one_check_per_peer_at_a_time() {
        let auth = auth(&[("alice", "right")], 1);
        // Every check slot taken: the checks below wait.
        let held = Arc::clone(&auth.checks)
            .acquire_owned()
            .await
            .expect("permit");
        let wrong = header("alice", "wrong");
        let right = header("alice", "right");
        let mut first = Box::pin(auth.allows(peer([10, 0, 0, 1], 1000), Some(&wrong)));
        assert_eq!(poll_once(&mut first).await, None);
        assert_eq!(
            auth.allows(peer([10, 0, 0, 1], 1001), Some(&right)).await,
            Verdict::Busy
        );
        let mut other = Box::pin(auth.allows(peer([10, 0, 0, 2], 1000), Some(&right)));
        assert_eq!(poll_once(&mut other).await, None);
        drop(held);
        assert_eq!(first.await, Verdict::Denied);
        assert_eq!(other.await, Verdict::Allowed);
        // Cached now: allowed at once even while the peer has a check under way.
        let held = Arc::clone(&auth.checks)
            .acquire_owned()
            .await
            .expect("permit");
        let mut pending = Box::pin(auth.allows(peer([10, 0, 0, 2], 1002), Some(&wrong)));
        assert_eq!(poll_once(&mut pending).await, None);
        assert_eq!(
            auth.allows(peer([10, 0, 0, 2], 1003), Some(&right)).await,
            Verdict::Allowed
        );
        drop(held);
        assert_eq!(pending.await, Verdict::Denied);
        // A dropped request leaves no claim behind.
        assert!(auth.pending.lock().expect("lock").is_empty());
        // IPv6 peers of one /64 count as one.
        assert_eq!(
            peer_key("2001:db8:1:2:aaaa::1".parse().expect("ip")),
            peer_key("2001:db8:1:2:bbbb::2".parse().expect("ip"))
        );
        assert_ne!(
            peer_key("2001:db8:1:2::1".parse().expect("ip")),
            peer_key("2001:db8:1:3::1".parse().expect("ip"))
        );
    }

    /// A flood of wrong passwords from one peer holds at most one check: another peer's first
    /// login is checked at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_from_one_peer_does_not_delay_another() {
        let auth = auth(&[("alice", "right")], 1);
        let flood = {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move {
                let wrong = header("alice", "wrong");
                let mut verdicts = Vec::new();
                let attempts = (0..200u16).map(|port| {
                    let auth = Arc::clone(&auth);
                    let wrong = wrong.clone();
                    tokio::spawn(async move {
                        auth.allows(peer([10, 0, 0, 1], port), Some(&wrong)).await
                    })
                });
                for attempt in attempts.collect::<Vec<_>>() {
                    verdicts.push(attempt.await.expect("attempt"));
                }
                verdicts
            })
        };
        let started = Instant::now();
        let verdict = auth
            .allows(peer([10, 0, 0, 2], 1), Some(&header("alice", "right")))
            .await;
        let waited = started.elapsed();
        assert_eq!(verdict, Verdict::Allowed);
        assert!(waited < Duration::from_secs(1), "{waited:?}");
        let verdicts = flood.await.expect("flood");
        let busy = verdicts.iter().filter(|v| **v == Verdict::Busy).count();
        let denied = verdicts.iter().filter(|v| **v == Verdict::Denied).count();
        assert_eq!(busy + denied, 200);
        assert!(busy > 100, "{busy} busy, {denied} denied");
    }

    /// Issue 22: once a peer has failed, its checks share one turn with every other failing
    /// peer's: while one waits or runs, the others are answered Busy without a check, and a
    /// peer that has not failed waits behind that one at most. A success clears the mark.
    #[tokio::test]
    async fn failing_peers_share_one_check_at_a_time() {
        let auth = auth(&[("alice", "right"), ("bob", "other")], 1);
        let wrong = header("alice", "wrong");
        let right = header("alice", "right");
        for ip in [[10, 0, 0, 1], [10, 0, 0, 2]] {
            assert_eq!(
                auth.allows(peer(ip, 1000), Some(&wrong)).await,
                Verdict::Denied
            );
        }
        // Every check slot taken: the checks below wait.
        let held = Arc::clone(&auth.checks)
            .acquire_owned()
            .await
            .expect("permit");
        let mut failing = Box::pin(auth.allows(peer([10, 0, 0, 1], 1001), Some(&wrong)));
        assert_eq!(poll_once(&mut failing).await, None);
        assert_eq!(
            auth.allows(peer([10, 0, 0, 2], 1001), Some(&wrong)).await,
            Verdict::Busy,
            "another failing peer, while the failing turn is taken"
        );
        let mut fresh = Box::pin(auth.allows(peer([10, 0, 0, 3], 1000), Some(&right)));
        assert_eq!(poll_once(&mut fresh).await, None);
        drop(held);
        assert_eq!(failing.await, Verdict::Denied);
        assert_eq!(fresh.await, Verdict::Allowed);
        // The turn is free again, and a failing peer's valid login (not remembered) still
        // gets through; it clears the mark.
        assert_eq!(
            auth.allows(peer([10, 0, 0, 2], 1002), Some(&header("bob", "other")))
                .await,
            Verdict::Allowed
        );
        assert!(!auth.has_failed([10, 0, 0, 2].into()));
        assert!(auth.has_failed([10, 0, 0, 1].into()));
    }

    /// The decoy is one of the configured hashes, the costliest: no hash is computed at load,
    /// whatever the cost.
    #[test]
    fn the_decoy_is_the_costliest_configured_hash() {
        let cheap = bcrypt::hash("pw", 4).expect("hash");
        // A hash of cost 14 in form; it need not match any password.
        let costly = cheap.replacen("$04$", "$14$", 1);
        let text = format!("basic_auth_users:\n  alice: {cheap}\n  bob: {costly}\n");
        let web = parse(&text, Path::new("/nonexistent")).expect("valid");
        let auth = web.basic_auth.expect("basic auth");
        assert_eq!(auth.decoy, costly);
        assert!(auth.checks.available_permits() >= 1);
    }

    /// A failed login's line names the user, escaped and cut, and the peer; never a password.
    #[test]
    fn a_failed_login_is_logged_with_user_and_peer() {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let auth = auth(&[("alice", "right")], 1);
        tracing::subscriber::with_default(subscriber, || {
            auth.log_failure("eve\"\n", peer([10, 0, 0, 9], 4242));
            auth.log_failure(&"m".repeat(100), peer([10, 0, 0, 9], 4243));
        });
        let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(
            text,
            format!(
                " WARN ssm_association_exporter::web: basic-auth login failed: unknown user or wrong password user=eve\\\"\\n peer=10.0.0.9:4242\n WARN ssm_association_exporter::web: basic-auth login failed: unknown user or wrong password user={}… peer=10.0.0.9:4243\n",
                "m".repeat(64)
            )
        );
    }

    #[test]
    fn credentials_of_a_basic_header() {
        let header = |s: &str| HeaderValue::from_str(s).expect("header");
        assert_eq!(
            credentials(&header("Basic dXNlcjpwYTpzcw==")),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(
            credentials(&header("basic dXNlcjpw")),
            Some(("user".into(), "p".into()))
        );
        for bad in ["Bearer dXNlcjpw", "Basic !!!", "Basic dXNlcg==", "Basic"] {
            assert_eq!(credentials(&header(bad)), None, "{bad}");
        }
    }
}
