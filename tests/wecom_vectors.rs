//! WXBizMsgCrypt against every vector of `shared/reference/wecom-vectors.json` (from the
//! official samples and wechatpy, re-verified independently).

use campaignd::wecom::{signature, MsgCrypt};

fn vectors() -> Vec<serde_json::Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/wecom-vectors.json");
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e} (shared/ sits beside the project)"));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{} lacks {k}", v["id"]))
}

#[test]
fn every_vector_passes() {
    let all = vectors();
    assert!(all.len() >= 7);
    for v in &all {
        let id = s(v, "id");
        let c = MsgCrypt::new(s(v, "token"), s(v, "encoding_aes_key"), s(v, "receiveid")).unwrap();
        match s(v, "kind") {
            "verify_url" => {
                let plain = c.verify_url(s(v, "msg_signature"), s(v, "timestamp"), s(v, "nonce"), s(v, "encrypt"));
                assert_eq!(plain.as_deref(), Ok(s(v, "expected_plaintext")), "{id}");
            }
            "verify_url_must_fail" => {
                let err =
                    c.verify_url(s(v, "msg_signature"), s(v, "timestamp"), s(v, "nonce"), s(v, "encrypt")).unwrap_err();
                assert_eq!(i64::from(err.code()), v["expected_error"].as_i64().unwrap(), "{id}");
            }
            "decrypt" => {
                let plain =
                    c.decrypt(s(v, "msg_signature"), s(v, "timestamp"), s(v, "nonce"), s(v, "encrypt")).unwrap();
                assert_eq!(String::from_utf8(plain).unwrap(), s(v, "expected_plaintext"), "{id}");
            }
            "encrypt" => {
                let random16: [u8; 16] = s(v, "random16").as_bytes().try_into().unwrap();
                let r = c.encrypt(s(v, "plaintext").as_bytes(), s(v, "timestamp"), s(v, "nonce"), random16).unwrap();
                assert_eq!(r.encrypt, s(v, "expected_encrypt"), "{id}");
                assert_eq!(r.msg_signature, s(v, "expected_msg_signature"), "{id}");
                assert_eq!(signature(s(v, "token"), s(v, "timestamp"), s(v, "nonce"), &r.encrypt), r.msg_signature);
            }
            other => panic!("{id}: unknown kind {other}"),
        }
    }
}
