//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of `/v1`, a committed file
//! (`src/api/openapi.json`) served as it is, without a token.
//!
//! The tests below keep the document and [`super::route`] in step: every `/v1` arm of the router
//! (read from this crate's own source) is a documented operation and every documented operation
//! is an arm, so a route added to one side only fails `cargo test`. `tests/api_contract.rs`
//! checks the same against a live daemon and runs Schemathesis against it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::serve::json_response;

/// The document, as committed.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The answer to `GET /v1/openapi.json`.
pub(super) fn serve() -> Response<Full<Bytes>> {
    json_response(200, DOCUMENT.as_bytes().to_vec())
}

/// The methods the document gives the `/v1` path `path` (its segments matched against each
/// path template, a `{param}` standing for any one segment), as an `Allow` header value such as
/// `DELETE, GET`; `None` when no documented path matches. The router answers its 405s with it,
/// and the tests keep the document equal to the router, so it lists what the router takes.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    static TEMPLATES: std::sync::OnceLock<Vec<(Vec<String>, String)>> = std::sync::OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap_or_default();
        let mut by_path: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
        for (method, path) in documented_operations(&doc) {
            by_path.entry(path).or_default().push(method);
        }
        by_path
            .into_iter()
            .map(|(path, methods)| (path.trim_matches('/').split('/').map(str::to_owned).collect(), methods.join(", ")))
            .collect()
    });
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    templates
        .iter()
        .find(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s)
        })
        .map(|(_, methods)| methods.as_str())
}

/// The `(METHOD, /v1/path/{param})` pairs that the match arms of `route` in `source` (the text
/// of `src/api/mod.rs`) answer. An arm `(&Method::POST, ["v1", "campaigns", id, "start"])`
/// gives `("POST", "/v1/campaigns/{id}/start")`; a binding of alternatives
/// (`action @ ("start" | "pause")`) gives one pair per alternative. Arms that catch a rest
/// (`..`), any method (`_`) or no `/v1` path are left out: they are refusals, not operations.
pub fn routed_operations(source: &str) -> std::collections::BTreeSet<(String, String)> {
    let start = source.find("async fn route(").expect("src/api/mod.rs has `async fn route(`");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
    let mut out = std::collections::BTreeSet::new();
    for (at, _) in body.match_indices("(&Method::") {
        let rest = &body[at + "(&Method::".len()..];
        let method: String = rest.chars().take_while(|c| c.is_ascii_uppercase()).collect();
        let rest = rest[method.len()..].trim_start();
        let Some(rest) = rest.strip_prefix(',').map(str::trim_start) else { continue };
        let Some(rest) = rest.strip_prefix('[') else { continue };
        let Some(end) = rest.find(']') else { continue };
        let pattern = &rest[..end];
        if pattern.contains("..") {
            continue;
        }
        let mut paths: Vec<String> = vec![String::new()];
        for element in split_top_level(pattern) {
            let element = element.trim();
            let choices: Vec<String> = if let Some((name, alternatives)) = element.split_once('@') {
                let alternatives = alternatives.trim().trim_start_matches('(').trim_end_matches(')');
                let literals: Vec<String> =
                    alternatives.split('|').map(|a| a.trim().trim_matches('"').to_owned()).collect();
                if literals.iter().any(|l| l.is_empty()) {
                    vec![format!("{{{}}}", name.trim())]
                } else {
                    literals
                }
            } else if element.starts_with('"') {
                vec![element.trim_matches('"').to_owned()]
            } else {
                vec![format!("{{{element}}}")]
            };
            paths = paths.iter().flat_map(|p| choices.iter().map(move |c| format!("{p}/{c}"))).collect();
        }
        for path in paths {
            if path.starts_with("/v1/") {
                out.insert((method.clone(), path));
            }
        }
    }
    out
}

/// Splits a slice pattern's elements at the commas outside parentheses.
fn split_top_level(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0usize, 0usize);
    for (i, c) in pattern.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&pattern[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    if !pattern[from..].trim().is_empty() {
        out.push(&pattern[from..]);
    }
    out
}

/// The `(METHOD, path)` pairs a document describes, methods in upper case.
pub fn documented_operations(doc: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let mut out = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn document() -> serde_json::Value {
        serde_json::from_str(DOCUMENT).expect("src/api/openapi.json is JSON")
    }

    fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        list.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
    }

    #[test]
    fn the_router_and_the_document_name_the_same_operations() {
        let routed = routed_operations(include_str!("mod.rs"));
        let documented = documented_operations(&document());
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "route() answers these but src/api/openapi.json does not describe them: {undocumented:?}; the \
             document describes these but route() does not answer them: {unrouted:?}"
        );
        // The reading itself: enough operations that a broken parser cannot pass by finding none.
        assert!(routed.len() >= 20, "{routed:?}");
        assert!(routed.contains(&("POST".into(), "/v1/campaigns/{id}/cancel".into())), "{routed:?}");
    }

    #[test]
    fn route_patterns_are_read_with_their_alternatives_and_without_refusals() {
        let source = r#"
async fn route(state: &Arc<ApiState>, method: Method, path: &str) -> Answer {
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => return Ok(text_response(200, "ok\n")),
        (_, ["v1", ..]) if !state.authorized(&req) => return Err(ApiError::unauthorized()),
        (&Method::POST, ["v1", "things"]) => things::create(state, req).await,
        (&Method::GET, ["v1", "things", id, "report"]) => things::report(state, parse_id(id)?).await,
        (&Method::POST, ["v1", "things", id, action @ ("start" | "stop")]) => things::act(state, id, action).await,
        (&Method::DELETE, ["v1", "things", ..]) => Err(ApiError::method_not_allowed()),
        (_, ["v1", "things", ..]) => Err(ApiError::method_not_allowed()),
    }
}
fn after() { (&Method::GET, ["v1", "elsewhere"]) }
"#;
        assert_eq!(
            routed_operations(source),
            pairs(&[
                ("POST", "/v1/things"),
                ("GET", "/v1/things/{id}/report"),
                ("POST", "/v1/things/{id}/start"),
                ("POST", "/v1/things/{id}/stop"),
            ])
        );
    }

    #[test]
    fn a_405_names_the_documented_methods_of_the_path() {
        assert_eq!(allowed_methods("/v1/campaigns"), Some("GET, POST"));
        assert_eq!(allowed_methods("/v1/campaigns/7/"), Some("DELETE, GET"));
        assert_eq!(allowed_methods("/v1/campaigns/7/start"), Some("POST"));
        assert_eq!(allowed_methods("/v1/apps/main/cid-pn"), Some("DELETE, GET, PUT"));
        assert_eq!(allowed_methods("/v1/campaigns/7/nope"), None);
        assert_eq!(allowed_methods("/v1/campaigns/7/sms"), None);
    }

    #[test]
    fn a_route_on_one_side_only_is_caught() {
        let doc = document();
        let mut routed = routed_operations(include_str!("mod.rs"));
        routed.insert(("GET".into(), "/v1/campaigns/{id}/recipients".into()));
        assert_ne!(routed, documented_operations(&doc));
        let mut less = doc.clone();
        less["paths"].as_object_mut().unwrap().remove("/v1/groups/{group}/report");
        assert_ne!(routed_operations(include_str!("mod.rs")), documented_operations(&less));
    }

    #[test]
    fn every_operation_is_secured_or_says_it_is_not_and_documents_its_refusals() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
        let mut ids = BTreeSet::new();
        for (method, path) in documented_operations(&doc) {
            let op = &doc["paths"][&path][method.to_ascii_lowercase()];
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let open = op["security"].as_array().is_some_and(|s| s.is_empty());
            assert_eq!(open, path == "/v1/openapi.json", "{method} {path}: only the document itself is open");
            if !open {
                assert!(op["responses"]["401"].is_object(), "{method} {path} documents no 401");
            }
            // Every path parameter is declared, with the name the router's pattern binds.
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                let declared = op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == name);
                assert!(declared, "{method} {path} does not declare its parameter {name}");
            }
        }
        // Every reference resolves.
        let text = DOCUMENT;
        for (at, _) in text.match_indices("\"$ref\": \"#/") {
            let rest = &text[at + "\"$ref\": \"#/".len()..];
            let pointer = &rest[..rest.find('"').unwrap()];
            assert!(doc.pointer(&format!("/{pointer}")).is_some(), "dangling $ref #/{pointer}");
        }
    }

    #[test]
    fn the_error_codes_are_those_the_api_answers() {
        let doc = document();
        let codes: BTreeSet<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
            ["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let answered = [
            super::super::ApiError::invalid("f", "m"),
            super::super::ApiError::bad_body("m"),
            super::super::ApiError::unauthorized(),
            super::super::ApiError::not_found("m"),
            super::super::ApiError::method_not_allowed(),
            super::super::ApiError::body_timeout(std::time::Duration::from_secs(1)),
            super::super::ApiError::conflict(crate::domain::CampaignState::Running, "m"),
            super::super::ApiError::too_large("m"),
            super::super::ApiError::media_type("m"),
            super::super::ApiError::unavailable("m"),
            super::super::ApiError::not_implemented("m"),
            super::super::ApiError::internal("m"),
        ];
        let answered: BTreeSet<&str> = answered.iter().map(|e| e.code).collect();
        assert_eq!(codes, answered);
    }
}
