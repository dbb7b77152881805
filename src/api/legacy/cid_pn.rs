//! The legacy cid↔phone calls (`bind_cid_pn`, `unbind_cid_pn`, `query_cid_pn`) on the same
//! bindings as `/v1/apps/{app}/cid-pn`.
//!
//! The SDKs send md5(phone), never the number, and campaignd texts only real numbers: a legacy
//! bind looks the md5 up among the app's bindings made with real numbers (`/v1` bind or
//! import) and moves that number to the cid, sealed anew for it. With no match the cid is bound
//! to the md5 alone; it keeps the one-to-one rule, and its SMS outcome is `no_number`.

use serde_json::{json, Value};

use super::{Cx, Refusal};
use crate::api::bindings::{checked, cid_text, judge_cids};
use crate::domain::sms::{check_call_size, check_cid, BindCode, BindRefusal};
use crate::domain::CompactCid;
use crate::seal::{aad, SealKey};
use crate::store::PhoneBinding;
use crate::wire::getui_legacy::request::{BindRequest, CidsRequest};

/// One `batchRet` entry, with the code as the seed writes it (a string).
fn ret(cid: &str, code: u8, reason: Option<String>) -> Value {
    let mut v = json!({"cid": cid, "code": code.to_string()});
    if let Some(r) = reason {
        v["msg"] = json!(r);
    }
    v
}

fn refused(cid: &str, r: BindRefusal) -> Value {
    ret(cid, r.code.code(), Some(r.reason))
}

fn answer(batch_ret: Vec<Value>) -> Value {
    json!({"result": "0", "batchRet": batch_ret})
}

fn seal_key<'a>(cx: &'a Cx<'_>) -> Result<&'a SealKey, Refusal> {
    checked(cx.state, &cx.app.name).map_err(Refusal::from)
}

fn size(given: usize) -> Result<(), Refusal> {
    check_call_size(given).map_err(|e| Refusal::new("OverLimit", e.to_string()))
}

/// A pn as the SDKs send it: md5 of the phone number, 32 hex digits (any case).
fn pn_md5(pn: &str) -> Result<String, BindRefusal> {
    let pn = pn.trim();
    if pn.is_empty() {
        return Err(BindRefusal { code: BindCode::PhoneEmpty, reason: "pn is empty".into() });
    }
    if pn.len() != 32 || !pn.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BindRefusal {
            code: BindCode::Other,
            reason: "pn must be md5(phone number), 32 hex digits".into(),
        });
    }
    Ok(pn.to_ascii_lowercase())
}

/// `bind_cid_pn`: `{cid: md5(phone)}`, at most 50.
pub(super) async fn bind(cx: &Cx<'_>, req: BindRequest) -> Result<Value, Refusal> {
    cx.check_app_id(Some(&req.app_id))?;
    let key = seal_key(cx)?;
    size(req.cidpnlist.len())?;
    let mut rets = Vec::with_capacity(req.cidpnlist.len());
    let mut pairs = Vec::new();
    for (i, (cid, pn)) in req.cidpnlist.iter().enumerate() {
        let checked = check_cid(cid).and_then(|c| Ok((c, pn_md5(pn)?)));
        match checked {
            Err(r) => rets.push(refused(cid, r)),
            Ok((c, md5)) => {
                let sealed = resolve(cx, key, c, &md5).await?;
                pairs.push((i, PhoneBinding { cid: c, sealed, pn_md5: md5 }));
                rets.push(ret(cid, BindCode::Ok.code(), None));
            }
        }
    }
    if !pairs.is_empty() {
        let (at, bindings): (Vec<usize>, Vec<PhoneBinding>) = pairs.into_iter().unzip();
        if let Err(e) = cx.state.store.bind_phones(&cx.app.name, bindings).await {
            tracing::error!(app = cx.app.name, error = %e, "cannot store legacy cid-phone bindings");
            for i in at {
                let cid = rets[i]["cid"].as_str().unwrap_or_default().to_owned();
                rets[i] = ret(&cid, BindCode::Other.code(), Some("the store failed; try again".into()));
            }
        }
    }
    Ok(answer(rets))
}

/// The number bound elsewhere under this md5, sealed for `cid`; empty when there is none (or
/// it no longer opens).
async fn resolve(cx: &Cx<'_>, key: &SealKey, cid: CompactCid, md5: &str) -> Result<Vec<u8>, Refusal> {
    let app = cx.app.name.as_str();
    let Some((owner, sealed)) = cx.state.store.binding_of_pn(app, md5).await? else { return Ok(Vec::new()) };
    if sealed.is_empty() {
        return Ok(Vec::new());
    }
    match key.open(&sealed, &aad(&[app, &cid_text(&owner)])) {
        Ok(number) => Ok(key.seal(&number, &aad(&[app, &cid_text(&cid)]))),
        Err(_) => Ok(Vec::new()),
    }
}

/// `unbind_cid_pn`: `cids`, at most 50; 7 for a cid that was not bound.
pub(super) async fn unbind(cx: &Cx<'_>, req: CidsRequest) -> Result<Value, Refusal> {
    let Judged { mut rets, at, cids } = judged(cx, &req)?;
    if !cids.is_empty() {
        let done = cx.state.store.unbind_phones(&cx.app.name, cids).await?;
        for (i, was_bound) in at.into_iter().zip(done) {
            if !was_bound {
                rets[i] = not_bound(&req.cids[i]);
            }
        }
    }
    Ok(answer(rets))
}

/// `query_cid_pn`: `cids`, at most 50; the md5 of each bound cid's phone as `pn`, else 7.
pub(super) async fn query(cx: &Cx<'_>, req: CidsRequest) -> Result<Value, Refusal> {
    let Judged { mut rets, at, cids } = judged(cx, &req)?;
    if !cids.is_empty() {
        let found = cx.state.store.bindings_of(&cx.app.name, cids).await?;
        for (i, binding) in at.into_iter().zip(found) {
            rets[i] = match binding {
                Some((md5, _)) => json!({"cid": req.cids[i], "code": "0", "pn": md5}),
                None => not_bound(&req.cids[i]),
            };
        }
    }
    Ok(answer(rets))
}

/// An unbind or query call checked: the answers so far (malformed cids refused, the rest 0)
/// and the well-formed cids with their places.
struct Judged {
    rets: Vec<Value>,
    at: Vec<usize>,
    cids: Vec<CompactCid>,
}

fn judged(cx: &Cx<'_>, req: &CidsRequest) -> Result<Judged, Refusal> {
    cx.check_app_id(Some(&req.app_id))?;
    seal_key(cx)?;
    size(req.cids.len())?;
    let (rets, valid) = judge_cids(&req.cids);
    let rets = rets.iter().map(|r| ret(&r.cid, r.code, r.reason.clone())).collect();
    let (at, cids) = valid.into_iter().unzip();
    Ok(Judged { rets, at, cids })
}

fn not_bound(cid: &str) -> Value {
    ret(cid, BindCode::NotBound.code(), Some("no phone number is bound to this cid".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pn_must_be_an_md5() {
        assert_eq!(pn_md5(" E10ADC3949BA59ABBE56E057F20F883E ").unwrap(), "e10adc3949ba59abbe56e057f20f883e");
        assert_eq!(pn_md5("").unwrap_err().code, BindCode::PhoneEmpty);
        assert_eq!(pn_md5("13800138000").unwrap_err().code, BindCode::Other, "a number, not its md5");
    }
}
