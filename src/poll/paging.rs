//! Paging: what a listing's consumer is handed, and the guard against listings that never end.

use crate::ssm::Operation;
use crate::ssm::SsmError;

use super::CallError;

/// What a listing's consumer is handed.
pub(super) enum Step<T> {
    Items(Vec<T>),
    /// The listing starts over: forget the items handed so far.
    Restart,
}

/// The most pages one listing may take: 5 million items at 50 a page, far beyond any real
/// account, and a bound on a service that never ends a listing.
const MAX_PAGES: usize = 100_000;

/// The tokens of one listing so far, to stop a listing that goes round in circles.
#[derive(Default)]
pub(super) struct Tokens(std::collections::HashSet<String>);

impl Tokens {
    /// The token to send next, or `None` at the end. A token seen before in this listing, or
    /// more pages than any account has, means the listing would never end: an unreadable
    /// response, not a page.
    pub(super) fn next(
        &mut self,
        operation: Operation,
        received: Option<String>,
    ) -> Result<Option<String>, CallError> {
        let Some(token) = received else {
            return Ok(None);
        };
        let broken = |why: &str| CallError {
            operation: operation.as_str(),
            error: SsmError::Response(why.to_owned()),
        };
        if self.0.len() >= MAX_PAGES {
            return Err(broken("the listing did not end within 100000 pages"));
        }
        if !self.0.insert(token.clone()) {
            return Err(broken(
                "the service returned a NextToken it had returned before",
            ));
        }
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_that_repeats_a_token_is_broken() {
        let op = Operation::DescribeAssociationExecutionTargets;
        let mut tokens = Tokens::default();
        assert_eq!(tokens.next(op, Some("a".into())), Ok(Some("a".into())));
        assert_eq!(tokens.next(op, Some("b".into())), Ok(Some("b".into())));
        let err = tokens
            .next(op, Some("a".into()))
            .expect_err("a came before");
        assert_eq!(err.error.kind(), "invalid_response");
        assert_eq!(
            err.to_string(),
            "DescribeAssociationExecutionTargets failed: unreadable response: the service returned a NextToken it had returned before"
        );
        assert_eq!(tokens.next(op, None), Ok(None));
    }

    #[test]
    fn a_listing_that_never_ends_is_cut() {
        let op = Operation::ListAssociations;
        let mut tokens = Tokens::default();
        for i in 0..MAX_PAGES {
            assert!(tokens.next(op, Some(i.to_string())).is_ok());
        }
        let err = tokens
            .next(op, Some("one more".into()))
            .expect_err("too many pages");
        assert_eq!(err.error.kind(), "invalid_response");
    }
}
