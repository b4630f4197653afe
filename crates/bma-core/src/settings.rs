//! Campaign settings and their semantic validation.
//!
//! The defaults are the FAQ's campaign: invitations from 2024-04-22, all
//! mailboxes invited by 2024-05-24, the campaign ending 2024-05-31, 3 to 12
//! weeks between mail 1 and mail 2, quota multiplied by 25, emails from
//! SGNE, and the three contacts of the FAQ by phase. Loading them from a
//! file or the environment is the binary's business; this module says what
//! is consistent, reporting every problem with the key it concerns.

use serde::{Deserialize, Serialize};
use time::{Date, macros::date};

use crate::address::AddressRule;
use crate::contact::Contacts;
use crate::cutover::CutoverRules;
use crate::planner::WaveRules;

/// Everything the domain needs to know about a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Dates and windows.
    pub campaign: CampaignSettings,
    /// The address rule of the mailboxes.
    pub addresses: AddressRule,
    /// Who the campaign's emails come from.
    pub sender: Sender,
    /// Whom to contact, by phase.
    pub contacts: Contacts,
}

/// Dates and windows of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    /// Name shown in emails and pages.
    pub name: String,
    /// First day of invitations.
    #[serde(with = "iso_date")]
    pub start: Date,
    /// Last day of the campaign (last cutover).
    #[serde(with = "iso_date")]
    pub end: Date,
    /// Every mailbox must have received mail 1 by this day.
    #[serde(with = "iso_date")]
    pub invitation_deadline: Date,
    /// Minimum weeks between mail 1 and mail 2.
    pub cutover_min_weeks: u32,
    /// Maximum weeks between mail 1 and mail 2.
    pub cutover_max_weeks: u32,
    /// New quota = old quota × this.
    pub quota_multiplier: u32,
    /// Day of the week of the invitation waves (`monday`…, or in French).
    pub wave_weekday: String,
    /// At most this many mailboxes per wave; 0 means balanced, no limit.
    pub wave_capacity: u32,
    /// Hour (UTC) at which a wave's emails leave on its day.
    pub wave_hour: u8,
    /// Days after mail 1 at which managers who have not answered get a reminder.
    pub reminder_days: Vec<u32>,
    /// Day of the week of the cutovers (`tuesday`…, or in French).
    pub cutover_weekday: String,
    /// At most this many cutovers per week; 0 means no limit.
    pub cutover_capacity: u32,
    /// At most this many gigabytes (10^9 bytes) of mailboxes cut over per week; 0 means no limit.
    pub cutover_capacity_gb: u32,
    /// The official FAQ of the migration, linked from every email (`https://…`).
    pub faq_url: String,
}

impl CampaignSettings {
    /// The wave weekday, if the name is valid.
    pub fn weekday(&self) -> Option<time::Weekday> {
        parse_weekday(&self.wave_weekday)
    }

    /// The cutover weekday, if the name is valid.
    pub fn cutover_weekday(&self) -> Option<time::Weekday> {
        parse_weekday(&self.cutover_weekday)
    }

    /// The capacity per wave, `None` for balanced.
    pub fn capacity(&self) -> Option<usize> {
        (self.wave_capacity > 0).then_some(self.wave_capacity as usize)
    }

    /// The rules of the invitation waves, if the wave weekday is a day:
    /// from the start to the invitation deadline, at the campaign's
    /// capacity (a caller that overrides it sets `capacity`).
    pub fn wave_rules(&self) -> Option<WaveRules> {
        self.weekday().map(|weekday| self.wave_rules_on(weekday))
    }

    /// [`CampaignSettings::wave_rules`] on a given weekday (the settings'
    /// own checked apart, as their validation does).
    pub fn wave_rules_on(&self, weekday: time::Weekday) -> WaveRules {
        WaveRules { start: self.start, deadline: self.invitation_deadline, weekday, capacity: self.capacity() }
    }

    /// The rules of the cutover slots: the cutover weekday (Tuesday if the
    /// name is not a day, which validation refuses), the window in weeks
    /// after mail 1 and the weekly capacities (0 is no limit).
    pub fn cutover_rules(&self) -> CutoverRules {
        CutoverRules {
            weekday: self.cutover_weekday().unwrap_or(time::Weekday::Tuesday),
            min_weeks: self.cutover_min_weeks,
            max_weeks: self.cutover_max_weeks,
            capacity: (self.cutover_capacity > 0).then_some(self.cutover_capacity as usize),
            capacity_bytes: (self.cutover_capacity_gb > 0).then(|| u64::from(self.cutover_capacity_gb) * 1_000_000_000),
        }
    }
}

/// A day of the week by its English or French name.
pub fn parse_weekday(name: &str) -> Option<time::Weekday> {
    use time::Weekday::*;
    match name.trim().to_lowercase().as_str() {
        "monday" | "lundi" => Some(Monday),
        "tuesday" | "mardi" => Some(Tuesday),
        "wednesday" | "mercredi" => Some(Wednesday),
        "thursday" | "jeudi" => Some(Thursday),
        "friday" | "vendredi" => Some(Friday),
        "saturday" | "samedi" => Some(Saturday),
        "sunday" | "dimanche" => Some(Sunday),
        _ => None,
    }
}

/// The sender of the campaign's emails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// Display name.
    pub name: String,
    /// Address.
    pub address: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            campaign: CampaignSettings {
                name: "Migration des boîtes mail administratives (BMA)".to_owned(),
                start: date!(2024 - 04 - 22),
                end: date!(2024 - 05 - 31),
                invitation_deadline: date!(2024 - 05 - 24),
                cutover_min_weeks: 3,
                cutover_max_weeks: 12,
                quota_multiplier: 25,
                wave_weekday: "monday".to_owned(),
                wave_capacity: 0,
                wave_hour: 8,
                reminder_days: vec![7, 14],
                cutover_weekday: "tuesday".to_owned(),
                cutover_capacity: 500,
                cutover_capacity_gb: 0,
                faq_url: DEFAULT_FAQ_URL.to_owned(),
            },
            addresses: AddressRule::default(),
            sender: Sender {
                name: "Service général du Numérique éducatif (SGNE)".to_owned(),
                address: "migrationbma@cfwb.be".to_owned(),
            },
            contacts: Contacts::default(),
        }
    }
}

/// The FAQ page of the migration on Enseignement.be (set `campaign.faq_url`
/// to the page the campaign publishes).
pub const DEFAULT_FAQ_URL: &str = "https://www.enseignement.be/bma";

/// A problem in the settings, tied to its key (`campaign.end`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingIssue {
    /// Dotted key of the setting.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for SettingIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl Settings {
    /// Every inconsistency, each with its key; empty when the settings hold.
    pub fn validate(&self) -> Vec<SettingIssue> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, message: String| issues.push(SettingIssue { key: key.to_owned(), message });
        let c = &self.campaign;
        if c.name.trim().is_empty() {
            issue("campaign.name", "must not be empty".to_owned());
        }
        if c.end < c.start {
            issue("campaign.end", format!("{} is before campaign.start {}", c.end, c.start));
        }
        if c.invitation_deadline < c.start || c.invitation_deadline > c.end {
            issue(
                "campaign.invitation_deadline",
                format!("{} is outside the campaign ({} to {})", c.invitation_deadline, c.start, c.end),
            );
        }
        if c.cutover_min_weeks == 0 {
            issue("campaign.cutover_min_weeks", "must be at least 1".to_owned());
        }
        if c.cutover_max_weeks < c.cutover_min_weeks {
            issue(
                "campaign.cutover_max_weeks",
                format!("{} is less than campaign.cutover_min_weeks {}", c.cutover_max_weeks, c.cutover_min_weeks),
            );
        }
        let no_wave = |weekday| c.wave_rules_on(weekday).wave_dates().is_empty();
        match c.weekday() {
            None => issue(
                "campaign.wave_weekday",
                format!("'{}' is not a day of the week (monday… or lundi…)", c.wave_weekday),
            ),
            Some(w) if c.start <= c.invitation_deadline && no_wave(w) => issue(
                "campaign.wave_weekday",
                format!("no {} between {} and {}: no wave can be sent", c.wave_weekday, c.start, c.invitation_deadline),
            ),
            Some(_) => {}
        }
        if c.wave_hour > 23 {
            issue("campaign.wave_hour", format!("{} is not an hour (0 to 23)", c.wave_hour));
        }
        if c.cutover_weekday().is_none() {
            issue(
                "campaign.cutover_weekday",
                format!("'{}' is not a day of the week (tuesday… or mardi…)", c.cutover_weekday),
            );
        }
        let window_days = c.cutover_max_weeks.saturating_mul(7);
        if c.reminder_days.windows(2).any(|w| w[0] >= w[1]) || c.reminder_days.contains(&0) {
            issue(
                "campaign.reminder_days",
                format!("{:?} must be increasing days after mail 1, each at least 1", c.reminder_days),
            );
        } else if let Some(&last) = c.reminder_days.last()
            && last >= window_days
        {
            issue(
                "campaign.reminder_days",
                format!(
                    "a reminder {last} days after mail 1 comes after the cutover window closes ({window_days} days)"
                ),
            );
        }
        let faq = c.faq_url.trim();
        let faq_host = faq.strip_prefix("https://").map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
        if faq_host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) || faq.contains(char::is_whitespace)
        {
            issue("campaign.faq_url", format!("'{faq}' is not an https:// address"));
        }
        if c.quota_multiplier == 0 {
            issue("campaign.quota_multiplier", "must be at least 1".to_owned());
        }
        let d = &self.addresses.domain;
        if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) || d.to_lowercase() != *d {
            issue("addresses.domain", format!("'{d}' is not a lower-case domain name"));
        }
        if !(1..=9).contains(&self.addresses.fase_digits) {
            issue("addresses.fase_digits", format!("{} is not between 1 and 9", self.addresses.fase_digits));
        }
        if self.sender.name.trim().is_empty() {
            issue("sender.name", "must not be empty".to_owned());
        }
        if !looks_like_email(&self.sender.address) {
            issue("sender.address", format!("'{}' is not an email address", self.sender.address));
        }
        for (phase, contact) in self.contacts.by_phase() {
            if contact.name.trim().is_empty() {
                issue(&format!("contacts.{phase}.name"), "must not be empty".to_owned());
            }
            if !looks_like_email(&contact.email) {
                issue(&format!("contacts.{phase}.email"), format!("'{}' is not an email address", contact.email));
            }
        }
        issues
    }
}

/// A light syntactic check: one `@`, something on each side, a dot in the
/// domain, no blanks. Deliverability is proven by sending, not by regex.
pub fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// `YYYY-MM-DD` (de)serialisation of dates.
pub mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Date, String> {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(s.trim(), &fmt).map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD)"))
    }

    /// Serialises as `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_string())
    }

    /// Deserialises from `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_faq_campaign_and_hold() {
        let s = Settings::default();
        assert_eq!(s.campaign.start.to_string(), "2024-04-22");
        assert_eq!(s.campaign.invitation_deadline.to_string(), "2024-05-24");
        assert_eq!(s.campaign.end.to_string(), "2024-05-31");
        assert_eq!((s.campaign.cutover_min_weeks, s.campaign.cutover_max_weeks), (3, 12));
        assert_eq!(s.campaign.quota_multiplier, 25);
        assert_eq!(s.validate(), vec![]);
    }

    #[test]
    fn rules_come_from_the_settings() {
        let mut c = Settings::default().campaign;
        let waves = c.wave_rules().expect("a weekday");
        assert_eq!(
            (waves.start, waves.deadline, waves.weekday),
            (c.start, c.invitation_deadline, time::Weekday::Monday)
        );
        assert_eq!(waves.capacity, None);
        let cutovers = c.cutover_rules();
        assert_eq!((cutovers.weekday, cutovers.min_weeks, cutovers.max_weeks), (time::Weekday::Tuesday, 3, 12));
        assert_eq!(cutovers.capacity, Some(500));
        c.wave_capacity = 40;
        c.cutover_capacity = 0;
        c.cutover_capacity_gb = 2;
        assert_eq!(c.wave_rules().map(|w| w.capacity), Some(Some(40)));
        assert_eq!((c.cutover_rules().capacity, c.cutover_rules().capacity_bytes), (None, Some(2_000_000_000)));
        c.wave_weekday = "someday".to_owned();
        assert_eq!(c.wave_rules(), None);
    }

    #[test]
    fn every_issue_is_reported_with_its_key() {
        let mut s = Settings::default();
        s.campaign.end = date!(2024 - 04 - 01);
        s.campaign.cutover_max_weeks = 2;
        s.sender.address = "nobody".to_owned();
        s.contacts.after.email = String::new();
        let got: Vec<String> = s.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "campaign.end: 2024-04-01 is before campaign.start 2024-04-22",
                "campaign.invitation_deadline: 2024-05-24 is outside the campaign (2024-04-22 to 2024-04-01)",
                "campaign.cutover_max_weeks: 2 is less than campaign.cutover_min_weeks 3",
                "campaign.reminder_days: a reminder 14 days after mail 1 comes after the cutover window closes (14 days)",
                "sender.address: 'nobody' is not an email address",
                "contacts.after.email: '' is not an email address",
            ]
        );
    }

    #[test]
    fn the_faq_is_an_https_address() {
        for (url, ok) in [
            ("https://www.enseignement.be/bma", true),
            ("https://faq.example", true),
            ("http://www.enseignement.be/bma", false),
            ("https://", false),
            ("www.enseignement.be", false),
            ("https://a b.be", false),
            ("", false),
        ] {
            let mut s = Settings::default();
            s.campaign.faq_url = url.to_owned();
            let keys: Vec<String> = s.validate().into_iter().map(|i| i.key).collect();
            assert_eq!(keys.is_empty(), ok, "{url:?}: {keys:?}");
        }
    }

    #[test]
    fn email_shapes() {
        for (s, ok) in [
            ("a@b.be", true),
            ("BMA@enseignement.be", true),
            ("a@b", false),
            ("a b@c.be", false),
            ("@c.be", false),
            ("a@@c.be", false),
            ("", false),
        ] {
            assert_eq!(looks_like_email(s), ok, "{s}");
        }
    }
}

/// A date as French emails write it: `22 avril 2024`, `1er mai 2024`.
pub fn date_fr(d: Date) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let day = if d.day() == 1 { "1er".to_owned() } else { d.day().to_string() };
    format!("{day} {} {}", MONTHS[usize::from(u8::from(d.month())) - 1], d.year())
}

#[cfg(test)]
mod date_tests {
    use time::macros::date;

    #[test]
    fn french_dates() {
        assert_eq!(super::date_fr(date!(2024 - 04 - 22)), "22 avril 2024");
        assert_eq!(super::date_fr(date!(2024 - 05 - 01)), "1er mai 2024");
        assert_eq!(super::date_fr(date!(2024 - 08 - 15)), "15 août 2024");
    }
}
