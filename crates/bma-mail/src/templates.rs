//! French email templates: built in, overridable by files, rendered strictly.
//!
//! A template is a text file whose first line is `Subject: …`, the rest
//! being the body; an optional `.html` file beside it gives the HTML
//! alternative. Both are minijinja templates. An operator may copy the
//! built-in files into a directory (`bma` writes them there on request),
//! edit them, and point the configuration at it: files found there
//! replace the built-in ones, kind by kind.

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// The emails of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// Mail 1: the personal form link.
    Invitation,
    /// To those who have not answered.
    Reminder,
    /// After the form.
    Confirmation,
    /// To the backup address given in the form: the link that verifies it.
    BackupVerification,
    /// To the migration team at the invitation deadline: who has no mail 1.
    DeadlineWatch,
    /// To the previous backup address and the BMA: the backup address changed.
    BackupChanged,
    /// Mail 2, at the cutover: the new interface, the same address and password.
    Migrated,
    /// A new password's link (`bma mailbox reset-password`).
    NewPassword,
    /// The migration team's daily report.
    DailyReport,
}

impl TemplateKind {
    /// Every kind.
    pub const ALL: [TemplateKind; 9] = [
        TemplateKind::Invitation,
        TemplateKind::Reminder,
        TemplateKind::Confirmation,
        TemplateKind::BackupVerification,
        TemplateKind::DeadlineWatch,
        TemplateKind::BackupChanged,
        TemplateKind::Migrated,
        TemplateKind::NewPassword,
        TemplateKind::DailyReport,
    ];

    /// File stem (`invitation` → `invitation.txt`, `invitation.html`).
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::Invitation => "invitation",
            TemplateKind::Reminder => "reminder",
            TemplateKind::Confirmation => "confirmation",
            TemplateKind::BackupVerification => "backup_verification",
            TemplateKind::DeadlineWatch => "deadline_watch",
            TemplateKind::BackupChanged => "backup_changed",
            TemplateKind::Migrated => "migrated",
            TemplateKind::NewPassword => "new_password",
            TemplateKind::DailyReport => "daily_report",
        }
    }

    fn builtin(self) -> (&'static str, Option<&'static str>) {
        match self {
            TemplateKind::Invitation => {
                (include_str!("../templates/invitation.txt"), Some(include_str!("../templates/invitation.html")))
            }
            TemplateKind::Reminder => {
                (include_str!("../templates/reminder.txt"), Some(include_str!("../templates/reminder.html")))
            }
            TemplateKind::Confirmation => {
                (include_str!("../templates/confirmation.txt"), Some(include_str!("../templates/confirmation.html")))
            }
            TemplateKind::BackupVerification => (
                include_str!("../templates/backup_verification.txt"),
                Some(include_str!("../templates/backup_verification.html")),
            ),
            TemplateKind::DeadlineWatch => (include_str!("../templates/deadline_watch.txt"), None),
            TemplateKind::DailyReport => (include_str!("../templates/daily_report.txt"), None),
            TemplateKind::BackupChanged => (include_str!("../templates/backup_changed.txt"), None),
            TemplateKind::Migrated => {
                (include_str!("../templates/migrated.txt"), Some(include_str!("../templates/migrated.html")))
            }
            TemplateKind::NewPassword => {
                (include_str!("../templates/new_password.txt"), Some(include_str!("../templates/new_password.html")))
            }
        }
    }
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// HTML body, when the template has one.
    pub html: Option<String>,
}

/// A template problem.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A file cannot be read.
    #[error("cannot read the template {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The first line is not `Subject: …`.
    #[error("template {0}: the first line must be 'Subject: …'")]
    NoSubject(String),
    /// Syntax or rendering error (e.g. a variable missing from the context).
    #[error("template {name}: {message}")]
    Render {
        /// Template name.
        name: String,
        /// minijinja's message.
        message: String,
    },
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

/// The host of a URL (`https://bma.example:8443/formulaire/…` →
/// `bma.example`): the domain an email names so that a reader can check
/// where a link leads. The `host` filter of the templates.
pub fn url_host(url: &str) -> String {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
        None => host.split(':').next().unwrap_or("").to_lowercase(),
    }
}

/// Whose the BMA is, in French, from its name and address: `de
/// l'établissement …` for a school (`ec…`), `du pouvoir organisateur …`
/// for an organising authority (`po…`). The `owner` filter of the
/// templates: `{{ name | owner(address) }}`.
pub fn owner_fr(name: &str, address: &str) -> String {
    let local = address.trim().to_ascii_lowercase();
    if local.starts_with("po") {
        format!("du pouvoir organisateur {}", name.trim())
    } else {
        format!("de l'établissement {}", name.trim())
    }
}

fn split_subject(name: &str, text: &str) -> Result<(String, String), TemplateError> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first.strip_prefix("Subject:").ok_or_else(|| TemplateError::NoSubject(name.to_owned()))?;
    Ok((subject.trim().to_owned(), rest.to_owned()))
}

impl Templates {
    /// The built-in templates, replaced kind by kind by files found in `dir`.
    /// Every template is compiled now, so a syntax error shows at start.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.add_filter("host", |url: String| url_host(&url));
        env.add_filter("owner", |name: String, address: String| owner_fr(&name, &address));
        for kind in TemplateKind::ALL {
            let (mut text, mut html) = {
                let (t, h) = kind.builtin();
                (t.to_owned(), h.map(str::to_owned))
            };
            if let Some(dir) = dir {
                let txt = dir.join(format!("{}.txt", kind.name()));
                if txt.exists() {
                    text = std::fs::read_to_string(&txt)
                        .map_err(|source| TemplateError::Read { path: txt.display().to_string(), source })?;
                    let h = dir.join(format!("{}.html", kind.name()));
                    html = if h.exists() {
                        Some(
                            std::fs::read_to_string(&h)
                                .map_err(|source| TemplateError::Read { path: h.display().to_string(), source })?,
                        )
                    } else {
                        None
                    };
                }
            }
            let (subject, body) = split_subject(kind.name(), &text)?;
            let add = |env: &mut Environment<'static>, suffix: &str, src: String| {
                let name = format!("{}.{suffix}", kind.name());
                env.add_template_owned(name.clone(), src)
                    .map_err(|e| TemplateError::Render { name, message: e.to_string() })
            };
            add(&mut env, "subject", subject)?;
            add(&mut env, "txt", body)?;
            if let Some(h) = html {
                add(&mut env, "html", h)?;
            }
        }
        Ok(Templates { env })
    }

    /// Writes the built-in templates into `dir` (for operators to edit).
    pub fn write_builtin(dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for kind in TemplateKind::ALL {
            let (text, html) = kind.builtin();
            std::fs::write(dir.join(format!("{}.txt", kind.name())), text)?;
            if let Some(h) = html {
                std::fs::write(dir.join(format!("{}.html", kind.name())), h)?;
            }
        }
        Ok(())
    }

    /// Renders a kind with `context` (any serialisable value).
    pub fn render<C: Serialize>(&self, kind: TemplateKind, context: &C) -> Result<Rendered, TemplateError> {
        let ctx = minijinja::Value::from_serialize(context);
        let render = |suffix: &str| -> Result<Option<String>, TemplateError> {
            let name = format!("{}.{suffix}", kind.name());
            match self.env.get_template(&name) {
                Ok(t) => t.render(&ctx).map(Some).map_err(|e| TemplateError::Render { name, message: e.to_string() }),
                Err(_) => Ok(None),
            }
        };
        let subject = render("subject")?.unwrap_or_default();
        Ok(Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: render("txt")?.unwrap_or_default(),
            html: render("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the daily report adds to [`context`].
    fn report_context() -> serde_json::Value {
        serde_json::json!({
            "day": "3 juin 2024", "sent_on": "4 juin 2024", "presync_size": "1,5 Go",
            "d": { "emails_sent": 120, "emails_bounced": 2, "emails_uncertain": 1, "forms_received": 40,
                   "forms_corrected": 3, "presync_messages": 51234, "cutovers": 12, "rollbacks": 1 },
            "entered": [{ "label": "inscrite", "count": 40 }],
            "states": [{ "label": "invitée", "count": 3400 }, { "label": "migrée", "count": 100 }],
            "total": 3500, "migrated": 100, "attention_count": 41, "attention_more": 1,
            "attention": [{ "address": "ec012345@adm.cfwb.be", "why": "mail 1 revenu en erreur", "since": "2 juin 2024" }],
            "dashboard_url": "https://bma.example/console/tableau-de-bord",
        })
    }

    fn context() -> serde_json::Value {
        let mut c = base_context();
        if let (Some(c), serde_json::Value::Object(more)) = (c.as_object_mut(), report_context()) {
            c.extend(more);
        }
        c
    }

    fn base_context() -> serde_json::Value {
        serde_json::json!({
            "name": "Athénée royal de Namur", "address": "ec012345@adm.cfwb.be",
            "form_link": "https://bma.example/formulaire/TOKEN", "reply_by": "13 mai 2024",
            "quota_multiplier": 25, "cutover_min_weeks": 3, "cutover_max_weeks": 12,
            "invited_on": "22 avril 2024", "submitted_on": "24 avril 2024", "manager_name": "Marie Dupont",
            "password_unknown": true,
            "forwarding": { "targets": [], "computed": false },
            "verification_link": "https://bma.example/verification/CODE", "expires_on": "6 mai 2024",
            "contact": { "name": "Équipe migration du SGNE", "email": "migrationbma@cfwb.be", "phone": "+32 (0)2 413.3090" },
            "sender_name": "Service général du Numérique éducatif (SGNE)",
            "deadline": "24 mai 2024", "count": 1,
            "faq_url": "https://www.enseignement.be/bma", "login_domain": "cerbere.example",
            "mailboxes": [{ "address": "ec012345@adm.cfwb.be", "name": "Athénée royal de Namur", "why": "mail 1 bounced" }],
            "migrated_on": "4 juin 2024", "webmail_url": "https://webmail.example",
            "password_link": "https://bma.example/mot-de-passe/TOKEN", "password_expires_on": "18 juin 2024",
            "new_password": null, "resent": false,
            "guides_url": "https://bma.example/guides", "forwards_removed": [], "rules_left_out": false,
            "imap_host": "imap.example", "imap_port": 993, "imap_security": "SSL/TLS",
            "smtp_host": "smtp.example", "smtp_port": 587, "smtp_security": "STARTTLS",
        })
    }

    #[test]
    fn the_daily_report_gives_the_day_the_campaign_and_what_needs_a_human() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        let r = t.render(TemplateKind::DailyReport, &c).unwrap();
        assert_eq!(r.subject, "Migration des BMA, rapport du 3 juin 2024 : 100 / 3500 migrées, 41 à traiter");
        for needle in [
            "emails envoyés : 120 ; revenus en erreur : 2",
            "formulaires reçus : 40 ; corrigés : 3",
            "51234 messages copiés (1,5 Go)",
            "bascules : 12 ; bascules annulées : 1",
            "  . inscrite : 40",
            "- invitée : 3400\n- migrée : 100",
            "41 boîte(s) attendent une intervention",
            "  - ec012345@adm.cfwb.be : mail 1 revenu en erreur (depuis le 2 juin 2024)",
            "… et 1 autre(s), dans la console.",
            "https://bma.example/console/tableau-de-bord",
        ] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        assert!(r.html.is_none());
        c["attention_count"] = 0.into();
        c["attention"] = serde_json::json!([]);
        c["attention_more"] = 0.into();
        let r = t.render(TemplateKind::DailyReport, &c).unwrap();
        assert!(r.text.contains("Aucune boîte n'attend une intervention."), "{}", r.text);
    }

    #[test]
    fn mail_2_sent_again_says_so_and_never_carries_a_password() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        c["resent"] = true.into();
        c["password_link"] = serde_json::Value::Null;
        for unknown in [true, false] {
            c["password_unknown"] = unknown.into();
            let r = t.render(TemplateKind::Migrated, &c).unwrap();
            assert!(r.subject.starts_with("Copie : Votre BMA"), "{}", r.subject);
            let html = shown(r.html.as_deref().unwrap());
            for text in [&r.text, &html] {
                assert!(text.contains("nouvelle copie du message envoyé à la migration"), "{text}");
                assert!(!text.contains("mot-de-passe/") && !text.contains("Ce lien l'affiche"), "{text}");
                assert_eq!(text.contains("jamais repris dans une copie"), unknown, "{text}");
            }
        }
    }

    #[test]
    fn mail_2_says_what_the_faq_says() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        c["password_unknown"] = false.into();
        c["password_link"] = serde_json::Value::Null;
        c["contact"] = serde_json::json!({ "name": "Service Desk de l'ETNIC", "email": "support@etnic.be", "phone": "02 800 10 10" });
        let r = t.render(TemplateKind::Migrated, &c).unwrap();
        assert_eq!(r.subject, "Votre BMA ec012345@adm.cfwb.be est migrée : accédez à la nouvelle interface");
        for needle in [
            "https://webmail.example",
            "Votre adresse et votre mot de passe ne changent pas",
            "multipliée par 25",
            "serveur imap.example, port 993, SSL/TLS",
            "serveur smtp.example, port 587, STARTTLS",
            "Service Desk de l'ETNIC :\nsupport@etnic.be, 02 800 10 10",
            "nom,\nprénom et adresse mail administrative",
            "https://www.enseignement.be/bma",
        ] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        let html = shown(&r.html.unwrap());
        assert!(html.contains("Votre adresse et votre mot de passe ne changent pas"), "{html}");
        c["password_unknown"] = true.into();
        let r = t.render(TemplateKind::Migrated, &c).unwrap();
        assert!(!r.text.contains("ne changent pas") && r.text.contains("nouveau mot de passe"), "{}", r.text);
        c["password_link"] = "https://bma.example/mot-de-passe/TOKEN".into();
        let r = t.render(TemplateKind::Migrated, &c).unwrap();
        for needle in [
            "https://bma.example/mot-de-passe/TOKEN",
            "une seule fois, jusqu'au\n  18 juin 2024",
            "avec le nouveau mot de passe",
        ] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        assert!(shown(&r.html.unwrap()).contains("https://bma.example/mot-de-passe/TOKEN"));
        // `passwords.delivery = "inline"`: the password written out, no link.
        c["password_link"] = serde_json::Value::Null;
        c["new_password"] = "pomme-nuage-tigre-violon-42".into();
        let r = t.render(TemplateKind::Migrated, &c).unwrap();
        for needle in ["Le voici", "\n  pomme-nuage-tigre-violon-42\n", "avec le nouveau mot de passe"] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        assert!(!r.text.contains("/mot-de-passe/"), "{}", r.text);
        assert!(shown(&r.html.unwrap()).contains("pomme-nuage-tigre-violon-42"));
    }

    #[test]
    fn mail_2_names_the_forwarding_taken_out_and_links_the_guides() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        let r = t.render(TemplateKind::Migrated, &c).unwrap();
        let html = shown(r.html.as_deref().unwrap());
        for text in [&r.text, &html] {
            assert!(text.contains("Configurer Outlook, Thunderbird, Apple Mail ou votre smartphone"), "{text}");
            assert!(text.contains("https://bma.example/guides"), "{text}");
            assert!(!text.contains("Redirections automatiques retirées") && !text.contains("n'ont pas pu"), "{text}");
        }
        assert!(r.text.contains("/guides\n\nUne question"), "one blank line: {}", r.text);
        c["forwards_removed"] = serde_json::json!([
            { "target": "x***@gmail.com", "removed": "redirect" },
            { "target": "y***@hotmail.com", "removed": "redirect_copy" },
            { "target": "z***@skynet.be", "removed": "notify" },
        ]);
        c["rules_left_out"] = true.into();
        let r = t.render(TemplateKind::Migrated, &c).unwrap();
        for needle in [
            "Redirections automatiques retirées. La nouvelle plateforme ne permet pas de\ntransférer automatiquement",
            "- vers x***@gmail.com : les messages qui y étaient redirigés restent\n  désormais dans votre boîte.",
            "- vers y***@hotmail.com : la copie qui y était envoyée ne l'est plus",
            "- vers z***@skynet.be : l'avis qui y était envoyé",
            "n'ont pas pu être\nreprises",
            "interface web.\n\nUne question",
        ] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        let html = shown(r.html.as_deref().unwrap());
        for needle in [
            "Redirections automatiques retirées.",
            "vers x***@gmail.com\u{a0}: les messages qui y étaient",
            "redirigés restent désormais dans votre boîte",
            "vers y***@hotmail.com\u{a0}: la copie",
            "n'ont pas pu être reprises",
        ] {
            assert!(html.contains(needle), "missing {needle:?} in\n{html}");
        }
    }

    #[test]
    fn the_invitation_says_what_the_faq_says() {
        let t = Templates::load(None).unwrap();
        let r = t.render(TemplateKind::Invitation, &context()).unwrap();
        assert_eq!(
            r.subject,
            "Migration de votre boîte mail administrative ec012345@adm.cfwb.be : formulaire à compléter avant le 13 mai 2024"
        );
        for needle in [
            "https://bma.example/formulaire/TOKEN",
            "identifiants Cerbère EDU",
            "multipliée par 25",
            "Entre 3 et 12 semaines",
            "redirections automatiques",
            "Équipe migration du SGNE, migrationbma@cfwb.be, +32 (0)2 413.3090",
        ] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        let html = r.html.unwrap();
        // Values are HTML-escaped, in attributes too (`/` as `&#x2f;`, which every client decodes).
        assert!(html.contains("href=\"https:&#x2f;&#x2f;bma.example&#x2f;formulaire&#x2f;TOKEN\""), "{html}");
        assert!(html.contains("Athénée royal de Namur"));
    }

    #[test]
    fn mail_1_and_reminders_name_the_forwarding_found() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        for kind in [TemplateKind::Invitation, TemplateKind::Reminder] {
            c["forwarding"] = serde_json::json!({ "targets": [], "computed": false });
            let r = t.render(kind, &c).unwrap();
            assert!(!r.text.contains("redirige aujourd'hui"), "{}", r.text);
            c["forwarding"] = serde_json::json!({ "targets": ["m***@gmail.com", "s***@skynet.be"], "computed": true });
            let r = t.render(kind, &c).unwrap();
            let said = "redirige aujourd'hui automatiquement des messages vers\nm***@gmail.com, s***@skynet.be et vers une adresse calculée par une règle.";
            assert!(r.text.contains(said), "{kind:?}: {}", r.text);
            assert!(r.text.contains("ces messages resteront dans votre BMA"), "{}", r.text);
            assert!(r.html.unwrap().contains("m***@gmail.com, s***@skynet.be et vers une adresse calculée"));
            c["forwarding"] = serde_json::json!({ "targets": [], "computed": true });
            let r = t.render(kind, &c).unwrap();
            assert!(r.text.contains("des messages vers\nune adresse calculée par une règle."), "{}", r.text);
        }
    }

    #[test]
    fn html_escapes_values() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        c["name"] = "École <b>&</b>".into();
        let r = t.render(TemplateKind::Invitation, &c).unwrap();
        assert!(r.html.unwrap().contains("École &lt;b&gt;&amp;&lt;&#x2f;b&gt;"));
    }

    #[test]
    fn a_missing_variable_is_an_error() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        c.as_object_mut().unwrap().remove("form_link");
        let e = t.render(TemplateKind::Invitation, &c).unwrap_err();
        assert!(e.to_string().contains("invitation"), "{e}");
    }

    #[test]
    fn every_kind_renders_and_files_override() {
        let t = Templates::load(None).unwrap();
        for kind in TemplateKind::ALL {
            let r = t.render(kind, &context()).unwrap();
            assert!(!r.subject.is_empty() && r.text.contains("ec012345@adm.cfwb.be"), "{kind:?}");
        }
        let dir = std::env::temp_dir().join(format!("bma-mail-tpl-{}", std::process::id()));
        Templates::write_builtin(&dir).unwrap();
        std::fs::write(dir.join("reminder.txt"), "Subject: Rappel {{ address }}\nBonjour {{ name }}\n").unwrap();
        let t = Templates::load(Some(&dir)).unwrap();
        let r = t.render(TemplateKind::Reminder, &context()).unwrap();
        assert_eq!(
            (r.subject.as_str(), r.text.as_str()),
            ("Rappel ec012345@adm.cfwb.be", "Bonjour Athénée royal de Namur\n")
        );
        std::fs::write(dir.join("reminder.txt"), "no subject line\n").unwrap();
        assert!(matches!(Templates::load(Some(&dir)), Err(TemplateError::NoSubject(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What a person sees in an HTML part: entities decoded.
    fn shown(html: &str) -> String {
        html.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&amp;", "&").replace("&nbsp;", "\u{a0}")
    }

    /// Every email carrying a link says, in both parts, where the link leads
    /// (in full), which domains to expect, that we never ask for the BMA's
    /// password, and where the official FAQ is; and whose the BMA is.
    #[test]
    fn emails_a_school_can_trust() {
        let t = Templates::load(None).unwrap();
        let never = "nous ne vous demanderons jamais le mot de passe de votre BMA";
        let cases = [
            (TemplateKind::Invitation, "https://bma.example/formulaire/TOKEN", true),
            (TemplateKind::Reminder, "https://bma.example/formulaire/TOKEN", true),
            (TemplateKind::Confirmation, "https://bma.example/formulaire/TOKEN", true),
            (TemplateKind::BackupVerification, "https://bma.example/verification/CODE", false),
        ];
        for (kind, link, names_login) in cases {
            for (address, whose) in [
                ("ec012345@adm.cfwb.be", "de l'établissement Athénée royal de Namur"),
                ("po000042@adm.cfwb.be", "du pouvoir organisateur Athénée royal de Namur"),
            ] {
                let mut c = context();
                c["address"] = address.into();
                let r = t.render(kind, &c).unwrap();
                let html = shown(r.html.as_deref().unwrap_or_else(|| panic!("{kind:?} has no HTML part")));
                // Line breaks of the text part are not where a reader looks for words.
                let text = r.text.split_whitespace().collect::<Vec<_>>().join(" ");
                let html_words = html.split_whitespace().collect::<Vec<_>>().join(" ");
                for part in [&text, &html_words] {
                    for needle in [link, "bma.example", never, "https://www.enseignement.be/bma", whose] {
                        assert!(part.contains(needle), "{kind:?} {address}: no {needle:?} in\n{part}");
                    }
                    assert_eq!(part.contains("cerbere.example"), names_login, "{kind:?}: the login's domain");
                }
                assert!(html.contains(&format!(">{link}</a>")), "{kind:?}: the link's address shown: {html}");
            }
        }
    }

    #[test]
    fn hosts_and_owners() {
        for (url, host) in [
            ("https://bma.example/formulaire/X", "bma.example"),
            ("http://127.0.0.1:8080/formulaire/X", "127.0.0.1"),
            ("https://Login.Cerbere.Example", "login.cerbere.example"),
            ("https://user@idp.example:8443/realms/edu?x=1", "idp.example"),
            ("http://[::1]:9090/", "::1"),
        ] {
            assert_eq!(url_host(url), host, "{url}");
        }
        assert_eq!(owner_fr(" Athénée ", "ec012345@adm.cfwb.be"), "de l'établissement Athénée");
        assert_eq!(owner_fr("Ville de Namur", "PO000042@adm.cfwb.be"), "du pouvoir organisateur Ville de Namur");
    }
}
