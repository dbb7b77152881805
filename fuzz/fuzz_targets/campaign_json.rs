//! Campaign JSON (`POST /v1/campaigns`): the body is deserialized into `CreateCampaign` as
//! `api::campaigns` does (serde_path_to_error, nothing after the object), validated against
//! apps like the shipped configuration's (a Getui app `main` with an SMS gateway, a WeCom app
//! `staff`), and a valid Getui campaign is rendered into its request bodies (a copy written
//! into a batch body as the dispatcher writes it, among them).
#![no_main]

use campaignd::dev::{DEV_SMS_SIGN_NAME, DEV_SMS_TEMPLATES};
use campaignd::domain::campaign::{CampaignSpec, CreateCampaign, Validation, SCHEDULE_HORIZON_MS};
use campaignd::domain::sms::AppSmsFacts;
use campaignd::domain::Channel;
use campaignd::render::getui::{batch, AppPush, GetuiRenderer};
use campaignd::wire::getui::compact::BatchBody;
use libfuzzer_sys::fuzz_target;

/// A fixed "now" (2026-01-01T00:00:00Z), so a schedule's validity does not depend on the clock.
const NOW_MS: i64 = 1_767_225_600_000;

fn parse(body: &[u8]) -> Option<CreateCampaign> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = serde_path_to_error::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(request)
}

fn channel(app: &str) -> Option<Channel> {
    match app {
        "main" | "shop" => Some(Channel::Getui),
        "staff" => Some(Channel::Wecom),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = parse(data) else { return };
    let sms = AppSmsFacts::new(DEV_SMS_SIGN_NAME, DEV_SMS_TEMPLATES);
    let app_sms = |app: &str| (app == "main").then_some(&sms);
    let rules =
        Validation { app_channel: &channel, now_ms: NOW_MS, horizon_ms: SCHEDULE_HORIZON_MS, app_sms: &app_sms };
    let Ok(spec) = request.validate(&rules) else { return };
    use_spec(&spec);
});

fn use_spec(spec: &CampaignSpec) {
    if spec.channel == Channel::Getui {
        let r = GetuiRenderer::new(spec);
        let values: Vec<(String, String)> = spec
            .message
            .variables()
            .into_iter()
            .map(|name| {
                let value = format!("<{name}>");
                (name, value)
            })
            .collect();
        let lookup = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let message = r.message(&lookup);
        let mut body = BatchBody::default();
        let written = r.write_single(&mut body, "req-1", &[0x5a; 16], &message, &lookup);
        let single = r.single("req-1".into(), "5a".repeat(16).into(), message);
        let whole = serde_json::to_vec(&batch(vec![single]));
        // However the copy was written (from the template's pieces or serialized), the body is
        // what serde_json writes for the same single push.
        if let (Ok(()), Ok(whole)) = (written, whole) {
            assert_eq!(body.into_json(), whole);
        }
        let _ = serde_json::to_vec(&r.list_message("req-2"));
        match r.app_push("req-3") {
            AppPush::All(p) => {
                let _ = serde_json::to_vec(&p);
            }
            AppPush::Tag(p) => {
                let _ = serde_json::to_vec(&p);
            }
        }
    }
}
