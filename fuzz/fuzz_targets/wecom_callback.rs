//! The WeCom callback (`/wecom/{agent}/callback`) as `wecom::callback` runs it: query parsing,
//! freshness and signature checks, WXBizMsgCrypt decryption, the envelope and message XML, and
//! the choice of effect and passive reply, with the agent of the shipped configuration's app
//! `staff`. A random signature never matches, so the first byte picks how far in the input
//! goes:
//!
//! - 0: raw: the first line is the query string, the rest the POST body (and the echostr);
//!   the XML parsers also read the rest directly;
//! - 1: signed ciphertext: the rest is the ciphertext, base64-encoded and correctly signed, so
//!   decryption, padding, length and receive-id checks see hostile bytes;
//! - 2: signed plaintext: the rest is the decrypted message, correctly encrypted and signed, so
//!   the message XML, the sender check, the effect and the sealed reply see hostile XML.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use campaignd::config::Config;
use campaignd::dev::{DEV_WECOM_AES_KEY, DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_CORP_ID};
use campaignd::wecom::callback::{CallbackAgent, CallbackQuery};
use campaignd::wecom::{parse_envelope, parse_inbound, signature, MsgCrypt};
use libfuzzer_sys::fuzz_target;

/// The deliveries' timestamp and the agent's "now".
const NOW_S: i64 = 1_767_225_600;

fn agent() -> &'static CallbackAgent {
    static AGENT: OnceLock<CallbackAgent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let text = include_str!("../../config/campaignd.toml");
        let config = Config::from_toml(text, Path::new("config/campaignd.toml")).expect("the shipped config is valid");
        config.callback_agent_with_env("staff", |_| None).expect("staff resolves").expect("staff has a callback")
    })
}

fn envelope(encrypt: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{DEV_WECOM_CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>\
         <AgentID><![CDATA[1000002]]></AgentID></xml>"
    )
}

fn signed_query(encrypt: &str) -> CallbackQuery {
    let timestamp = NOW_S.to_string();
    let nonce = "1372623149".to_owned();
    let msg_signature = signature(DEV_WECOM_CALLBACK_TOKEN, &timestamp, &nonce, encrypt);
    CallbackQuery { msg_signature, timestamp, nonce, echostr: Some(encrypt.to_owned()) }
}

/// Everything the HTTP edge does with a query and a body.
fn deliver(agent: &CallbackAgent, q: &CallbackQuery, body: &str) {
    let _ = agent.verify_url(q, NOW_S);
    match agent.receive(q, body, NOW_S) {
        Ok(received) => {
            let _ = (received.inbound.dedup_key(), received.inbound.kind.msg_type());
            if let Some(reply) = &received.reply {
                let _ = agent.seal_reply(reply, &received.inbound.from_user, NOW_S, "nonce");
            }
        }
        Err(refusal) => {
            let _ = (refusal.label(), refusal.status(), refusal.code(), refusal.public_message());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let agent = agent();
    match mode % 3 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            let (query, body) = text.split_once('\n').unwrap_or((&text, ""));
            let _ = parse_envelope(body);
            if let Ok(inbound) = parse_inbound(body) {
                let _ = (inbound.dedup_key(), inbound.kind.msg_type());
            }
            if let Ok(q) = CallbackQuery::parse(query) {
                deliver(agent, &q, body);
            }
        }
        1 => {
            let encrypt = base64::engine::general_purpose::STANDARD.encode(rest);
            deliver(agent, &signed_query(&encrypt), &envelope(&encrypt));
        }
        _ => {
            let Ok(crypt) = MsgCrypt::new(DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_AES_KEY, DEV_WECOM_CORP_ID) else {
                return;
            };
            let Ok(sealed) = crypt.encrypt(rest, &NOW_S.to_string(), "1372623149", *b"0123456789abcdef") else {
                return;
            };
            deliver(agent, &signed_query(&sealed.encrypt), &envelope(&sealed.encrypt));
        }
    }
});
