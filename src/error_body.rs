//! The one error body every hookgate listener answers with:
//! `{"error":{"code":"<stable_snake_case>","message":"..."}}`.

use serde::Serialize;

/// The outer object of the body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    /// The error itself.
    error: ErrorDetail<'a>,
}

/// `{"code","message"}`.
#[derive(Serialize)]
struct ErrorDetail<'a> {
    /// Stable machine-readable code.
    code: &'a str,
    /// What happened and, for 4xx, what to fix.
    message: &'a str,
}

/// The JSON error body for `code` and `message`.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    let body = ErrorBody {
        error: ErrorDetail { code, message },
    };
    // Serialising two strings into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_documented_shape_with_escaping() {
        let body: serde_json::Value = serde_json::from_slice(&error_body("bad_thing", "a \"quoted\" word")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "bad_thing", "message": "a \"quoted\" word"}})
        );
    }
}
