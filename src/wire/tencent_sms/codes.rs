//! Tencent Cloud SMS error codes: the names SendSms answers with (request-level in
//! `Response.Error.Code`, per number in `SendStatusSet[].Code`) and what each means for the
//! sender.
//!
//! Source: `shared/reference/getui-legacy-and-sms.md` §3.1 (the SendSms error-code list, the
//! SDK retryer's `RequestLimitExceeded*`, the API 3.0 common codes). `AuthFailure.SignatureExpire`,
//! `AuthFailure.SecretIdNotFound` and `InternalError` are names the reference marks UNCONFIRMED;
//! they are used as the usual API 3.0 common codes.

/// A number the gateway accepted.
pub const OK: &str = "Ok";
/// The signature does not match the request.
pub const SIGNATURE_FAILURE: &str = "AuthFailure.SignatureFailure";
/// `X-TC-Timestamp` is more than [`super::MAX_TIMESTAMP_SKEW_SECS`] away from the server's clock.
pub const SIGNATURE_EXPIRE: &str = "AuthFailure.SignatureExpire";
/// The SecretId is unknown.
pub const SECRET_ID_NOT_FOUND: &str = "AuthFailure.SecretIdNotFound";
/// A transient server fault.
pub const INTERNAL_ERROR: &str = "InternalError";
/// The caller's request rate is over the limit.
pub const REQUEST_LIMIT_EXCEEDED: &str = "RequestLimitExceeded";
/// `X-TC-Action` is not an action of this API (common code).
pub const INVALID_ACTION: &str = "InvalidAction";
/// A required parameter is missing or malformed (common code).
pub const INVALID_PARAMETER: &str = "InvalidParameter";
/// More than 200 numbers in one call.
pub const PHONE_NUMBER_COUNT_LIMIT: &str = "LimitExceeded.PhoneNumberCountLimit";
/// The same number got the same content within 30 s.
pub const PHONE_NUMBER_THIRTY_SECOND_LIMIT: &str = "LimitExceeded.PhoneNumberThirtySecondLimit";
/// The number reached its hourly cap.
pub const PHONE_NUMBER_ONE_HOUR_LIMIT: &str = "LimitExceeded.PhoneNumberOneHourLimit";
/// The number reached its daily cap.
pub const PHONE_NUMBER_DAILY_LIMIT: &str = "LimitExceeded.PhoneNumberDailyLimit";
/// The number got this content too often today.
pub const PHONE_NUMBER_SAME_CONTENT_DAILY_LIMIT: &str = "LimitExceeded.PhoneNumberSameContentDailyLimit";
/// Marketing texts only go out between 08:00 and 22:00 (Beijing).
pub const MARKETING_SEND_TIME_CONSTRAINT: &str = "FailedOperation.MarketingSendTimeConstraint";
/// The number is on the blacklist (it unsubscribed).
pub const PHONE_NUMBER_IN_BLACKLIST: &str = "FailedOperation.PhoneNumberInBlacklist";
/// The number is not a valid phone number.
pub const INCORRECT_PHONE_NUMBER: &str = "InvalidParameterValue.IncorrectPhoneNumber";
/// The SmsSdkAppId does not exist.
pub const SDK_APP_ID_NOT_EXIST: &str = "InvalidParameterValue.SdkAppIdNotExist";
/// The SignName is not an approved signature.
pub const SIGNATURE_INCORRECT_OR_UNAPPROVED: &str = "FailedOperation.SignatureIncorrectOrUnapproved";
/// The TemplateId is not an approved template.
pub const TEMPLATE_INCORRECT_OR_UNAPPROVED: &str = "FailedOperation.TemplateIncorrectOrUnapproved";
/// `TemplateParamSet` does not fit the template.
pub const TEMPLATE_PARAMETER_FORMAT_ERROR: &str = "InvalidParameterValue.TemplateParameterFormatError";
/// The rendered text is too long.
pub const CONTENT_LENGTH_LIMIT: &str = "InvalidParameterValue.ContentLengthLimit";

/// Every code campaignd knows by name: the metric label vocabulary (anything else is `other`).
pub const KNOWN_CODES: [&str; 40] = [
    OK,
    SIGNATURE_FAILURE,
    SIGNATURE_EXPIRE,
    SECRET_ID_NOT_FOUND,
    INTERNAL_ERROR,
    REQUEST_LIMIT_EXCEEDED,
    "RequestLimitExceeded.UinLimitExceeded",
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
    INVALID_ACTION,
    INVALID_PARAMETER,
    PHONE_NUMBER_COUNT_LIMIT,
    PHONE_NUMBER_THIRTY_SECOND_LIMIT,
    PHONE_NUMBER_ONE_HOUR_LIMIT,
    PHONE_NUMBER_DAILY_LIMIT,
    PHONE_NUMBER_SAME_CONTENT_DAILY_LIMIT,
    "LimitExceeded.DeliveryFrequencyLimit",
    "LimitExceeded.AppDailyLimit",
    "LimitExceeded.DailyLimit",
    MARKETING_SEND_TIME_CONSTRAINT,
    PHONE_NUMBER_IN_BLACKLIST,
    INCORRECT_PHONE_NUMBER,
    SDK_APP_ID_NOT_EXIST,
    SIGNATURE_INCORRECT_OR_UNAPPROVED,
    TEMPLATE_INCORRECT_OR_UNAPPROVED,
    TEMPLATE_PARAMETER_FORMAT_ERROR,
    CONTENT_LENGTH_LIMIT,
    "FailedOperation.ContainSensitiveWord",
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "InvalidParameterValue.TemplateParameterLengthLimit",
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
    "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny",
    "UnauthorizedOperation.ServiceSuspendDueToArrears",
    "InvalidParameter.InvalidParameters",
    "MissingParameter",
    "AuthFailure.InvalidAuthorization",
    "AuthFailure.UnauthorizedOperation",
    "InvalidParameterValue",
    "UnsupportedOperation",
    "ResourceUnavailable",
];

/// The `&'static` spelling of a known code, for bounded labels; `None` for any other string.
pub fn known(code: &str) -> Option<&'static str> {
    KNOWN_CODES.iter().copied().find(|k| *k == code)
}

/// What a code means for whoever sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeClass {
    /// `Ok`: the number was accepted.
    Accepted,
    /// Transient (`InternalError`): the same request may succeed later.
    Retryable,
    /// The caller's rate is over the limit (`RequestLimitExceeded*`): slow down and retry.
    RateLimited,
    /// A marketing text outside 08:00–22:00 Beijing: send it when the window opens.
    WaitForWindow,
    /// Final for this number (its frequency caps, blacklist, a wrong number); the others of
    /// the call are not concerned.
    NumberFinal,
    /// Will fail again whatever the number: credentials, signature, configuration, balance,
    /// content. Unknown codes land here so that nothing unexpected loops.
    Permanent,
}

/// Classifies a code of either level.
pub fn classify(code: &str) -> CodeClass {
    match code {
        OK => CodeClass::Accepted,
        INTERNAL_ERROR => CodeClass::Retryable,
        c if c == REQUEST_LIMIT_EXCEEDED || c.starts_with("RequestLimitExceeded.") => CodeClass::RateLimited,
        MARKETING_SEND_TIME_CONSTRAINT => CodeClass::WaitForWindow,
        PHONE_NUMBER_IN_BLACKLIST | INCORRECT_PHONE_NUMBER => CodeClass::NumberFinal,
        c if c.starts_with("LimitExceeded.Phone") && c != PHONE_NUMBER_COUNT_LIMIT => CodeClass::NumberFinal,
        _ => CodeClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fall_in_their_classes() {
        assert_eq!(classify("Ok"), CodeClass::Accepted);
        assert_eq!(classify(INTERNAL_ERROR), CodeClass::Retryable);
        for c in [
            REQUEST_LIMIT_EXCEEDED,
            "RequestLimitExceeded.UinLimitExceeded",
            "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
        ] {
            assert_eq!(classify(c), CodeClass::RateLimited, "{c}");
        }
        assert_eq!(classify(MARKETING_SEND_TIME_CONSTRAINT), CodeClass::WaitForWindow);
        for c in [
            PHONE_NUMBER_THIRTY_SECOND_LIMIT,
            PHONE_NUMBER_ONE_HOUR_LIMIT,
            PHONE_NUMBER_DAILY_LIMIT,
            PHONE_NUMBER_SAME_CONTENT_DAILY_LIMIT,
            PHONE_NUMBER_IN_BLACKLIST,
            INCORRECT_PHONE_NUMBER,
        ] {
            assert_eq!(classify(c), CodeClass::NumberFinal, "{c}");
        }
        for c in [
            SIGNATURE_FAILURE,
            SIGNATURE_EXPIRE,
            SECRET_ID_NOT_FOUND,
            SDK_APP_ID_NOT_EXIST,
            PHONE_NUMBER_COUNT_LIMIT,
            TEMPLATE_INCORRECT_OR_UNAPPROVED,
            "FailedOperation.InsufficientBalanceInSmsPackage",
            "Something.New",
        ] {
            assert_eq!(classify(c), CodeClass::Permanent, "{c}");
        }
    }

    #[test]
    fn the_vocabulary_is_closed_and_without_repeats() {
        let set: std::collections::BTreeSet<_> = KNOWN_CODES.iter().collect();
        assert_eq!(set.len(), KNOWN_CODES.len());
        assert_eq!(known(PHONE_NUMBER_DAILY_LIMIT), Some(PHONE_NUMBER_DAILY_LIMIT));
        assert_eq!(known("LimitExceeded.Phone"), None);
    }
}
