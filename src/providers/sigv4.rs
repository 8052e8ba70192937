//! AWS Signature Version 4 for Bedrock requests (service `bedrock`), computed by the
//! `aws-sigv4` crate over exactly what is sent: method, Host, the once-encoded path, the
//! content type and the final translated body.
//!
//! The crate's defaults are the non-S3 rules Bedrock wants: the canonical URI is the path
//! percent-encoded a second time (`PercentEncodingMode::Double`: a model id's `%3A` is
//! signed as `%253A`, an ARN's `%2F` as `%252F`), the path is normalised (no effect on
//! `/model/{id}/converse`, which has no `.` segments or `//`), and a session token is part
//! of the signed headers (`SessionTokenMode::Include`), as botocore does.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign as sign_request, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use std::fmt;
use std::time::SystemTime;

/// The signing service name for Bedrock and Bedrock Runtime (not `bedrock-runtime`).
pub const SERVICE: &str = "bedrock";

/// Static AWS credentials (environment or config).
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Shows the key id (it names the key, it is not a secret) and hides the rest.
impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The headers to add to the request so that it is signed: `authorization`, `x-amz-date`,
/// and `x-amz-security-token` when the credentials carry a session token (names in lower
/// case). `host` and `content_type` must be the values actually sent; `path_and_query` is
/// the path as sent (already percent-encoded once).
///
/// Errors describe what was wrong with the request, never a credential.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    host: &str,
    path_and_query: &str,
    content_type: &str,
    body: &[u8],
    creds: &AwsCredentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
        return Err("AWS credentials are incomplete (empty access key id or secret)".into());
    }
    if region.is_empty() {
        return Err("no AWS region to sign for".into());
    }
    let identity: Identity = Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        creds.session_token.clone(),
        None,
        "switchyard",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("SigV4 parameters: {e}"))?
        .into();

    // The crate wants a full URI; only its path and query are signed, Host comes from the
    // header list.
    let uri = format!("https://{host}{path_and_query}");
    let headers = [("host", host), ("content-type", content_type)];
    let request = SignableRequest::new(method, uri, headers.into_iter(), SignableBody::Bytes(body))
        // The error names the URI or a header, both ours to show (no credential is in them).
        .map_err(|e| format!("SigV4: request cannot be signed: {e}"))?;
    let (instructions, _signature) = sign_request(request, &params)
        .map_err(|e| format!("SigV4 signing failed: {e}"))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name().to_ascii_lowercase(), h.value().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
    const PATH: &str = "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse";
    const BODY: &[u8] = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}"#;
    /// 2024-01-15T12:00:00Z
    const WHEN: u64 = 1_705_320_000;

    fn creds(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_owned),
        }
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn signed(token: Option<&str>) -> Vec<(String, String)> {
        sign(
            "POST",
            HOST,
            PATH,
            "application/json",
            BODY,
            &creds(token),
            "us-east-1",
            UNIX_EPOCH + Duration::from_secs(WHEN),
        )
        .unwrap()
    }

    // The expected values come from botocore 1.44.18 (SigV4Auth, service `bedrock`):
    //
    //   import datetime
    //   from unittest import mock
    //   from botocore.auth import SigV4Auth
    //   from botocore.awsrequest import AWSRequest
    //   from botocore.credentials import Credentials
    //   body = b'{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}'
    //   for token in (None, "FQoGZXIvYXdzEXAMPLETOKEN"):
    //       creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    //       req = AWSRequest(method="POST",
    //           url="https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse",
    //           data=body, headers={"Content-Type": "application/json"})
    //       with mock.patch("botocore.auth.get_current_datetime",
    //                       return_value=datetime.datetime(2024, 1, 15, 12, 0, 0)):
    //           SigV4Auth(creds, "bedrock", "us-east-1").add_auth(req)
    //       print(req.headers["Authorization"])
    const BOTOCORE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=8c46e1a9eb7dc05c615380f8efd89a6082ec29f47a67aa52fceb4201a53ef9c0";
    const BOTOCORE_AUTH_WITH_TOKEN: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=a3a016912f529ec1bf7f1b33896cf1ca898b653c388c88d364368d55ff229e95";

    #[test]
    fn matches_botocore() {
        let h = signed(None);
        assert_eq!(header(&h, "authorization"), Some(BOTOCORE_AUTH));
        assert_eq!(header(&h, "x-amz-date"), Some("20240115T120000Z"));
        assert_eq!(header(&h, "x-amz-security-token"), None);
    }

    #[test]
    fn matches_botocore_with_a_session_token() {
        let h = signed(Some("FQoGZXIvYXdzEXAMPLETOKEN"));
        assert_eq!(header(&h, "authorization"), Some(BOTOCORE_AUTH_WITH_TOKEN));
        assert_eq!(
            header(&h, "x-amz-security-token"),
            Some("FQoGZXIvYXdzEXAMPLETOKEN")
        );
    }

    /// An inference-profile ARN: `%2F` in the one segment must be signed as `%252F`, not
    /// read as a path separator. botocore, same snippet with
    /// `url=".../model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse-stream"`,
    /// host `bedrock-runtime.us-west-2.amazonaws.com`, region `us-west-2`, no token.
    #[test]
    fn matches_botocore_for_an_arn_path() {
        let h = sign(
            "POST",
            "bedrock-runtime.us-west-2.amazonaws.com",
            "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse-stream",
            "application/json",
            BODY,
            &creds(None),
            "us-west-2",
            UNIX_EPOCH + Duration::from_secs(WHEN),
        )
        .unwrap();
        assert_eq!(
            header(&h, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=c73d2578649831db828fc996768b8a90e1b979e36611960311fe63ebdbc76414")
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", creds(Some("TOKEN123")));
        assert!(s.contains("AKIDEXAMPLE"));
        assert!(!s.contains("EXAMPLEKEY"));
        assert!(!s.contains("TOKEN123"));
    }

    #[test]
    fn errors_never_quote_a_secret() {
        let c = creds(None);
        let e = sign(
            "POST",
            "bad host\n",
            PATH,
            "application/json",
            BODY,
            &c,
            "us-east-1",
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(!e.contains("EXAMPLEKEY"), "{e}");
        let mut empty = c.clone();
        empty.access_key_id.clear();
        let e = sign(
            "POST",
            HOST,
            PATH,
            "application/json",
            BODY,
            &empty,
            "us-east-1",
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(!e.contains("EXAMPLEKEY"), "{e}");
    }
}
