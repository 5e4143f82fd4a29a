//! One endpoint, three protocols: SQS requests (an `X-Amz-Target` of `AmazonSQS.`) go to the
//! SQS side, the rest to the SSM side, which also answers STS.

use std::future::Future;
use std::pin::Pin;

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::wire::Reset;
use super::{Sim, protocol, sqs};
use crate::http::Body;

type Handled = Pin<Box<dyn Future<Output = Result<Response<Body>, Reset>> + Send>>;

/// The request handler to serve: one call per HTTP request.
pub(super) fn handler(sim: Sim) -> impl Fn(Request<Incoming>) -> Handled + Clone + Send + Sync {
    move |request| {
        let sim = sim.clone();
        Box::pin(async move { route(sim, request).await })
    }
}

async fn route(sim: Sim, request: Request<Incoming>) -> Result<Response<Body>, Reset> {
    // SQS shares the endpoint, told apart by its target prefix, as the SDK sends it.
    let sqs_operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("AmazonSQS."))
        .map(str::to_owned);
    match sqs_operation {
        Some(operation) => sqs::handle(sim, operation, request).await,
        None => protocol::handle(sim, request).await,
    }
}
