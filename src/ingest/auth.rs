//! Checking Braze's bearer token.

use crate::secret::BearerTokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing, repeated or malformed Authorization header")]
    Malformed,
    #[error("wrong bearer token")]
    WrongToken,
    #[error("no CURRENTS_AUTH_TOKEN is configured and ALLOW_UNAUTHENTICATED is not true")]
    NotConfigured,
}

/// Checks the `Authorization` header values against the configured tokens. Exactly one header
/// with the `Bearer` scheme (any case, RFC 7235) is accepted. The comparison
/// ([`BearerTokens::accepts`]) runs on SHA-256 digests in constant time against every token, so
/// neither a token's bytes, its length nor which token matched leak through timing.
/// [`AuthError::WrongToken`] means a well-formed bearer token that matches none of them.
pub(crate) fn authorize<'h>(
    mut headers: impl Iterator<Item = &'h [u8]>,
    tokens: Option<&BearerTokens>,
    allow_unauthenticated: bool,
) -> Result<(), AuthError> {
    let Some(tokens) = tokens else {
        return if allow_unauthenticated {
            Ok(())
        } else {
            Err(AuthError::NotConfigured)
        };
    };
    let (Some(value), None) = (headers.next(), headers.next()) else {
        return Err(AuthError::Malformed);
    };
    let value = std::str::from_utf8(value).map_err(|_| AuthError::Malformed)?;
    let (scheme, presented) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    if tokens.accepts(presented.trim()) {
        Ok(())
    } else {
        Err(AuthError::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(headers: &[&str]) -> Result<(), AuthError> {
        authorize(
            headers.iter().map(|h| h.as_bytes()),
            Some(&BearerTokens::parse("s3cr3t-T0ken_.~").unwrap()),
            false,
        )
    }

    #[test]
    fn the_right_token_passes_with_any_case_of_scheme() {
        assert_eq!(check(&["Bearer s3cr3t-T0ken_.~"]), Ok(()));
        assert_eq!(check(&["bearer s3cr3t-T0ken_.~"]), Ok(()));
        assert_eq!(check(&["BEARER  s3cr3t-T0ken_.~ "]), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(check(&[]), Err(AuthError::Malformed));
        assert_eq!(
            check(&["Bearer s3cr3t-T0ken_.~", "Bearer s3cr3t-T0ken_.~"]),
            Err(AuthError::Malformed)
        );
        assert_eq!(check(&["Basic s3cr3t-T0ken_.~"]), Err(AuthError::Malformed));
        assert_eq!(check(&["s3cr3t-T0ken_.~"]), Err(AuthError::Malformed));
        assert_eq!(check(&["Bearer wrong"]), Err(AuthError::WrongToken));
        assert_eq!(check(&["Bearer s3cr3t-T0ken_.~x"]), Err(AuthError::WrongToken));
        assert_eq!(check(&["Bearer "]), Err(AuthError::Malformed));
    }

    #[test]
    fn every_token_of_a_list_passes_during_a_rotation() {
        let tokens = BearerTokens::parse(r#"["new-T0ken_0123456789", "old-T0ken_0123456789"]"#).unwrap();
        let check = |header: &str| authorize(std::iter::once(header.as_bytes()), Some(&tokens), false);
        assert_eq!(check("Bearer new-T0ken_0123456789"), Ok(()));
        assert_eq!(check("Bearer old-T0ken_0123456789"), Ok(()));
        assert_eq!(check("Bearer pending-T0ken_0123456789"), Err(AuthError::WrongToken));
    }

    #[test]
    fn without_a_token_only_an_explicit_opt_out_lets_requests_in() {
        let none = std::iter::empty();
        assert_eq!(authorize(none, None, false), Err(AuthError::NotConfigured));
        assert_eq!(authorize(std::iter::empty(), None, true), Ok(()));
    }
}
