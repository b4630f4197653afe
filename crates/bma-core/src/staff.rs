//! The helpdesk console's staff: their roles, the actions they take, and
//! the one rule that says who may take which.
//!
//! ```text
//!   agent  ──▶  operator  ──▶  admin       (each role can do all of the one before)
//!   │            │              │
//!   │ search, read, call note,  │ campaign start/pause/resume,
//!   │ resend mail 1 and 2,      │ exports with personal data
//!   │ new verification link,    │
//!   │ exports                   │
//!   │            │
//!   │            pin, exclude, priority, block/unblock, retry a presync,
//!   │            cut over, roll back, new password
//! ```
//!
//! | action                         | least role | confirmed on a second page |
//! |--------------------------------|------------|----------------------------|
//! | call note                      | agent      | no                         |
//! | resend mail 1                  | agent      | no                         |
//! | resend mail 2 (no password)    | agent      | no                         |
//! | new verification link          | agent      | no                         |
//! | pin / unpin                    | operator   | no                         |
//! | priority                       | operator   | no                         |
//! | exclude / readmit              | operator   | yes (exclude)              |
//! | block / unblock                | operator   | yes (block)                |
//! | retry presync                  | operator   | no                         |
//! | cut over                       | operator   | yes                        |
//! | roll back                      | operator   | yes                        |
//! | new password                   | operator   | yes                        |
//! | campaign start, pause, resume  | admin      | yes (pause)                |
//! | export a list with personal data | admin    | no                         |
//! | erase a person's personal data | admin      | yes                        |
//!
//! Rules: [`allows`] is the only decision (the console checks it on the
//! server for every route and action); a role comes from the identity
//! provider's claim or from the configured lists ([`role_of`]), the highest
//! found wins, and no role means no access. No I/O.

use crate::named::named_set;

named_set! {
    /// What a member of staff may do, in increasing order of power.
    pub enum Role / UnknownRole ("staff role") {
        /// Helpdesk agent: finds callers, reads, resends, notes calls.
        Agent = "agent",
        /// Migration operator: also changes a mailbox's planning and state, cuts over.
        Operator = "operator",
        /// Administrator: also runs the campaign and handles personal data.
        Admin = "admin",
    }
}

impl Role {
    /// The role's name in French, for the pages.
    pub fn label_fr(self) -> &'static str {
        match self {
            Role::Agent => "agent du helpdesk",
            Role::Operator => "opérateur de migration",
            Role::Admin => "administrateur",
        }
    }

    /// A role named by a claim value or a configuration key, in English or
    /// French, any case (`operator`, `opérateur`, `operateur`, `admin`, …).
    pub fn from_claim(value: &str) -> Option<Role> {
        match crate::search::fold(value.trim()).as_str() {
            "agent" | "agents" | "helpdesk" => Some(Role::Agent),
            "operator" | "operators" | "operateur" | "operateurs" => Some(Role::Operator),
            "admin" | "admins" | "administrator" | "administrateur" => Some(Role::Admin),
            _ => None,
        }
    }
}

named_set! {
    /// What the console lets staff do, each through the engine's operation.
    pub enum StaffAction / UnknownStaffAction ("console action") {
        /// Record a call, changing nothing.
        CallNote = "call_note",
        /// Send mail 1 again with a fresh link.
        ResendInvitation = "resend_invitation",
        /// Send mail 2 again (a migrated mailbox), without any password.
        ResendMail2 = "resend_mail2",
        /// Send a new verification link to the backup address.
        NewVerificationLink = "new_verification_link",
        /// Pin to a wave, or unpin.
        Pin = "pin",
        /// Set the planning priority.
        Priority = "priority",
        /// Leave out of the planning.
        Exclude = "exclude",
        /// Readmit to the planning.
        Readmit = "readmit",
        /// Block the mailbox where it stands.
        Block = "block",
        /// Unblock it.
        Unblock = "unblock",
        /// Queue a presync again.
        RetryPresync = "retry_presync",
        /// Cut the mailbox over now.
        Cutover = "cutover",
        /// Roll a cutover back.
        Rollback = "rollback",
        /// Give a new password.
        ResetPassword = "reset_password",
        /// Start the campaign.
        CampaignStart = "campaign_start",
        /// Pause the campaign.
        CampaignPause = "campaign_pause",
        /// Resume the campaign.
        CampaignResume = "campaign_resume",
        /// Export a list that holds personal data (the people of a search),
        /// or all that is held about one person (GDPR art. 15).
        ExportPersonalData = "export_personal_data",
        /// Erase one person's personal data (GDPR art. 17).
        ErasePersonalData = "erase_personal_data",
        /// Import the registry of mailboxes (checked on a first page, applied from it).
        ImportRegistry = "import_registry",
    }
}

impl StaffAction {
    /// The least role that may take it.
    pub fn least_role(self) -> Role {
        use StaffAction as A;
        match self {
            A::CallNote | A::ResendInvitation | A::ResendMail2 | A::NewVerificationLink => Role::Agent,
            A::Pin
            | A::Priority
            | A::Exclude
            | A::Readmit
            | A::Block
            | A::Unblock
            | A::RetryPresync
            | A::Cutover
            | A::Rollback
            | A::ResetPassword => Role::Operator,
            A::CampaignStart
            | A::CampaignPause
            | A::CampaignResume
            | A::ExportPersonalData
            | A::ErasePersonalData
            | A::ImportRegistry => Role::Admin,
        }
    }

    /// Whether it acts on one mailbox (its page's buttons); the others act
    /// on the campaign, on a person's data or on the registry.
    pub fn on_mailbox(self) -> bool {
        use StaffAction as A;
        !matches!(
            self,
            A::CampaignStart
                | A::CampaignPause
                | A::CampaignResume
                | A::ExportPersonalData
                | A::ErasePersonalData
                | A::ImportRegistry
        )
    }

    /// Whether it is confirmed on a second page before it runs.
    pub fn is_destructive(self) -> bool {
        use StaffAction as A;
        matches!(
            self,
            A::Exclude
                | A::Block
                | A::Cutover
                | A::Rollback
                | A::ResetPassword
                | A::CampaignPause
                | A::ErasePersonalData
        )
    }

    /// The button's words, in French.
    pub fn label_fr(self) -> &'static str {
        use StaffAction as A;
        match self {
            A::CallNote => "Noter un appel",
            A::ResendInvitation => "Renvoyer le mail 1 (nouveau lien)",
            A::ResendMail2 => "Renvoyer le mail 2 (sans mot de passe)",
            A::NewVerificationLink => "Renvoyer le lien de vérification de l'adresse de secours",
            A::Pin => "Épingler à une vague",
            A::Priority => "Changer la priorité",
            A::Exclude => "Exclure de la planification",
            A::Readmit => "Réadmettre dans la planification",
            A::Block => "Bloquer",
            A::Unblock => "Débloquer",
            A::RetryPresync => "Relancer la présynchronisation",
            A::Cutover => "Basculer maintenant",
            A::Rollback => "Annuler la bascule",
            A::ResetPassword => "Donner un nouveau mot de passe",
            A::CampaignStart => "Démarrer la campagne",
            A::CampaignPause => "Mettre la campagne en pause",
            A::CampaignResume => "Reprendre la campagne",
            A::ExportPersonalData => "Exporter une liste avec des données personnelles",
            A::ErasePersonalData => "Effacer les données personnelles d'une personne",
            A::ImportRegistry => "Importer le registre des boîtes",
        }
    }
}

/// Whether `role` may take `action`: the only decision.
pub fn allows(role: Role, action: StaffAction) -> bool {
    role >= action.least_role()
}

/// The lists of the configuration: who has which role, by identity
/// subject or email (any case).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleLists {
    /// Helpdesk agents.
    pub agents: Vec<String>,
    /// Migration operators.
    pub operators: Vec<String>,
    /// Administrators.
    pub admins: Vec<String>,
}

/// The role of a person who logged in: the highest of those their claim
/// values name and those the lists give their subject or email; `None`
/// when neither gives one.
pub fn role_of(subject: &str, email: &str, claim_values: &[String], lists: &RoleLists) -> Option<Role> {
    let listed = |list: &[String]| {
        list.iter().any(|who| {
            let who = who.trim();
            !who.is_empty() && (who == subject || (!email.is_empty() && who.eq_ignore_ascii_case(email)))
        })
    };
    let from_lists = [(Role::Admin, &lists.admins), (Role::Operator, &lists.operators), (Role::Agent, &lists.agents)]
        .into_iter()
        .find(|(_, list)| listed(list))
        .map(|(r, _)| r);
    let from_claim = claim_values.iter().filter_map(|v| Role::from_claim(v)).max();
    from_lists.max(from_claim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_needs_its_role_and_each_role_has_the_one_before() {
        use StaffAction as A;
        // (action, agent, operator, admin)
        let table = [
            (A::CallNote, true, true, true),
            (A::ResendInvitation, true, true, true),
            (A::ResendMail2, true, true, true),
            (A::NewVerificationLink, true, true, true),
            (A::Pin, false, true, true),
            (A::Priority, false, true, true),
            (A::Exclude, false, true, true),
            (A::Readmit, false, true, true),
            (A::Block, false, true, true),
            (A::Unblock, false, true, true),
            (A::RetryPresync, false, true, true),
            (A::Cutover, false, true, true),
            (A::Rollback, false, true, true),
            (A::ResetPassword, false, true, true),
            (A::CampaignStart, false, false, true),
            (A::CampaignPause, false, false, true),
            (A::CampaignResume, false, false, true),
            (A::ExportPersonalData, false, false, true),
            (A::ErasePersonalData, false, false, true),
            (A::ImportRegistry, false, false, true),
        ];
        assert_eq!(table.len(), StaffAction::ALL.len(), "every action is in the table");
        for (action, agent, operator, admin) in table {
            assert_eq!(
                [allows(Role::Agent, action), allows(Role::Operator, action), allows(Role::Admin, action)],
                [agent, operator, admin],
                "{action}"
            );
        }
    }

    #[test]
    fn destructive_actions_are_confirmed() {
        let confirmed: Vec<&str> = StaffAction::ALL.iter().filter(|a| a.is_destructive()).map(|a| a.as_str()).collect();
        assert_eq!(
            confirmed,
            ["exclude", "block", "cutover", "rollback", "reset_password", "campaign_pause", "erase_personal_data"]
        );
    }

    #[test]
    fn roles_from_claims_and_lists() {
        let lists = RoleLists {
            agents: vec!["cerbere-0100".into()],
            operators: vec!["Ops@Etnic.test".into()],
            admins: vec![" ".into()],
        };
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let cases: &[(&str, &str, &[&str], Option<Role>)] = &[
            ("nobody", "", &[], None),
            ("nobody", "", &["teacher", ""], None),
            ("cerbere-0100", "", &[], Some(Role::Agent)),
            ("x", "ops@etnic.test", &[], Some(Role::Operator)),
            ("x", "", &["Opérateur"], Some(Role::Operator)),
            ("x", "", &["agent", "ADMIN"], Some(Role::Admin)),
            ("cerbere-0100", "", &["operator"], Some(Role::Operator)),
            ("x", "ops@etnic.test", &["agent"], Some(Role::Operator)),
            // an empty list entry names nobody, an empty email matches nothing
            ("", "", &[], None),
        ];
        for (subject, email, claims, want) in cases {
            assert_eq!(role_of(subject, email, &v(claims), &lists), *want, "{subject} {email} {claims:?}");
        }
    }
}
