//! A store written before the vendor wire types left the stored campaign spec still opens, and
//! every campaign in it reads back as it was written.
//!
//! `tests/fixtures/store-v1/` was written by `write_store_v1_fixture` (ignored; it ran once, with
//! the code of that time): `sled/` is a whole store holding the campaigns of [`campaigns`], and
//! `records/NN-name.msgpack` are their stored values as the store held them, with
//! `records/NN-name.json` their JSON as the API shows it. The unit tests of `store::v1_records`
//! decode the record bytes and re-encode them byte for byte; this test opens the whole store.

use std::path::{Path, PathBuf};

use campaignd::domain::campaign::{CreateCampaign, Validation, SCHEDULE_HORIZON_MS};
use campaignd::domain::{Action, CampaignSpec, Channel};
use campaignd::store::{CampaignRecord, Change, SledStore, Store, StoreSettings};
use serde_json::{json, Value};

/// 2026-11-22T22:13:20Z: every time in the fixtures is after it.
const NOW_MS: i64 = 1_795_400_000_000;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

/// The campaigns of the fixture, in creation order (ids 1, 2, ...), each as a create request.
fn campaigns() -> Vec<(&'static str, Value)> {
    vec![
        (
            "getui-notification",
            json!({
                "name": "notification with APNs", "app": "main", "mode": "batch_single",
                "message": {
                    "notification": {
                        "title": "Hi ${name}", "body": "${pct}% off today", "click_type": "url",
                        "url": "https://shop.example/s?u=${name}", "logo": "icon.png",
                        "logo_url": "https://shop.example/i.png", "ring": false, "vibrate": true
                    },
                    "ios": {
                        "title": "Hi ${name}", "body": "Sale", "subtitle": "today", "loc_key": "LK",
                        "loc_args": ["a", "b"], "title_loc_key": "TLK", "title_loc_args": ["c"],
                        "action_loc_key": "ALK", "launch_image": "launch.png", "badge": "+1",
                        "sound": "silent", "category": "ACTIONABLE", "content_available": true,
                        "payload": {"deep": "link", "n": 1}
                    }
                },
                "settings": {
                    "speed": 500, "ttl_ms": 3_600_000, "network_type": "wifi", "group": "spring-2026",
                    "schedule_at": "202611250900", "replay": "at_most_once",
                    "display_window": {"begin": "202611250900", "end": "202611251800"}
                }
            }),
        ),
        (
            "getui-intent-payload",
            json!({
                "name": "notification with a tap payload", "app": "main",
                "message": {"notification": {
                    "title": "t", "body": "b", "transmission_content": "{\"k\":1}", "intent": "intent:#Intent;end"
                }},
                "settings": {"offline": false}
            }),
        ),
        (
            "getui-transmission-ios",
            json!({
                "name": "transmission", "app": "main",
                "message": {"transmission": "{\"sync\":true}", "ios": {"body": "silent sync", "content_available": true}}
            }),
        ),
        (
            "getui-link",
            json!({
                "name": "link", "app": "main",
                "message": {"link": {"title": "New", "body": "See it", "url": "https://x.example/", "logo": "l.png",
                                     "ring": false, "vibrate": false}}
            }),
        ),
        (
            "getui-popup-download",
            json!({
                "name": "popup", "app": "main",
                "message": {"popup_download": {
                    "title": "Update", "body": "v2 is out", "logo": "u.png", "popup_title": "Install?",
                    "popup_content": "30 MB", "popup_image": "https://x.example/p.png",
                    "download_title": "app v2", "download_url": "https://x.example/a.apk"
                }}
            }),
        ),
        (
            "getui-app-tags",
            json!({
                "name": "app push with every condition", "app": "main",
                "message": {"notification": {"title": "All", "body": "of you"}},
                "audience": {"conditions": [
                    {"key": "phone_type", "values": ["ANDROID"]},
                    {"key": "region", "values": ["杭州", "51010000"], "opt": "or"},
                    {"key": "custom_tag", "values": ["vip", "sports"], "opt": "and"},
                    {"key": "portrait", "values": ["0001"], "opt": "not"}
                ]},
                "settings": {"schedule_at": "202611250900", "schedule_via": "upstream", "ttl_ms": 600_000}
            }),
        ),
        (
            "getui-app-all",
            json!({
                "name": "app push to everyone", "app": "main", "mode": "app",
                "message": {"transmission": "ping"}
            }),
        ),
        (
            "wecom-text",
            json!({
                "name": "text", "app": "staff",
                "message": {"wecom": {"msgtype": "text", "text": {"content": "Standup at 10"}}},
                "settings": {"speed": 100, "group": "ops"}
            }),
        ),
        (
            "wecom-textcard",
            json!({
                "name": "card", "app": "staff",
                "message": {"wecom": {"msgtype": "textcard", "textcard": {
                    "title": "Leave approved", "description": "<div class=\"gray\">2026-11-24</div>",
                    "url": "https://hr.example/l/1", "btntxt": "详情"
                }}}
            }),
        ),
        (
            "wecom-textcard-plain",
            json!({
                "name": "card without button", "app": "staff",
                "message": {"wecom": {"msgtype": "textcard", "textcard": {
                    "title": "t", "description": "d", "url": "https://hr.example/"
                }}}
            }),
        ),
        (
            "wecom-news",
            json!({
                "name": "news", "app": "staff",
                "message": {"wecom": {"msgtype": "news", "news": {"articles": [
                    {"title": "One", "description": "first", "url": "https://n.example/1", "picurl": "https://n.example/1.png"},
                    {"title": "Two", "url": "https://n.example/2"}
                ]}}}
            }),
        ),
        (
            "wecom-markdown",
            json!({
                "name": "markdown", "app": "staff",
                "message": {"wecom": {"msgtype": "markdown", "markdown": {"content": "**bold** `code`"}}}
            }),
        ),
    ]
}

/// A create request validated as the API does, at [`NOW_MS`].
fn spec_of(request: &Value) -> CampaignSpec {
    let channel = |app: &str| match app {
        "main" => Some(Channel::Getui),
        "staff" => Some(Channel::Wecom),
        _ => None,
    };
    let rules =
        Validation { app_channel: &channel, now_ms: NOW_MS, horizon_ms: SCHEDULE_HORIZON_MS, app_sms: &|_| None };
    let create: CreateCampaign = serde_json::from_value(request.clone()).expect("a fixture request parses");
    create.validate(&rules).expect("a fixture request is valid")
}

fn record_file(id: u64, name: &str, ext: &str) -> PathBuf {
    fixture_dir().join("records").join(format!("{id:02}-{name}.{ext}"))
}

/// Copies a folder (the fixture store) so the test opens a copy and leaves the fixture as it is.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Writes the fixture with the code of the day. It ran once, before the stored spec stopped
/// embedding vendor wire types; running it again would replace that evidence.
#[tokio::test]
#[ignore = "writes tests/fixtures/store-v1; run only to make a new fixture"]
async fn write_store_v1_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("records")).unwrap();
    let store = SledStore::open(&StoreSettings { path: dir.join("sled"), cache_bytes: 1 << 20 }).unwrap();
    for (i, (_, request)) in campaigns().iter().enumerate() {
        let rec = store.create(spec_of(request), NOW_MS + i as i64).await.unwrap();
        // A few records past draft, so the indexes and the optional fields are exercised too.
        if i == 1 {
            store.change(rec.id, Change::Act(Action::Cancel, NOW_MS + 100)).await.unwrap();
        }
        if i == 2 {
            store.change(rec.id, Change::SetListTask("RASL_1122_abcdef".into())).await.unwrap();
        }
    }
    store.close().await.unwrap();
    drop(store);
    let db = sled::open(dir.join("sled")).unwrap();
    let tree = db.open_tree("campaigns").unwrap();
    for (i, (name, _)) in campaigns().iter().enumerate() {
        let id = i as u64 + 1;
        let bytes = tree.get(id.to_be_bytes()).unwrap().expect("the record was stored");
        std::fs::write(record_file(id, name, "msgpack"), &bytes).unwrap();
    }
    drop(tree);
    drop(db);
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&dir.join("sled"), copy.path());
    let store = SledStore::open(&StoreSettings { path: copy.path().to_path_buf(), cache_bytes: 1 << 20 }).unwrap();
    for (i, (name, _)) in campaigns().iter().enumerate() {
        let id = i as u64 + 1;
        let rec = store.get(id).await.unwrap().unwrap();
        let text = serde_json::to_string_pretty(&rec).unwrap();
        std::fs::write(record_file(id, name, "json"), text + "\n").unwrap();
    }
    store.close().await.unwrap();
}

fn json_fixture(id: u64, name: &str) -> Value {
    let text = std::fs::read_to_string(record_file(id, name, "json")).expect("the JSON fixture exists");
    serde_json::from_str(&text).unwrap()
}

/// The whole v1 store opens with today's code: every campaign reads back, its JSON is what the
/// v1 code showed, and its spec is what validating the same request gives today.
#[tokio::test]
async fn a_store_written_before_the_domain_types_opens_and_reads_back() {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir().join("sled"), copy.path());
    let store = SledStore::open(&StoreSettings { path: copy.path().to_path_buf(), cache_bytes: 1 << 20 }).unwrap();
    let listed: Vec<CampaignRecord> = store.list().await.unwrap();
    assert_eq!(listed.len(), campaigns().len());
    for (i, (name, request)) in campaigns().iter().enumerate() {
        let id = i as u64 + 1;
        let rec = store.get(id).await.unwrap().unwrap_or_else(|| panic!("campaign {id} ({name}) is gone"));
        assert_eq!(serde_json::to_value(&rec).unwrap(), json_fixture(id, name), "{name}: JSON as v1 showed it");
        assert_eq!(rec.spec, spec_of(request), "{name}: the spec validating its request gives today");
    }
    // The store takes writes after opening, as a daemon that was upgraded would.
    let made = store.create(spec_of(&campaigns()[0].1), NOW_MS).await.unwrap();
    assert!(made.id as usize > campaigns().len(), "a new id, after every stored one");
    store.close().await.unwrap();
}
