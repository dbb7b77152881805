//! The legacy Getui SDK ingress (`POST /apiex.htm`) from the body up: gzip inflation with a
//! cap (byte 0 odd: the rest is a gzip body), the envelope, every action's request struct, and
//! for push calls what `api::legacy::pushes` does next: `clientData` (base64 protobuf) into a
//! template, the template into a campaign message, settings, audience and SMS fallback, and the
//! campaign validated as `/v1` validates it; `singleDatas` into batch items and their pushes.
//! `legacy_proto` mutates the protobuf payloads directly.
#![no_main]

use campaignd::domain::campaign::{CreateCampaign, CreateSettings, Mode, Validation, SCHEDULE_HORIZON_MS};
use campaignd::domain::legacy::{audience_of, content_settings_of, message_of, settings_of, sms_fallback_of};
use campaignd::domain::Channel;
use campaignd::wire::getui_legacy::{
    decode_client_data, decode_single_datas, inflate_gzip, parse_batch_item, read_template, AppPushRequest,
    BatchRequest, BindRequest, CidsRequest, Connect, ContentIdRequest, Envelope, ListRequest, PushFields,
    SingleRequest, StopTaskRequest, TaskRequest,
};
use libfuzzer_sys::fuzz_target;

/// Cap on the inflated body: small, so that a fuzzed gzip bomb costs little (the daemon's is
/// 32 MiB; the code path is the same).
const MAX_INFLATED: usize = 1 << 20;
/// Batch items read per body (the daemon reads up to 5000).
const MAX_ITEMS: usize = 64;

/// A push's message as the handlers build it: template, message, settings, SMS fallback, and
/// the whole campaign validated.
fn push(fields: &PushFields, mode: Mode) {
    let Ok(transparent) = decode_client_data(&fields.client_data) else { return };
    let Ok(t) = read_template(&transparent, &fields.transmission_content) else { return };
    let settings = settings_of(fields, &t);
    campaign(&t, mode, settings);
}

fn campaign(t: &campaignd::wire::getui_legacy::LegacyTemplate, mode: Mode, mut settings: CreateSettings) {
    if let Some(sms) = &t.sms {
        let vars = vec!["name".to_owned(), "amount".to_owned()];
        if let Ok(f) = sms_fallback_of(sms, Some(&vars)) {
            settings.sms_fallback = Some(f);
        }
    }
    let Ok(message) = message_of(t) else { return };
    let request = CreateCampaign {
        name: "legacy".into(),
        app: "main".into(),
        channel: None,
        mode,
        message,
        settings,
        audience: None,
    };
    let rules = Validation {
        app_channel: &|_| Some(Channel::Getui),
        now_ms: 1_767_225_600_000,
        horizon_ms: SCHEDULE_HORIZON_MS,
        app_sms: &|_| None,
    };
    let _ = request.validate(&rules);
}

fn json_body(body: &[u8]) {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else { return };
    let _ = serde_json::from_slice::<Connect>(body);
    let _ = serde_json::from_slice::<AppPushRequest>(body);
    let _ = serde_json::from_slice::<ListRequest>(body);
    let _ = serde_json::from_slice::<BindRequest>(body);
    let _ = serde_json::from_slice::<CidsRequest>(body);
    let _ = serde_json::from_slice::<TaskRequest>(body);
    let _ = serde_json::from_slice::<StopTaskRequest>(body);
    if let Ok(single) = serde_json::from_slice::<SingleRequest>(body) {
        push(&single.push, Mode::BatchSingle);
    }
    if let Ok(content) = serde_json::from_slice::<ContentIdRequest>(body) {
        let _ = audience_of(&content);
        if let Ok(transparent) = decode_client_data(&content.push.client_data) {
            if let Ok(t) = read_template(&transparent, &content.push.transmission_content) {
                let settings = content_settings_of(&content, &t);
                campaign(&t, if envelope.action.contains("App") { Mode::App } else { Mode::List }, settings);
            }
        }
    }
    if let Ok(batch) = serde_json::from_slice::<BatchRequest>(body) {
        if let Ok(items) = decode_single_datas(&batch.single_datas) {
            for item in items.batch_item.iter().take(MAX_ITEMS) {
                if let Ok(single) = parse_batch_item(item) {
                    push(&single.push, Mode::BatchSingle);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    if flags & 1 == 1 {
        if let Ok(body) = inflate_gzip(rest, MAX_INFLATED) {
            json_body(&body);
        }
    } else {
        json_body(rest);
    }
});
