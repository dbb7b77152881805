//! The legacy Getui SDK's protobuf payloads, mutated as raw bytes (the target base64-encodes
//! them as the SDK does): byte 0 even, `clientData` (`Transparent`) read into a template and
//! on into a campaign message; odd, `singleDatas` (`SingleBatchRequest`) read into batch items,
//! each item's JSON into a single push whose own `clientData` is read the same way.
#![no_main]

use base64::Engine;
use campaignd::domain::legacy::{apns_of, message_of, settings_of, sms_fallback_of};
use campaignd::wire::getui_legacy::{
    decode_client_data, decode_single_datas, parse_batch_item, read_template, PushFields,
};
use libfuzzer_sys::fuzz_target;

/// Batch items read per input.
const MAX_ITEMS: usize = 64;

fn template(client_data: &str, transmission: &str, fields: &PushFields) {
    let Ok(transparent) = decode_client_data(client_data) else { return };
    let Ok(t) = read_template(&transparent, transmission) else { return };
    let _ = message_of(&t);
    let _ = settings_of(fields, &t);
    if let Some(apns) = &t.apns_json {
        let _ = apns_of(apns);
    }
    if let Some(sms) = &t.sms {
        let vars = vec!["name".to_owned(), "amount".to_owned()];
        let _ = sms_fallback_of(sms, Some(&vars));
        let _ = sms_fallback_of(sms, None);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let b64 = base64::engine::general_purpose::STANDARD.encode(rest);
    if pick & 1 == 0 {
        let fields = PushFields { client_data: b64.clone(), ..PushFields::default() };
        template(&b64, "{\"k\":1}", &fields);
    } else if let Ok(batch) = decode_single_datas(&b64) {
        for item in batch.batch_item.iter().take(MAX_ITEMS) {
            if let Ok(single) = parse_batch_item(item) {
                template(&single.push.client_data, &single.push.transmission_content, &single.push);
            }
        }
    }
});
