//! A campaign with `settings.sms_fallback` survives the store: written, reopened and read back
//! equal, and its stored bytes (version byte, then named msgpack, as `tests/store_v1.rs`
//! fixtures hold them) decode and encode back byte for byte. A campaign without the setting
//! stores no trace of it, which is what keeps the v1 fixtures' bytes unchanged.

use campaignd::domain::campaign::{CreateCampaign, Validation, SCHEDULE_HORIZON_MS};
use campaignd::domain::sms::AppSmsFacts;
use campaignd::domain::{CampaignSpec, Channel};
use campaignd::store::{CampaignRecord, SledStore, Store, StoreSettings};
use serde_json::{json, Value};

const NOW_MS: i64 = 1_795_400_000_000;

fn spec_of(request: Value) -> CampaignSpec {
    let sms = AppSmsFacts::new(campaignd::dev::DEV_SMS_SIGN_NAME, campaignd::dev::DEV_SMS_TEMPLATES);
    let app_sms = |app: &str| (app == "main").then_some(&sms);
    let rules = Validation {
        app_channel: &|_| Some(Channel::Getui),
        now_ms: NOW_MS,
        horizon_ms: SCHEDULE_HORIZON_MS,
        app_sms: &app_sms,
    };
    let create: CreateCampaign = serde_json::from_value(request).expect("the request parses");
    create.validate(&rules).expect("the request is valid")
}

fn texted() -> Value {
    json!({
        "name": "texted", "app": "main",
        "message": {"notification": {"title": "Hi ${name}", "body": "news"}},
        "settings": {"ttl_ms": 7_200_000, "sms_fallback": {
            "template_id": "1234567", "params": ["${name}", "12"], "after_ms": 60_000
        }}
    })
}

fn plain() -> Value {
    json!({"name": "plain", "app": "main", "message": {"notification": {"title": "t", "body": "b"}}})
}

#[tokio::test]
async fn a_record_with_sms_fallback_round_trips_through_the_store_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings { path: dir.path().join("sled"), cache_bytes: 1 << 20 };
    let store = SledStore::open(&settings).unwrap();
    let with = store.create(spec_of(texted()), NOW_MS).await.unwrap();
    let without = store.create(spec_of(plain()), NOW_MS + 1).await.unwrap();
    assert!(with.spec.settings.sms_fallback.is_some());
    store.close().await.unwrap();
    drop(store);

    // The stored bytes, as the v1 fixtures were taken.
    let db = sled::open(&settings.path).unwrap();
    let tree = db.open_tree("campaigns").unwrap();
    let bytes = |id: u64| tree.get(id.to_be_bytes()).unwrap().expect("the record is stored").to_vec();
    let (texted_bytes, plain_bytes) = (bytes(with.id), bytes(without.id));
    drop(tree);
    drop(db);
    let has = |b: &[u8], name: &str| b.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(has(&texted_bytes, "sms_fallback") && has(&texted_bytes, "template_id"));
    assert!(!has(&plain_bytes, "sms_fallback"), "an absent setting is not written at all");
    for stored in [&texted_bytes, &plain_bytes] {
        let (&version, body) = stored.split_first().unwrap();
        assert_eq!(version, 1);
        let rec: CampaignRecord = rmp_serde::from_slice(body).unwrap();
        let mut again = vec![version];
        rmp_serde::encode::write_named(&mut again, &rec).unwrap();
        assert_eq!(&again, stored, "re-encoded bytes differ");
    }

    // Reopened, the store reads both back as written.
    let store = SledStore::open(&settings).unwrap();
    let back = store.get(with.id).await.unwrap().unwrap();
    assert_eq!(back.spec, with.spec);
    let fallback = back.spec.settings.sms_fallback.unwrap();
    assert_eq!(
        (fallback.template_id.as_str(), fallback.params, fallback.after_ms),
        ("1234567", vec!["${name}".to_owned(), "12".to_owned()], 60_000)
    );
    assert_eq!(store.get(without.id).await.unwrap().unwrap().spec.settings.sms_fallback, None);
    store.close().await.unwrap();
}
