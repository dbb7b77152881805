//! Campaign records stored before the vendor wire types left the domain (the fixtures of
//! `tests/fixtures/store-v1/records`, written by the code of that time) decode with today's
//! types and encode back to the very same bytes, so no store needs a migration.

use super::codec::{decode, encode_named};
use super::CampaignRecord;

/// Every record fixture: name and stored bytes (version byte, then named msgpack).
const RECORDS: [(&str, &[u8]); 12] = [
    ("01-getui-notification", include_bytes!("../../tests/fixtures/store-v1/records/01-getui-notification.msgpack")),
    (
        "02-getui-intent-payload",
        include_bytes!("../../tests/fixtures/store-v1/records/02-getui-intent-payload.msgpack"),
    ),
    (
        "03-getui-transmission-ios",
        include_bytes!("../../tests/fixtures/store-v1/records/03-getui-transmission-ios.msgpack"),
    ),
    ("04-getui-link", include_bytes!("../../tests/fixtures/store-v1/records/04-getui-link.msgpack")),
    (
        "05-getui-popup-download",
        include_bytes!("../../tests/fixtures/store-v1/records/05-getui-popup-download.msgpack"),
    ),
    ("06-getui-app-tags", include_bytes!("../../tests/fixtures/store-v1/records/06-getui-app-tags.msgpack")),
    ("07-getui-app-all", include_bytes!("../../tests/fixtures/store-v1/records/07-getui-app-all.msgpack")),
    ("08-wecom-text", include_bytes!("../../tests/fixtures/store-v1/records/08-wecom-text.msgpack")),
    ("09-wecom-textcard", include_bytes!("../../tests/fixtures/store-v1/records/09-wecom-textcard.msgpack")),
    (
        "10-wecom-textcard-plain",
        include_bytes!("../../tests/fixtures/store-v1/records/10-wecom-textcard-plain.msgpack"),
    ),
    ("11-wecom-news", include_bytes!("../../tests/fixtures/store-v1/records/11-wecom-news.msgpack")),
    ("12-wecom-markdown", include_bytes!("../../tests/fixtures/store-v1/records/12-wecom-markdown.msgpack")),
];

fn record(name: &str) -> CampaignRecord {
    let (_, bytes) = RECORDS.iter().find(|(n, _)| *n == name).expect("a fixture of that name");
    decode(bytes).expect("the v1 record decodes")
}

#[test]
fn v1_records_decode_and_encode_back_to_the_same_bytes() {
    for (name, bytes) in RECORDS {
        let rec: CampaignRecord = decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(encode_named(&rec).unwrap(), bytes, "{name}: re-encoded bytes differ");
    }
}

#[test]
fn v1_records_decode_to_their_json() {
    for (name, bytes) in RECORDS {
        let rec: CampaignRecord = decode(bytes).unwrap();
        let path = format!("{}/tests/fixtures/store-v1/records/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_value(&rec).unwrap(), json, "{name}");
    }
}

#[test]
fn v1_record_fields_read_back() {
    let n = record("01-getui-notification");
    let note = n.spec.message.notification.as_ref().unwrap();
    assert_eq!((note.title.as_str(), note.click_type.as_str(), note.ring), ("Hi ${name}", "url", false));
    let ios = n.spec.message.ios.as_ref().unwrap();
    assert_eq!((ios.badge.as_deref(), ios.loc_args.len(), ios.content_available), (Some("+1"), 2, true));
    assert_eq!(n.spec.settings.display_ms.map(|(b, e)| e - b), Some(9 * 3_600_000));
    assert_eq!(record("02-getui-intent-payload").spec.settings.ttl_ms, Some(-1));
    assert_eq!(record("03-getui-transmission-ios").list_taskid.as_deref(), Some("RASL_1122_abcdef"));
    let app = record("06-getui-app-tags");
    let conditions = &app.spec.audience.as_ref().unwrap().conditions;
    assert_eq!(conditions.len(), 4);
    assert_eq!(conditions[1].values, ["33010000", "51010000"]);
    for name in ["08-wecom-text", "09-wecom-textcard", "10-wecom-textcard-plain", "11-wecom-news", "12-wecom-markdown"]
    {
        assert!(record(name).spec.message.wecom.is_some(), "{name}");
    }
}

/// What the v1 bytes decode to, in the domain types that replaced the wire ones.
#[test]
fn v1_records_hold_domain_types() {
    use crate::domain::campaign::TagMatch;
    use crate::domain::message::{WecomArticle, WecomMessage};
    let app = record("06-getui-app-tags");
    let opts: Vec<TagMatch> = app.spec.audience.unwrap().conditions.iter().map(|c| c.opt).collect();
    assert_eq!(opts, [TagMatch::Or, TagMatch::Or, TagMatch::And, TagMatch::Not]);
    let wecom = |name: &str| record(name).spec.message.wecom.unwrap();
    assert_eq!(wecom("08-wecom-text"), WecomMessage::Text { content: "Standup at 10".into() });
    assert_eq!(
        wecom("09-wecom-textcard"),
        WecomMessage::TextCard {
            title: "Leave approved".into(),
            description: "<div class=\"gray\">2026-11-24</div>".into(),
            url: "https://hr.example/l/1".into(),
            btntxt: Some("详情".into()),
        }
    );
    assert!(matches!(wecom("10-wecom-textcard-plain"), WecomMessage::TextCard { btntxt: None, .. }));
    let WecomMessage::News { articles } = wecom("11-wecom-news") else { panic!("a news message") };
    assert_eq!(
        articles[1],
        WecomArticle { title: "Two".into(), description: None, url: "https://n.example/2".into(), picurl: None }
    );
    assert_eq!(articles[0].picurl.as_deref(), Some("https://n.example/1.png"));
    assert_eq!(wecom("12-wecom-markdown"), WecomMessage::Markdown { content: "**bold** `code`".into() });
}
