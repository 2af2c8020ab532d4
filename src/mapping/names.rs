//! The Segment event name for each Currents `event_type`.

/// The 34 events of Braze's Segment-for-Currents table, then the newer message events its
/// current connector also exports (reference: currents-format.md §3). `EVENT_NAMES` overrides
/// any of these and may add types Braze introduces later.
pub const EVENT_NAMES: &[(&str, &str)] = &[
    ("users.messages.pushnotification.Send", "Push Notification Sent"),
    ("users.messages.pushnotification.Open", "Push Notification Tapped"),
    ("users.messages.pushnotification.Bounce", "Push Notification Bounced"),
    (
        "users.messages.pushnotification.IosForeground",
        "iOS Foreground Push Opened",
    ),
    ("users.messages.email.Send", "Email Sent"),
    ("users.messages.email.Delivery", "Email Delivered"),
    ("users.messages.email.Open", "Email Opened"),
    ("users.messages.email.Click", "Email Link Clicked"),
    ("users.messages.email.Bounce", "Email Bounced"),
    ("users.messages.email.SoftBounce", "Email Soft Bounced"),
    ("users.messages.email.MarkAsSpam", "Email Marked As Spam"),
    ("users.messages.email.Unsubscribe", "Email Unsubscribed"),
    ("users.messages.sms.Send", "SMS Sent"),
    ("users.messages.sms.CarrierSend", "SMS Sent to Carrier"),
    ("users.messages.sms.Delivery", "SMS Delivered"),
    ("users.messages.sms.DeliveryFailure", "SMS Delivery Failed"),
    ("users.messages.sms.Rejection", "SMS Rejected"),
    ("users.messages.sms.InboundReceive", "SMS Inbound Received"),
    (
        "users.behaviors.subscriptiongroup.StateChange",
        "Subscription Group State Changed",
    ),
    ("users.messages.inappmessage.Impression", "In-App Message Viewed"),
    ("users.messages.inappmessage.Click", "In-App Message Clicked"),
    ("users.messages.contentcard.Send", "Content Card Sent"),
    ("users.messages.contentcard.Impression", "Content Card Viewed"),
    ("users.messages.contentcard.Click", "Content Card Clicked"),
    ("users.messages.contentcard.Dismiss", "Content Card Dismissed"),
    ("users.behaviors.app.NewsFeedImpression", "News Feed Viewed"),
    ("users.messages.newsfeedcard.Impression", "News Feed Card Viewed"),
    ("users.messages.newsfeedcard.Click", "News Feed Card Clicked"),
    ("users.messages.webhook.Send", "Webhook Sent"),
    ("users.campaigns.Conversion", "Campaign Converted"),
    ("users.canvas.Conversion", "Canvas Converted"),
    ("users.canvas.Entry", "Canvas Entered"),
    ("users.campaigns.EnrollInControl", "Campaign Control Group Entered"),
    ("users.behaviors.Uninstall", "Application Uninstalled"),
    // Newer events of Braze's current connector. Braze documents the names, not every pairing
    // with an event_type, so these follow Braze's event_type naming; override as needed.
    (
        "users.behaviors.subscription.GlobalStateChange",
        "Global Subscription State Changed",
    ),
    ("users.campaigns.Abort", "Campaign Aborted"),
    ("users.canvas.Abort", "Canvas Aborted"),
    ("users.canvas.exit.MatchedAudience", "Exit Matched Audience"),
    ("users.canvas.exit.PerformedEvent", "Exit Performed Event"),
    ("users.canvas.experimentstep.Conversion", "Experiment Step Converted"),
    ("users.canvas.experimentstep.SplitEntry", "Experiment Split Entered"),
    ("users.canvasstep.Progression", "Canvas Step Progression"),
    ("users.messages.email.Abort", "Email Aborted"),
    ("users.messages.email.Deferral", "Email Deferred"),
    ("users.messages.inappmessage.Abort", "In-App Message Aborted"),
    ("users.messages.contentcard.Abort", "Content Card Aborted"),
    ("users.messages.sms.Abort", "SMS Aborted"),
    ("users.messages.banner.Abort", "Banner Aborted"),
    ("users.messages.banner.Click", "Banner Clicked"),
    (
        "users.messages.featureflag.Impression",
        "Feature Flag Experiment Impressed",
    ),
    ("users.messages.whatsapp.Delivery", "WhatsApp Delivered"),
    ("users.messages.whatsapp.Click", "WhatsApp Tracked Link Clicked"),
];

/// Number of event types in Braze's original Segment table, at the head of [`EVENT_NAMES`].
pub const CLASSIC_EVENT_COUNT: usize = 34;

/// The built-in Segment name of an event type.
pub fn builtin_name(event_type: &str) -> Option<&'static str> {
    // A linear scan of 52 short strings measured no slower than a hash lookup here, and keeps
    // the table a plain constant.
    EVENT_NAMES
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_table_has_the_34_classic_events_and_no_duplicates() {
        let types: HashSet<&str> = EVENT_NAMES.iter().map(|(t, _)| *t).collect();
        assert_eq!(types.len(), EVENT_NAMES.len());
        assert_eq!(EVENT_NAMES[CLASSIC_EVENT_COUNT - 1].0, "users.behaviors.Uninstall");
        assert_eq!(
            builtin_name("users.messages.email.MarkAsSpam"),
            Some("Email Marked As Spam")
        );
        assert_eq!(builtin_name("users.messages.email.Nope"), None);
    }
}
