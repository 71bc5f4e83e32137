use http::HeaderMap;

use crate::config::{Preset, SourceConfig};
use crate::verify::testing::{at, headers, signed, source, verifier, NOW};
use crate::verify::{Verified, Verifier, VerifyError};

fn token_source(header: &str, prefix: Option<&str>, secrets: &[&str]) -> SourceConfig {
    SourceConfig {
        token_header: Some(header.to_owned()),
        token_prefix: prefix.map(str::to_owned),
        ..source(Preset::Token, secrets)
    }
}

fn token(header: &str, prefix: Option<&str>, secrets: &[&str]) -> Verifier {
    Verifier::from_source(&token_source(header, prefix, secrets)).unwrap()
}

fn verified(secret_index: u32) -> Result<Verified, VerifyError> {
    Ok(Verified {
        verified: true,
        secret_index,
    })
}

#[test]
fn gitlab_compares_x_gitlab_token_with_every_secret() {
    let gitlab = verifier(Preset::Gitlab, &["new-token", "old-token"]);
    let check = |value: &str| gitlab.verify(&headers(&[("X-Gitlab-Token", value)]), b"{}", at(NOW));
    assert_eq!(check("new-token"), verified(0));
    assert_eq!(check("old-token"), verified(1));
    assert_eq!(check("new-token "), Err(VerifyError::InvalidCredential));
    assert_eq!(check("NEW-TOKEN"), Err(VerifyError::InvalidCredential));
    assert_eq!(check(""), Err(VerifyError::InvalidCredential));
    assert_eq!(
        gitlab.verify(&HeaderMap::new(), b"{}", at(NOW)),
        Err(VerifyError::MissingCredential)
    );
    assert!(gitlab.is_static_credential());
    assert_eq!(gitlab.credential_header().unwrap(), "x-gitlab-token");
}

#[test]
fn gitlab_signing_sends_the_token_and_the_idempotency_key() {
    let gitlab = verifier(Preset::Gitlab, &["glpat-secret"]);
    let sent = signed(&gitlab, b"{}", at(NOW));
    assert_eq!(sent["x-gitlab-token"], "glpat-secret");
    assert_eq!(sent["idempotency-key"], "evt_1");
    // The body is not covered: any body passes with the token (hence "static credential").
    assert_eq!(gitlab.verify(&sent, b"anything else", at(NOW)), verified(0));
}

#[test]
fn token_mode_reads_the_named_header_after_its_prefix() {
    let bearer = token("authorization", Some("Bearer "), &["t0k3n"]);
    let check = |value: &str| bearer.verify(&headers(&[("authorization", value)]), b"", at(NOW));
    assert_eq!(check("Bearer t0k3n"), verified(0));
    assert_eq!(
        check("bearer t0k3n"),
        verified(0),
        "the scheme name is case-insensitive"
    );
    assert_eq!(check("t0k3n"), Err(VerifyError::MalformedCredential));
    assert_eq!(check("Bearer"), Err(VerifyError::MalformedCredential));
    assert_eq!(check("Bearer T0K3N"), Err(VerifyError::InvalidCredential));
    assert_eq!(signed(&bearer, b"", at(NOW))["authorization"], "Bearer t0k3n");
    let plain = token("X-Webhook-Token", None, &["a", "b"]);
    assert_eq!(plain.verify(&signed(&plain, b"", at(NOW)), b"", at(NOW)), verified(0));
    assert_eq!(plain.credential_header().unwrap(), "x-webhook-token");
    assert!(plain.challenge().is_none());
}

#[test]
fn token_mode_configuration_problems_name_their_key() {
    let missing = Verifier::from_source(&source(Preset::Token, &["t"])).unwrap_err();
    assert_eq!(missing.key, "token_header");
    let cases = [
        (token_source("bad header", None, &["t"]), "token_header"),
        (token_source("x-token", Some("Bearer\n"), &["t"]), "token_prefix"),
        (token_source("x-token", None, &[]), "secrets"),
        (token_source("x-token", None, &["ok", "two words"]), "secrets[1]"),
        (token_source("x-token", None, &["line\nbreak"]), "secrets[0]"),
    ];
    for (source, key) in cases {
        let problem = Verifier::from_source(&source).unwrap_err();
        assert_eq!(problem.key, key, "{}", problem.message);
        assert!(!problem.message.contains("two words") && !problem.message.contains("line\n"));
    }
    let gitlab = Verifier::from_source(&source(Preset::Gitlab, &["has space"])).unwrap_err();
    assert_eq!(gitlab.key, "secrets[0]");
}

#[test]
fn basic_authentication_matches_the_rfc_example() {
    // RFC 7617, section 2: Aladdin / open sesame.
    let basic = verifier(Preset::Basic, &["someone:else", "Aladdin:open sesame"]);
    let sent = headers(&[("Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")]);
    assert_eq!(basic.verify(&sent, b"{}", at(NOW)), verified(1));
    let sent = headers(&[("Authorization", "basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ")]);
    assert_eq!(
        basic.verify(&sent, b"{}", at(NOW)),
        verified(1),
        "case, spaces and padding vary"
    );
    let alone = verifier(Preset::Basic, &["Aladdin:open sesame"]);
    assert_eq!(
        signed(&alone, b"", at(NOW))["authorization"],
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert!(basic.challenge().unwrap().starts_with("Basic realm="));
    assert_eq!(basic.credential_header().unwrap(), "authorization");
}

#[test]
fn basic_authentication_refusals_are_told_apart() {
    let basic = verifier(Preset::Basic, &["Aladdin:open sesame"]);
    let check = |value: &str| basic.verify(&headers(&[("authorization", value)]), b"", at(NOW));
    // "Aladdin:open sesamE"
    assert_eq!(
        check("Basic QWxhZGRpbjpvcGVuIHNlc2FtRQ=="),
        Err(VerifyError::InvalidCredential)
    );
    assert_eq!(check("Basic "), Err(VerifyError::InvalidCredential));
    assert_eq!(
        check("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        Err(VerifyError::MalformedCredential)
    );
    assert_eq!(check("Basic !!!"), Err(VerifyError::MalformedCredential));
    assert_eq!(check("Basic"), Err(VerifyError::MalformedCredential));
    assert_eq!(
        basic.verify(&HeaderMap::new(), b"", at(NOW)),
        Err(VerifyError::MissingCredential)
    );
}

#[test]
fn basic_secrets_must_be_user_and_password() {
    let problem = Verifier::from_source(&source(Preset::Basic, &["user:pw", "no-colon"])).unwrap_err();
    assert_eq!(problem.key, "secrets[1]");
    assert!(!problem.message.contains("no-colon"), "{}", problem.message);
    assert_eq!(
        Verifier::from_source(&source(Preset::Basic, &[])).unwrap_err().key,
        "secrets"
    );
}

#[test]
fn signature_presets_are_not_static_credentials() {
    for preset in [Preset::Github, Preset::Zoom, Preset::Twilio, Preset::None] {
        assert!(!preset.is_static_credential(), "{preset:?}");
    }
    let github = verifier(Preset::Github, &["k"]);
    assert!(!github.is_static_credential() && github.credential_header().is_none());
}
