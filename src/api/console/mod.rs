//! The web console: serves the bundled single-page app under `/console/` from a fixed table of
//! files compiled into the binary. The pages hold no state of their own and call only `/v1`
//! with the token the user signs in with; this module serves bytes and security headers, no
//! data.
//!
//! Nothing here reads the filesystem, so a path outside the table (`..`, `%2e%2e`, a folder) is
//! simply a name the table lacks: 404.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::ApiError;

/// Where the console lives on the main listener.
pub const PREFIX: &str = "/console/";

/// The page's only sources are its own files: no inline script, no inline style attribute, no
/// other origin, and only `/v1` on this origin to talk to (`connect-src 'self'`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One bundled file: its name under `/console/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file the console has; `""` is the page itself (`/console/`).
const ASSETS: &[Asset] = &[
    Asset { name: "", content_type: HTML, body: include_bytes!("assets/index.html") },
    Asset { name: "console.css", content_type: CSS, body: include_bytes!("assets/console.css") },
    Asset { name: "icon.svg", content_type: SVG, body: include_bytes!("assets/icon.svg") },
    Asset { name: "app.js", content_type: JS, body: include_bytes!("assets/app.js") },
    Asset { name: "api.js", content_type: JS, body: include_bytes!("assets/api.js") },
    Asset { name: "dom.js", content_type: JS, body: include_bytes!("assets/dom.js") },
    Asset { name: "format.js", content_type: JS, body: include_bytes!("assets/format.js") },
    Asset { name: "signin.js", content_type: JS, body: include_bytes!("assets/signin.js") },
    Asset { name: "list.js", content_type: JS, body: include_bytes!("assets/list.js") },
    Asset { name: "create.js", content_type: JS, body: include_bytes!("assets/create.js") },
    Asset { name: "campaign.js", content_type: JS, body: include_bytes!("assets/campaign.js") },
    Asset { name: "upload.js", content_type: JS, body: include_bytes!("assets/upload.js") },
    Asset { name: "chart.js", content_type: JS, body: include_bytes!("assets/chart.js") },
    Asset { name: "group.js", content_type: JS, body: include_bytes!("assets/group.js") },
    Asset { name: "suppressions.js", content_type: JS, body: include_bytes!("assets/suppressions.js") },
];

/// Strong ETags of the assets, in [`ASSETS`] order, hashed once: browsers revalidate each
/// file (`no-cache`) and get a 304 while the binary is the same.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                format!("\"{}\"", hex::encode(&digest[..12]))
            })
            .collect()
    })
}

/// Answers a request for `path` (which starts with `/console`): a bundled file, a redirect
/// from `/console` to `/console/`, 405 for a method other than GET or HEAD, else 404.
pub fn serve(method: &Method, path: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
    if path == "/console" {
        let mut resp = empty(StatusCode::PERMANENT_REDIRECT);
        resp.headers_mut().insert(hyper::header::LOCATION, HeaderValue::from_static(PREFIX));
        return secured(resp);
    }
    let Some(index) = path.strip_prefix(PREFIX).and_then(|name| ASSETS.iter().position(|a| a.name == name)) else {
        return secured(ApiError::not_found(format!("no such console file: {path}")).into_response());
    };
    if method != Method::GET && method != Method::HEAD {
        let mut resp = ApiError::method_not_allowed().into_response();
        resp.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return secured(resp);
    }
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let fresh = headers
        .get(hyper::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut resp = if fresh {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        let mut resp = Response::new(Full::new(Bytes::from_static(asset.body)));
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        resp
    };
    let h = resp.headers_mut();
    // The files change with the binary only: revalidate each time, reuse on a 304.
    h.insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(hyper::header::ETAG, v);
    }
    secured(resp)
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// Adds the headers every console answer carries, errors included.
fn secured(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let h = resp.headers_mut();
    h.insert(hyper::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(hyper::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(hyper::header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(hyper::header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    h.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Response<Full<Bytes>> {
        serve(&Method::GET, path, &HeaderMap::new())
    }

    #[test]
    fn every_bundled_file_is_served_with_its_type_and_the_policy() {
        for asset in ASSETS {
            let resp = get(&format!("{PREFIX}{}", asset.name));
            assert_eq!(resp.status(), 200, "{}", asset.name);
            assert_eq!(resp.headers()[hyper::header::CONTENT_TYPE], asset.content_type);
            assert_eq!(resp.headers()[hyper::header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
            assert_eq!(resp.headers()[hyper::header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
    }

    #[test]
    fn names_outside_the_table_are_not_found() {
        for path in
            ["/console/../Cargo.toml", "/console/%2e%2e/", "/console/x/", "/console//", "/console/app.js/", "/consolex"]
        {
            assert_eq!(get(path).status(), 404, "{path}");
        }
    }

    #[test]
    fn the_bare_prefix_redirects_and_other_methods_are_refused() {
        let resp = get("/console");
        assert_eq!(resp.status(), 308);
        assert_eq!(resp.headers()[hyper::header::LOCATION], PREFIX);
        let resp = serve(&Method::POST, "/console/app.js", &HeaderMap::new());
        assert_eq!(resp.status(), 405);
    }

    #[test]
    fn a_matching_etag_answers_not_modified() {
        let tag = get("/console/app.js").headers()[hyper::header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::IF_NONE_MATCH, tag);
        assert_eq!(serve(&Method::GET, "/console/app.js", &headers).status(), 304);
    }

    #[test]
    fn scripts_never_turn_strings_into_markup_or_code_nor_name_another_origin() {
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(asset.body).unwrap_or_default();
            for sink in [".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                assert!(!text.contains(sink), "{}: uses {sink}", asset.name);
            }
            // The SVG namespace is a name, not a request.
            let origins = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!origins.contains("http://") && !origins.contains("https://"), "{}: another origin", asset.name);
        }
    }

    #[test]
    fn no_page_carries_inline_script_or_style() {
        for asset in ASSETS.iter().filter(|a| a.content_type == HTML) {
            let text = std::str::from_utf8(asset.body).unwrap_or_default();
            assert!(!text.contains("style="), "{}: inline style attribute", asset.name);
            assert!(!text.contains("<style"), "{}: inline style element", asset.name);
            assert!(!text.contains("<script>"), "{}: inline script", asset.name);
            assert!(!text.contains("http://") && !text.contains("https://"), "{}: another origin", asset.name);
        }
    }
}
