//! The environment variables the AWS SDK reads by itself, checked before the SDK sees them.
//!
//! The SDK treats a set-but-empty variable as a value: an empty `AWS_ENDPOINT_URL` makes the SQS
//! client panic at cold start. Our own configuration counts empty values as unset
//! (`config::Config::from_lookup`); `sdk_env` gives the SDK's variables the same rule and turns
//! malformed values into a clear startup error instead of a panic or a call to the wrong host.
//!
//! Settings reference: <https://docs.aws.amazon.com/sdkref/latest/guide/settings-reference.html>;
//! service-specific endpoints (`AWS_ENDPOINT_URL_<SERVICE>`):
//! <https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html>.

use thiserror::Error;

/// Prefix of the service-specific endpoint variables, e.g. `AWS_ENDPOINT_URL_SQS`,
/// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
pub(crate) const SERVICE_ENDPOINT_PREFIX: &str = "AWS_ENDPOINT_URL_";

/// What a variable's value must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// An `http://` or `https://` URL with a host, optionally a port and a path.
    Endpoint,
    /// An AWS region name such as `us-east-1` or `us-gov-west-1`.
    Region,
    /// `true` or `false`, in any case.
    Bool,
    /// A whole number of at least 1.
    PositiveInt,
    /// `legacy`, `standard` or `adaptive`.
    RetryMode,
    /// `IPv4` or `IPv6`.
    ImdsMode,
    /// Any non-empty text (profile names, file paths, credentials).
    Text,
}

/// Every variable the SDK reads itself (besides `AWS_ENDPOINT_URL_<SERVICE>`), with its shape.
pub(crate) const SDK_VARIABLES: [(&str, Shape); 22] = [
    ("AWS_ENDPOINT_URL", Shape::Endpoint),
    ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", Shape::Bool),
    ("AWS_REGION", Shape::Region),
    ("AWS_DEFAULT_REGION", Shape::Region),
    ("AWS_PROFILE", Shape::Text),
    ("AWS_CONFIG_FILE", Shape::Text),
    ("AWS_SHARED_CREDENTIALS_FILE", Shape::Text),
    ("AWS_ACCESS_KEY_ID", Shape::Text),
    ("AWS_SECRET_ACCESS_KEY", Shape::Text),
    ("AWS_SESSION_TOKEN", Shape::Text),
    ("AWS_ROLE_ARN", Shape::Text),
    ("AWS_ROLE_SESSION_NAME", Shape::Text),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", Shape::Text),
    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", Shape::Endpoint),
    ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", Shape::Text),
    ("AWS_EC2_METADATA_DISABLED", Shape::Bool),
    ("AWS_EC2_METADATA_SERVICE_ENDPOINT", Shape::Endpoint),
    ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", Shape::ImdsMode),
    ("AWS_USE_FIPS_ENDPOINT", Shape::Bool),
    ("AWS_USE_DUALSTACK_ENDPOINT", Shape::Bool),
    ("AWS_MAX_ATTEMPTS", Shape::PositiveInt),
    ("AWS_RETRY_MODE", Shape::RetryMode),
];

/// A variable the SDK reads holds a value it cannot use. The operator must fix the function's
/// environment; the message names the variable and the expected shape, never the value (an
/// endpoint or key may carry credentials).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{variable} is malformed: it must be {expected} (or unset)")]
pub struct AwsEnvError {
    /// The variable's name, e.g. `AWS_ENDPOINT_URL_SQS`.
    pub variable: String,
    /// What it must look like, in words.
    pub expected: &'static str,
}

/// The shape `name` must have, or `None` when the SDK does not read it.
pub fn shape_of(name: &str) -> Option<Shape> {
    if let Some(service) = name.strip_prefix(SERVICE_ENDPOINT_PREFIX) {
        let is_service_id = !service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        return is_service_id.then_some(Shape::Endpoint);
    }
    SDK_VARIABLES.iter().find(|(n, _)| *n == name).map(|(_, shape)| *shape)
}

/// Checks the SDK's variables in `environment` (name, value pairs, e.g. `std::env::vars()`).
///
/// Returns the names of the SDK variables that are set but empty or blank: the caller removes
/// them before building the SDK configuration, so they count as unset. Returns the first
/// malformed value as an [`AwsEnvError`]. Variables the SDK does not read are ignored.
pub(crate) fn sdk_env<I, K, V>(environment: I) -> Result<Vec<String>, AwsEnvError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut empty = Vec::new();
    for (name, value) in environment {
        let (name, value) = (name.as_ref(), value.as_ref());
        let Some(shape) = shape_of(name) else { continue };
        if value.trim().is_empty() {
            empty.push(name.to_owned());
        } else if let Some(expected) = problem(shape, value.trim()) {
            return Err(AwsEnvError {
                variable: name.to_owned(),
                expected,
            });
        }
    }
    empty.sort();
    Ok(empty)
}

/// `None` when `value` (trimmed, non-empty) fits `shape`, else the expected shape in words.
fn problem(shape: Shape, value: &str) -> Option<&'static str> {
    let fits = match shape {
        Shape::Endpoint => is_http_url(value),
        Shape::Region => is_region(value),
        Shape::Bool => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        Shape::PositiveInt => value.parse::<u32>().is_ok_and(|n| n >= 1),
        Shape::RetryMode => ["legacy", "standard", "adaptive"].contains(&value),
        Shape::ImdsMode => value == "IPv4" || value == "IPv6",
        Shape::Text => true,
    };
    (!fits).then_some(match shape {
        Shape::Endpoint => "an http:// or https:// URL with a host, e.g. http://127.0.0.1:4566",
        Shape::Region => "an AWS region such as us-east-1",
        Shape::Bool => "true or false",
        Shape::PositiveInt => "a whole number of at least 1",
        Shape::RetryMode => "legacy, standard or adaptive",
        Shape::ImdsMode => "IPv4 or IPv6",
        Shape::Text => "text",
    })
}

/// `http(s)://host[:port][/path]` with a host of letters, digits, `-`, `.`, `_` or a bracketed
/// IPv6 address, a port of 1 to 65535, and no whitespace anywhere.
fn is_http_url(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return false;
    };
    if value.chars().any(char::is_whitespace) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

/// Lower-case words joined by `-`, starting with letters and ending with a number:
/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-northwest-1`.
fn is_region(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    parts.len() >= 3
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Applies `sdk_env` to this process: removes the SDK's empty variables so they count as
/// unset, or returns the first malformed one. Call it first thing in `main`.
///
/// # Safety
/// It changes the process environment, so no other thread may exist yet (before the Tokio
/// runtime is built): `std::env::remove_var` is unsafe for that reason.
pub unsafe fn clean_process_env() -> Result<(), AwsEnvError> {
    let environment = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    for name in sdk_env(environment)? {
        // SAFETY: the caller guarantees no other thread exists.
        unsafe { std::env::remove_var(&name) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)]) -> Result<Vec<String>, AwsEnvError> {
        sdk_env(pairs.iter().copied())
    }

    #[test]
    fn an_empty_endpoint_counts_as_unset_instead_of_panicking_the_client() {
        assert_eq!(
            check(&[("AWS_ENDPOINT_URL", "")]),
            Ok(vec!["AWS_ENDPOINT_URL".to_owned()])
        );
        assert_eq!(
            check(&[("AWS_ENDPOINT_URL_SQS", "  "), ("AWS_REGION", ""), ("AWS_PROFILE", "")]),
            Ok(vec![
                "AWS_ENDPOINT_URL_SQS".into(),
                "AWS_PROFILE".into(),
                "AWS_REGION".into()
            ])
        );
    }

    #[test]
    fn every_listed_variable_and_any_service_endpoint_is_emptied_when_blank() {
        let mut names: Vec<String> = SDK_VARIABLES.iter().map(|(n, _)| (*n).to_owned()).collect();
        names.extend(["S3", "SECRETS_MANAGER", "SQS", "STS"].map(|s| format!("{SERVICE_ENDPOINT_PREFIX}{s}")));
        let pairs: Vec<(String, String)> = names.iter().map(|n| (n.clone(), String::new())).collect();
        names.sort();
        assert_eq!(sdk_env(pairs), Ok(names));
    }

    #[test]
    fn good_values_pass_and_other_variables_are_ignored() {
        let good = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_ENDPOINT_URL_SQS", "https://sqs.us-east-1.amazonaws.com"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://host.docker.internal:4566/"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://[fd00:ec2::254]:80"),
            ("AWS_REGION", "us-gov-west-1"),
            ("AWS_DEFAULT_REGION", "eu-central-1"),
            ("AWS_USE_FIPS_ENDPOINT", "FALSE"),
            ("AWS_MAX_ATTEMPTS", "3"),
            ("AWS_RETRY_MODE", "adaptive"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"),
            ("AWS_PROFILE", "default"),
            ("SEGMENT_ENDPOINT", ""),
            ("AWS_ENDPOINT_URL_sqs", "not read by the SDK"),
        ];
        assert_eq!(check(&good), Ok(vec![]));
    }

    #[test]
    fn malformed_values_are_named_errors_that_never_quote_the_value() {
        let bad = [
            ("AWS_ENDPOINT_URL", "localhost:4566"),
            ("AWS_ENDPOINT_URL", "ftp://example.com"),
            ("AWS_ENDPOINT_URL", "http:///path"),
            ("AWS_ENDPOINT_URL", "http://exa mple.com"),
            ("AWS_ENDPOINT_URL_SQS", "http://host:99999"),
            ("AWS_ENDPOINT_URL_SQS", "http://host:"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[zz]:80"),
            ("AWS_REGION", "US-EAST-1"),
            ("AWS_REGION", "useast1"),
            ("AWS_DEFAULT_REGION", "eu-west-"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "yes"),
            ("AWS_MAX_ATTEMPTS", "0"),
            ("AWS_RETRY_MODE", "fast"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv4"),
        ];
        for (name, value) in bad {
            let error = check(&[(name, value)]).expect_err(value);
            assert_eq!(error.variable, name);
            let message = error.to_string();
            assert!(message.starts_with(name) && message.contains("must be"), "{message}");
            assert!(!message.contains(value), "{message} quotes the value {value}");
        }
    }

    #[test]
    fn shapes_are_known_for_sdk_variables_only() {
        assert_eq!(shape_of("AWS_ENDPOINT_URL_S3"), Some(Shape::Endpoint));
        assert_eq!(shape_of("AWS_ENDPOINT_URL_"), None);
        assert_eq!(shape_of("AWS_REGION"), Some(Shape::Region));
        assert_eq!(shape_of("RETRY_QUEUE_URL"), None);
        assert_eq!(problem(Shape::Text, "anything"), None);
    }
}
