//! The built-in table: every Currents event type Braze's Segment connector sends, its Segment
//! name, and what the connector does to its properties. One static table, sorted by
//! `event_type` so a lookup is a binary search with no allocation.
//!
//! Names are the headers of the Segment tabs in Braze's Currents event glossary
//! (<https://www.braze.com/docs/user_guide/data/distribution/braze_currents/event_glossary/message_engagement_events>
//! and `.../customer_behavior_events`). Legacy names are those of the older Segment-for-Currents
//! page (<https://www.braze.com/docs/partners/data_and_analytics/customer_data_platform/segment/segment_for_currents>)
//! and of this bridge's earlier releases.

/// What Braze's Segment connector does to one event type's properties, as a set of flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moves(u16);

impl Moves {
    /// Nothing moves: every property passes through.
    pub const NONE: Moves = Moves(0);
    /// `email_address` → `context.traits.email`.
    pub const EMAIL: Moves = Moves(1);
    /// `to_phone_number` → `context.traits.phone` (outbound messages).
    pub const TO_PHONE: Moves = Moves(1 << 1);
    /// `user_phone_number` → `context.traits.phone` (inbound messages and clicks).
    pub const USER_PHONE: Moves = Moves(1 << 2);
    /// `device_model` → `context.device.model`.
    pub const MODEL: Moves = Moves(1 << 3);
    /// `platform` → `context.device.type`. Without it `platform` stays a property.
    pub const PLATFORM: Moves = Moves(1 << 4);
    /// `os_version` → `context.os.version`. Braze's connector drops `os_version`; this bridge
    /// keeps it in Segment's standard place. Set on every built-in type.
    pub(crate) const OS_VERSION: Moves = Moves(1 << 5);
    /// `url` → `properties.link_url` (Email Link Clicked only).
    pub(crate) const LINK_URL: Moves = Moves(1 << 6);
    /// `content_card_id` → `properties.card_id` (content card events).
    pub(crate) const CARD_ID: Moves = Moves(1 << 7);
    /// The entries of `custom_properties` become top-level properties (custom events).
    pub(crate) const CUSTOM_PROPERTIES: Moves = Moves(1 << 8);
    /// The entries of `purchase_properties` become top-level properties (purchases).
    pub(crate) const PURCHASE_PROPERTIES: Moves = Moves(1 << 9);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Moves) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of `list`, plus [`Moves::OS_VERSION`].
    const fn builtin(list: &[Moves]) -> Moves {
        let mut bits = Moves::OS_VERSION.0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i].0;
            i += 1;
        }
        Moves(bits)
    }
}

/// Where the Segment `event` of a built-in type comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinName {
    /// The header of the type's Segment tab in Braze's glossary, exactly (case and spacing).
    Braze(&'static str),
    /// `users.behaviors.CustomEvent`: the custom event's own `properties.name`.
    CustomEventName,
    /// No Segment tab in Braze's glossary. Skipped as an unknown type unless
    /// `EVENT_NAMING=legacy`, which sends it under `EventSpec::legacy_name`.
    LegacyOnly,
}

/// One row of the built-in table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// The Currents `event_type`, e.g. `users.messages.email.Send`.
    pub event_type: &'static str,
    /// The Segment name under the default naming.
    pub name: BuiltinName,
    /// The name under `EVENT_NAMING=legacy`, when it differs from `name`.
    pub legacy_name: Option<&'static str>,
    /// The name under `CHANNEL_PREFIXED_NAMES=true`, for LINE and RCS types whose Braze names
    /// carry no channel (`Sent` is both `line.Send` and `rcs.Send`).
    pub prefixed_name: Option<&'static str>,
    /// What happens to the type's properties.
    pub moves: Moves,
    /// On the 34-event table of Braze's older Segment-for-Currents page.
    pub classic: bool,
}

const EMAIL: Moves = Moves::EMAIL;
const TO_PHONE: Moves = Moves::TO_PHONE;
const USER_PHONE: Moves = Moves::USER_PHONE;
const MODEL: Moves = Moves::MODEL;
const PLATFORM: Moves = Moves::PLATFORM;
const LINK_URL: Moves = Moves::LINK_URL;
const CARD_ID: Moves = Moves::CARD_ID;
const CUSTOM_PROPERTIES: Moves = Moves::CUSTOM_PROPERTIES;
const PURCHASE_PROPERTIES: Moves = Moves::PURCHASE_PROPERTIES;

const fn braze(event_type: &'static str, name: &'static str, moves: &[Moves]) -> EventSpec {
    EventSpec {
        event_type,
        name: BuiltinName::Braze(name),
        legacy_name: None,
        prefixed_name: None,
        moves: Moves::builtin(moves),
        classic: false,
    }
}

const fn custom_event(event_type: &'static str, moves: &[Moves]) -> EventSpec {
    EventSpec {
        name: BuiltinName::CustomEventName,
        ..braze(event_type, "", moves)
    }
}

const fn legacy_only(event_type: &'static str, legacy: &'static str, moves: &[Moves]) -> EventSpec {
    EventSpec {
        name: BuiltinName::LegacyOnly,
        legacy_name: Some(legacy),
        ..braze(event_type, "", moves)
    }
}

impl EventSpec {
    const fn legacy(self, name: &'static str) -> Self {
        EventSpec {
            legacy_name: Some(name),
            ..self
        }
    }

    const fn prefixed(self, name: &'static str) -> Self {
        EventSpec {
            prefixed_name: Some(name),
            ..self
        }
    }

    const fn classic(self) -> Self {
        EventSpec { classic: true, ..self }
    }
}

/// Every built-in event type, sorted by `event_type` (byte order): the 80 types with a Segment
/// tab in Braze's glossary and, sorted in among them, the 5 this bridge named before that only
/// `EVENT_NAMING=legacy` still sends.
pub static EVENT_TABLE: &[EventSpec] = ROWS;

const ROWS: &[EventSpec] = &[
    custom_event("users.behaviors.CustomEvent", &[MODEL, PLATFORM, CUSTOM_PROPERTIES]),
    braze("users.behaviors.InstallAttribution", "Install Attribution", &[]),
    braze("users.behaviors.Location", "Location", &[MODEL, PLATFORM]),
    braze(
        "users.behaviors.Purchase",
        "Purchased",
        &[MODEL, PLATFORM, PURCHASE_PROPERTIES],
    ),
    braze("users.behaviors.Uninstall", "Application Uninstalled", &[]).classic(),
    braze("users.behaviors.app.FirstSession", "First Session", &[MODEL, PLATFORM]),
    legacy_only(
        "users.behaviors.app.NewsFeedImpression",
        "News Feed Viewed",
        &[MODEL, PLATFORM],
    )
    .classic(),
    braze("users.behaviors.app.SessionEnd", "Session Ended", &[MODEL, PLATFORM]),
    braze(
        "users.behaviors.app.SessionStart",
        "Session Started",
        &[MODEL, PLATFORM],
    ),
    braze(
        "users.behaviors.liveactivity.PushToStartTokenChange",
        "Live Activity Push To Start Token Changed",
        &[],
    ),
    braze(
        "users.behaviors.liveactivity.UpdateTokenChange",
        "Live Activity Update Token Changed",
        &[],
    ),
    braze(
        "users.behaviors.pushnotification.TokenStateChange",
        "Push Notification Token State Changed",
        &[],
    ),
    braze(
        "users.behaviors.subscription.GlobalStateChange",
        "Global Subscription State Changed",
        &[EMAIL],
    ),
    braze(
        "users.behaviors.subscriptiongroup.StateChange",
        "Subscription Group State Changed",
        &[EMAIL],
    )
    .classic(),
    legacy_only("users.campaigns.Abort", "Campaign Aborted", &[]),
    braze("users.campaigns.Conversion", "Campaign Converted", &[]).classic(),
    braze("users.campaigns.EnrollInControl", "Campaign Control Group Entered", &[]).classic(),
    legacy_only("users.canvas.Abort", "Canvas Aborted", &[]),
    braze("users.canvas.Conversion", "Canvas Converted", &[]).classic(),
    braze("users.canvas.Entry", "Canvas Entered", &[]).classic(),
    braze("users.canvas.exit.MatchedAudience", "Exit Matched Audience", &[]),
    braze("users.canvas.exit.PerformedEvent", "Exit Performed Event", &[]),
    braze(
        "users.canvas.experimentstep.Conversion",
        "Experiment Step Converted",
        &[],
    ),
    braze(
        "users.canvas.experimentstep.SplitEntry",
        "Experiment Split Entered",
        &[],
    ),
    braze("users.canvasstep.Progression", "Canvas Step Progression", &[]),
    braze("users.messages.banner.Abort", "Banner Aborted", &[MODEL]),
    braze("users.messages.banner.Click", "Banner Clicked", &[MODEL]),
    braze("users.messages.banner.Impression", "Banner Viewed", &[MODEL]),
    braze("users.messages.contentcard.Abort", "Content Card Aborted", &[]),
    braze(
        "users.messages.contentcard.Click",
        "Content Card Clicked",
        &[MODEL, PLATFORM, CARD_ID],
    )
    .classic(),
    braze(
        "users.messages.contentcard.Dismiss",
        "Content Card Dismissed",
        &[MODEL, PLATFORM, CARD_ID],
    )
    .classic(),
    braze(
        "users.messages.contentcard.Impression",
        "Content Card Viewed",
        &[MODEL, PLATFORM, CARD_ID],
    )
    .classic(),
    braze("users.messages.contentcard.Send", "Content Card Sent", &[CARD_ID]).classic(),
    braze("users.messages.email.Abort", "Email Aborted", &[EMAIL]),
    braze("users.messages.email.Bounce", "Email Bounced", &[EMAIL]).classic(),
    braze(
        "users.messages.email.Click",
        "Email Link Clicked",
        &[MODEL, EMAIL, LINK_URL],
    )
    .classic(),
    braze("users.messages.email.Deferral", "Email Deferred", &[EMAIL]),
    braze("users.messages.email.Delivery", "Email Delivered", &[EMAIL]).classic(),
    braze("users.messages.email.MarkAsSpam", "Email Marked as Spam", &[EMAIL])
        .legacy("Email Marked As Spam")
        .classic(),
    braze("users.messages.email.Open", "Email Opened", &[MODEL, EMAIL]).classic(),
    braze("users.messages.email.Send", "Email Sent", &[EMAIL]).classic(),
    braze("users.messages.email.SoftBounce", "Email Soft Bounced", &[EMAIL]).classic(),
    braze("users.messages.email.Unsubscribe", "Unsubscribed", &[EMAIL])
        .legacy("Email Unsubscribed")
        .classic(),
    braze(
        "users.messages.featureflag.Impression",
        "Feature Flag Experiment Impressed",
        &[MODEL, PLATFORM],
    ),
    braze(
        "users.messages.inappmessage.Abort",
        "In-App Message Aborted",
        &[MODEL, PLATFORM],
    ),
    braze(
        "users.messages.inappmessage.Click",
        "In-App Message Clicked",
        &[MODEL, PLATFORM],
    )
    .classic(),
    braze(
        "users.messages.inappmessage.Impression",
        "In-App Message Viewed",
        &[MODEL, PLATFORM],
    )
    .classic(),
    braze("users.messages.line.Abort", "Aborted", &[]).prefixed("LINE Aborted"),
    braze("users.messages.line.Click", "Clicked", &[]).prefixed("LINE Clicked"),
    braze("users.messages.line.InboundReceive", "LINE Inbound Received", &[]),
    braze("users.messages.line.Send", "Sent", &[]).prefixed("LINE Sent"),
    braze("users.messages.liveactivity.Outcome", "Live Activity Outcome", &[]),
    braze("users.messages.liveactivity.Send", "Live Activity Sent", &[]),
    legacy_only(
        "users.messages.newsfeedcard.Click",
        "News Feed Card Clicked",
        &[MODEL, PLATFORM],
    )
    .classic(),
    legacy_only(
        "users.messages.newsfeedcard.Impression",
        "News Feed Card Viewed",
        &[MODEL, PLATFORM],
    )
    .classic(),
    braze(
        "users.messages.pushnotification.Abort",
        "Push Notification Aborted",
        &[],
    ),
    braze(
        "users.messages.pushnotification.Bounce",
        "Push Notification Bounced",
        &[],
    )
    .classic(),
    braze(
        "users.messages.pushnotification.IosForeground",
        "Ios Foreground Push Opened",
        &[MODEL, PLATFORM],
    )
    .legacy("iOS Foreground Push Opened")
    .classic(),
    braze(
        "users.messages.pushnotification.Open",
        "Push Notification Tapped",
        &[MODEL, PLATFORM],
    )
    .classic(),
    braze("users.messages.pushnotification.Send", "Push Notification Sent", &[]).classic(),
    braze("users.messages.rcs.Abort", "Aborted", &[]).prefixed("RCS Aborted"),
    braze("users.messages.rcs.Click", "Clicked", &[USER_PHONE]).prefixed("RCS Clicked"),
    braze("users.messages.rcs.Delivery", "Delivered", &[TO_PHONE]).prefixed("RCS Delivered"),
    braze("users.messages.rcs.InboundReceive", "Inbound Received", &[USER_PHONE]).prefixed("RCS Inbound Received"),
    braze("users.messages.rcs.Read", "Read", &[TO_PHONE]).prefixed("RCS Read"),
    braze("users.messages.rcs.Rejection", "Rejected", &[TO_PHONE]).prefixed("RCS Rejected"),
    braze("users.messages.rcs.Send", "Sent", &[TO_PHONE]).prefixed("RCS Sent"),
    braze("users.messages.sms.Abort", "SMS Aborted", &[]),
    braze("users.messages.sms.CarrierSend", "SMS Sent to Carrier", &[TO_PHONE]).classic(),
    braze("users.messages.sms.Delivery", "SMS Delivered", &[TO_PHONE]).classic(),
    braze("users.messages.sms.DeliveryFailure", "SMS Delivery Failed", &[TO_PHONE]).classic(),
    braze(
        "users.messages.sms.InboundReceive",
        "SMS Inbound Received",
        &[USER_PHONE],
    )
    .classic(),
    braze("users.messages.sms.Rejection", "SMS Rejected", &[TO_PHONE]).classic(),
    braze("users.messages.sms.Send", "SMS Sent", &[TO_PHONE]).classic(),
    braze(
        "users.messages.sms.ShortLinkClick",
        "SMS Short Link Clicked",
        &[USER_PHONE],
    ),
    braze("users.messages.webhook.Abort", "Webhook Aborted", &[]),
    braze("users.messages.webhook.Failure", "Webhook Failed", &[]),
    braze("users.messages.webhook.Send", "Webhook Sent", &[]).classic(),
    braze("users.messages.whatsapp.Abort", "WhatsApp Aborted", &[TO_PHONE]),
    braze(
        "users.messages.whatsapp.Click",
        "WhatsApp Tracked Link Clicked",
        &[USER_PHONE],
    ),
    braze("users.messages.whatsapp.Delivery", "WhatsApp Delivered", &[TO_PHONE]),
    braze("users.messages.whatsapp.Failure", "WhatsApp Failed", &[TO_PHONE]),
    braze(
        "users.messages.whatsapp.InboundReceive",
        "WhatsApp Inbound Received",
        &[USER_PHONE],
    ),
    braze("users.messages.whatsapp.Read", "WhatsApp Read", &[TO_PHONE]),
    braze("users.messages.whatsapp.Send", "WhatsApp Sent", &[TO_PHONE]),
];

/// The row of a built-in event type: a binary search, no allocation.
pub fn builtin(event_type: &str) -> Option<&'static EventSpec> {
    EVENT_TABLE
        .binary_search_by(|row| row.event_type.cmp(event_type))
        .ok()
        .map(|at| &EVENT_TABLE[at])
}

/// Number of event types on Braze's older 34-event Segment table.
pub const CLASSIC_EVENT_COUNT: usize = 34;

/// The 34 event types of Braze's older Segment table with that table's names, in table order.
/// Derived from [`EVENT_TABLE`] at compile time; the benchmark workload draws its types from it.
pub const EVENT_NAMES: &[(&str, &str)] = &classic_names();

const fn classic_names() -> [(&'static str, &'static str); CLASSIC_EVENT_COUNT] {
    let mut out = [("", ""); CLASSIC_EVENT_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < ROWS.len() {
        let row = &ROWS[i];
        if row.classic {
            let name = match (row.legacy_name, row.name) {
                (Some(name), _) | (None, BuiltinName::Braze(name)) => name,
                _ => "",
            };
            out[n] = (row.event_type, name);
            n += 1;
        }
        i += 1;
    }
    assert!(n == CLASSIC_EVENT_COUNT);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_without_duplicates_so_binary_search_finds_every_row() {
        assert!(EVENT_TABLE.windows(2).all(|w| w[0].event_type < w[1].event_type));
        for row in EVENT_TABLE {
            assert_eq!(builtin(row.event_type), Some(row));
        }
        assert_eq!(builtin("users.messages.email.Nope"), None);
        assert_eq!(builtin(""), None);
    }

    #[test]
    fn eighty_types_have_a_braze_name_and_five_are_legacy_only() {
        let legacy_only = EVENT_TABLE.iter().filter(|r| r.name == BuiltinName::LegacyOnly);
        assert!(legacy_only.clone().all(|r| r.legacy_name.is_some()));
        assert_eq!(legacy_only.count(), 5);
        assert_eq!(EVENT_TABLE.len(), 85);
        assert!(EVENT_TABLE.iter().all(|r| r.moves.contains(Moves::OS_VERSION)));
    }

    #[test]
    fn the_classic_table_keeps_the_older_page_names() {
        assert_eq!(EVENT_NAMES.len(), CLASSIC_EVENT_COUNT);
        assert!(EVENT_NAMES.contains(&("users.messages.email.MarkAsSpam", "Email Marked As Spam")));
        assert!(EVENT_NAMES.contains(&("users.behaviors.app.NewsFeedImpression", "News Feed Viewed")));
        assert!(EVENT_NAMES.iter().all(|(_, name)| !name.is_empty()));
    }
}
