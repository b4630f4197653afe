//! The cutover's `sieve` step on the lab's real servers, on both store
//! backends: a mailbox's legacy Sieve scripts (put over the legacy
//! ManageSieve as Roundcube would: an active script forwarding to Gmail,
//! copying to Hotmail, redirecting to another BMA under a condition, with
//! a vacation; an inactive old redirect) read back from the new platform's
//! ManageSieve (the lab's policy proxy in front of Pigeonhole) after the
//! cutover: the same names, the same active script, the external
//! redirect now `keep;`, the `:copy` one gone, everything else byte for
//! byte; the step's event holding the diff; mail 2, read from the new
//! INBOX, naming the forwarding taken out (masked) and linking the guides,
//! and mail 2 sent again saying it too. A box without scripts: nothing
//! said. A script the reader cannot read and one the new platform refuses
//! (a computed redirect target): left out, recorded with why, the mailbox
//! flagged, the cutover done all the same. A new platform without
//! ManageSieve configured: the step says so, writes nothing, flags nothing.
//!
//! Each test has mailboxes of its own (fresh `ec…` addresses). Needs
//! `cargo xtask lab up`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bma_core::switch::Step;
use bma_core::{AttentionReason, State};
use bma_engine::{Engine, EngineSettings, SwitchOutcome};
use bma_mail::Templates;
use bma_platform::managesieve::Client;
use bma_store::Store;
use bma_tests::engine::{lab_engine_settings, lab_platform, lab_smtp};
use bma_tests::sieve::{lab_put_scripts, lab_sieve_config, lab_sieve_master};
use bma_tests::switch::{fresh_address, lab_switch_settings, legacy_mailbox, scheduled};
use bma_tests::{TestBackend, TestDb, addr, lab_file, lab_inbox, on_both_backends};
use time::macros::datetime;

const PASSWORD: &str = "mot-de-passe-de-la-bma";

/// Roundcube's rules: forwarding outside (without and with a copy), a
/// rule for another BMA, an absence message (both under conditions, so
/// that the route's probe and mail 2 trigger neither).
const ROUNDCUBE: &str = "require [\"copy\",\"vacation\"];\r\n\
# rule:[renvoi]\r\n\
if true\r\n\
{\r\n\
\tredirect \"x@gmail.com\";\r\n\
\tredirect :copy \"y@hotmail.com\";\r\n\
}\r\n\
# rule:[collègue]\r\n\
if header :contains \"subject\" \"facture\"\r\n\
{\r\n\
\tredirect \"ec000042@adm.cfwb.be\";\r\n\
}\r\n\
# rule:[absence]\r\n\
if header :contains \"subject\" \"absence-test\"\r\n\
{\r\n\
\tvacation :days 7 :subject \"Absence\" \"Le secr\u{e9}tariat est ferm\u{e9} jusqu'au 2 septembre.\";\r\n\
}\r\n";
/// What the new platform must hold instead.
const ROUNDCUBE_STRIPPED: &str = "require [\"copy\",\"vacation\"];\r\n\
# rule:[renvoi]\r\n\
if true\r\n\
{\r\n\
\tkeep;\r\n\
}\r\n\
# rule:[collègue]\r\n\
if header :contains \"subject\" \"facture\"\r\n\
{\r\n\
\tredirect \"ec000042@adm.cfwb.be\";\r\n\
}\r\n\
# rule:[absence]\r\n\
if header :contains \"subject\" \"absence-test\"\r\n\
{\r\n\
\tvacation :days 7 :subject \"Absence\" \"Le secr\u{e9}tariat est ferm\u{e9} jusqu'au 2 septembre.\";\r\n\
}\r\n";
const OLD: &str = "redirect \"ancien.directeur@hotmail.com\";\r\n";
const FILTERS: &str =
    "require \"fileinto\";\r\nif header :contains \"subject\" \"facture\" { fileinto \"INBOX\"; }\r\n";
/// A target the reader cannot know: kept by the strip, refused by the new platform.
const COMPUTED: &str =
    "require [\"variables\"];\r\nif header :matches \"x-renvoi\" \"*\" { set \"t\" \"${1}\"; redirect \"${t}\"; }\r\n";
const BROKEN: &[u8] = b"require \"fileinto\";\r\nif header :contains \"subject\" \"x\" {\r\n  redirect \"a@b.be\"\r\n";

fn engine(store: Store) -> Engine {
    let settings = EngineSettings {
        new: Some(lab_platform("new")),
        switch: Some(lab_switch_settings()),
        ..lab_engine_settings("bounces@bma.test")
    };
    Engine::new(store, Templates::load(None).expect("templates"), settings, lab_smtp(), "test-sieve")
}

/// Writes a script straight into the legacy box's Sieve directory (the
/// server refuses to store a script it cannot compile; a legacy server
/// may hold one anyway), owned like the scripts the server wrote.
fn plant(address: &str, name: &str, source: &[u8]) {
    use std::os::unix::fs::MetadataExt as _;
    let lab = lab_file("lab.json");
    let (local, domain) = address.split_once('@').expect("an address");
    let dir = Path::new(lab["legacy"]["home_root"].as_str().expect("home_root")).join(domain).join(local).join("sieve");
    let owner = std::fs::metadata(&dir).expect("the Sieve directory exists (a script was put)");
    let path = dir.join(format!("{name}.sieve"));
    std::fs::write(&path, source).expect("planted");
    std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("owned");
}

/// `user`'s scripts on a lab platform, read as the master user: each
/// name with its bytes, and the active one.
async fn scripts_on(platform: &str, user: &str) -> (BTreeMap<String, String>, Option<String>) {
    let mut c = Client::login(&lab_sieve_config(platform), &lab_sieve_master(user)).await.expect("ManageSieve login");
    let mut out = BTreeMap::new();
    let mut active = None;
    for s in c.list_scripts().await.expect("LISTSCRIPTS") {
        let bytes = c.get_script(&s.name).await.expect("GETSCRIPT");
        if s.active {
            active = Some(s.name.clone());
        }
        out.insert(s.name, String::from_utf8(bytes).expect("UTF-8"));
    }
    c.logout().await.expect("logout");
    (out, active)
}

/// Mail 2's text and HTML in `user`'s new INBOX (the cutover's copy, or
/// the one sent again, told by `resent`).
async fn mail2(user: &str, resent: bool) -> (String, String) {
    for _ in 0..100 {
        for raw in lab_inbox("new", user).await {
            let Some(text) = bma_mail::inspect::part(&raw, "text/plain") else { continue };
            if text.contains("a été migrée") && text.contains("nouvelle copie du message") == resent {
                let html = bma_mail::inspect::part(&raw, "text/html").expect("an HTML part");
                let text = text.replace("\r\n", "\n");
                return (text, html.replace("&#x2f;", "/").replace("&nbsp;", "\u{a0}").replace("&#x27;", "'"));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no mail 2 (resent: {resent}) in the new INBOX of {user}");
}

/// The record of the script `name` in the step's details.
fn script<'a>(details: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    details["scripts"].as_array().expect("scripts").iter().find(|s| s["name"] == name).expect("the script's record")
}

async fn cut_over(engine: &Engine, address: &str) {
    let outcome = engine.cut_over(address, datetime!(2024-06-04 06:00 UTC)).await.expect("cut over");
    assert!(matches!(outcome, SwitchOutcome::Migrated(_)), "{outcome:?}");
}

async fn scripts_are_carried_without_their_external_forwarding_and_mail_2_says_so(backend: TestBackend) {
    let (forwards, bare) = (fresh_address(), fresh_address());
    for a in [&forwards, &bare] {
        legacy_mailbox(a, PASSWORD).await;
    }
    let scripts: [(&str, &[u8]); 2] = [("roundcube", ROUNDCUBE.as_bytes()), ("ancien", OLD.as_bytes())];
    lab_put_scripts("legacy", &forwards, &scripts, Some("roundcube")).await;
    lab_put_scripts("legacy", &bare, &[], None).await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let now = datetime!(2024-06-04 06:00 UTC);
    for a in [&forwards, &bare] {
        scheduled(&store, a, now).await;
    }
    let engine = engine(store.clone());
    cut_over(&engine, &forwards).await;
    cut_over(&engine, &bare).await;

    // The same names, the same active script; external forwarding gone,
    // the rest byte for byte.
    let (on_new, active) = scripts_on("new", &forwards).await;
    assert_eq!(active.as_deref(), Some("roundcube"));
    assert_eq!(on_new.keys().collect::<Vec<_>>(), ["ancien", "roundcube"]);
    assert_eq!(on_new["roundcube"], ROUNDCUBE_STRIPPED);
    assert_eq!(on_new["ancien"], "keep;\r\n");
    // The legacy scripts are as they were.
    let (on_legacy, _) = scripts_on("legacy", &forwards).await;
    assert_eq!(on_legacy["roundcube"], ROUNDCUBE);

    // The step's event holds the diff; nothing to flag.
    let progress = store.switch_steps(&addr(&forwards)).await.expect("steps");
    assert_eq!(progress.done(), Step::ALL);
    let details = progress.details(Step::Sieve).expect("the sieve step's details");
    assert_eq!((details["outcome"].as_str(), details["active"].as_str()), (Some("migrated"), Some("roundcube")));
    assert_eq!(details["active_set"], true);
    let roundcube = script(details, "roundcube");
    assert_eq!((roundcube["name"].as_str(), roundcube["stored"].as_bool()), (Some("roundcube"), Some(true)));
    let changes: Vec<(u64, &str, &str, &str, &str, bool)> = roundcube["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["line"].as_u64().expect("line"),
                c["removed"].as_str().expect("removed"),
                c["before"].as_str().expect("before"),
                c["after"].as_str().expect("after"),
                c["targets"][0].as_str().expect("target"),
                c["runs"].as_bool().expect("runs"),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (5, "redirect", "redirect \"x@gmail.com\";", "keep;", "x@gmail.com", true),
            (6, "redirect_copy", "redirect :copy \"y@hotmail.com\";", "", "y@hotmail.com", true),
        ]
    );
    let ancien = script(details, "ancien");
    assert_eq!((ancien["name"].as_str(), ancien["changes"][0]["runs"].as_bool()), (Some("ancien"), Some(false)));
    assert!(!details.to_string().contains("secr"), "the scripts' text is not kept: {details}");
    let flags = store.attention_list().await.expect("attention");
    assert!(!flags.iter().any(|f| f.address == forwards || f.address == bare), "{flags:?}");

    // Mail 2 names what no longer forwards (what ran only), masked, and links the guides.
    let (text, html) = mail2(&forwards, false).await;
    for needle in [
        "Redirections automatiques retirées",
        "- vers x***@gmail.com : les messages qui y étaient redirigés restent\n  désormais dans votre boîte.",
        "- vers y***@hotmail.com : la copie qui y était envoyée ne l'est plus",
        "Configurer Outlook, Thunderbird, Apple Mail ou votre smartphone :\n\n  http://127.0.0.1:8080/guides\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains("x@gmail.com") && !text.contains("y@hotmail.com"), "{text}");
    assert!(!text.contains("n'ont pas pu"), "{text}");
    assert!(
        html.contains("vers x***@gmail.com\u{a0}: les messages")
            && html.contains("href=\"http://127.0.0.1:8080/guides\"")
    );

    // The box without scripts: nothing said of forwarding, the guides all the same.
    let details =
        store.switch_steps(&addr(&bare)).await.expect("steps").details(Step::Sieve).cloned().expect("details");
    assert_eq!(details["scripts"], serde_json::json!([]));
    let (text, _) = mail2(&bare, false).await;
    assert!(!text.contains("Redirections automatiques") && !text.contains("n'ont pas pu"), "{text}");
    assert!(text.contains("http://127.0.0.1:8080/guides"), "{text}");
    assert!(scripts_on("new", &bare).await.0.is_empty());

    // Mail 2 sent again says it again, from the step's event.
    let op = bma_engine::operations::Operation {
        actor: bma_core::Actor::Operator("agent.martin".into()),
        reason: bma_engine::operations::Reason::new("appel : mail 2 supprimé").expect("a reason"),
        at: now,
    };
    bma_engine::operations::resend_mail2(&engine, &addr(&forwards), &op).await.expect("resend mail 2");
    engine.send_due(now + time::Duration::minutes(5)).await.expect("outbox");
    let (text, _) = mail2(&forwards, true).await;
    assert!(text.contains("- vers x***@gmail.com : les messages qui y étaient redirigés"), "{text}");
    store.close().await;
    db.drop_db().await;
}

async fn a_script_left_out_is_recorded_and_flagged_and_the_cutover_goes_on(backend: TestBackend) {
    let address = fresh_address();
    legacy_mailbox(&address, PASSWORD).await;
    let scripts: [(&str, &[u8]); 2] = [("filtres", FILTERS.as_bytes()), ("calcul", COMPUTED.as_bytes())];
    lab_put_scripts("legacy", &address, &scripts, Some("filtres")).await;
    plant(&address, "casse", BROKEN);
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    scheduled(&store, &address, datetime!(2024-06-04 06:00 UTC)).await;
    cut_over(&engine(store.clone()), &address).await;
    assert_eq!(store.mailbox(&addr(&address)).await.expect("mailbox").state, State::Migrated);

    // Only the script both sides could take is on the new platform, active.
    let (on_new, active) = scripts_on("new", &address).await;
    assert_eq!(on_new.keys().collect::<Vec<_>>(), ["filtres"]);
    assert_eq!((on_new["filtres"].as_str(), active.as_deref()), (FILTERS, Some("filtres")));

    // Each left out is recorded with why.
    let details =
        store.switch_steps(&addr(&address)).await.expect("steps").details(Step::Sieve).cloned().expect("details");
    let by_name: BTreeMap<&str, &serde_json::Value> = details["scripts"]
        .as_array()
        .expect("scripts")
        .iter()
        .map(|s| (s["name"].as_str().expect("name"), s))
        .collect();
    assert_eq!(by_name.keys().copied().collect::<Vec<_>>(), ["calcul", "casse", "filtres"]);
    assert_eq!(by_name["filtres"]["stored"], true);
    let casse = by_name["casse"];
    assert_eq!((casse["stored"].as_bool(), casse["not_stored"].as_str()), (Some(false), Some("unreadable")));
    assert!(casse["why"].as_str().is_some_and(|w| w.contains("line 4")), "{casse}");
    let calcul = by_name["calcul"];
    assert_eq!((calcul["stored"].as_bool(), calcul["not_stored"].as_str()), (Some(false), Some("refused")));
    // The new platform's own reason, in French.
    assert!(calcul["why"].as_str().is_some_and(|w| w.contains("adresse calculée par le script")), "{calcul}");

    // Flagged for a human, with the scripts named.
    let flags = store.attention_list().await.expect("attention");
    let flag = flags.iter().find(|f| f.address == address).expect("flagged");
    assert_eq!(flag.reason, AttentionReason::SieveNotMigrated);
    let m = store.mailbox(&addr(&address)).await.expect("mailbox");
    let events = store.timeline(m.id).await.expect("timeline");
    let why = events.iter().find(|e| e.kind == "attention").map(|e| e.reason.clone()).expect("an attention event");
    assert!(why.contains("\"casse\"") && why.contains("\"calcul\""), "{why}");

    // Mail 2 says some rules are to be made again; no forwarding was taken out.
    let (text, _) = mail2(&address, false).await;
    assert!(text.contains("n'ont pas pu être\nreprises") && !text.contains("Redirections automatiques"), "{text}");
    store.close().await;
    db.drop_db().await;
}

async fn without_managesieve_on_the_new_platform_the_step_records_so_and_passes(backend: TestBackend) {
    let address = fresh_address();
    legacy_mailbox(&address, PASSWORD).await;
    let scripts: [(&str, &[u8]); 1] = [("roundcube", ROUNDCUBE.as_bytes())];
    lab_put_scripts("legacy", &address, &scripts, Some("roundcube")).await;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    scheduled(&store, &address, datetime!(2024-06-04 06:00 UTC)).await;
    let mut new = lab_platform("new");
    new.sieve = None;
    let settings = EngineSettings {
        new: Some(new),
        switch: Some(lab_switch_settings()),
        ..lab_engine_settings("bounces@bma.test")
    };
    let engine =
        Engine::new(store.clone(), Templates::load(None).expect("templates"), settings, lab_smtp(), "no-sieve");
    cut_over(&engine, &address).await;

    let details =
        store.switch_steps(&addr(&address)).await.expect("steps").details(Step::Sieve).cloned().expect("details");
    assert_eq!(details["outcome"], "not_configured", "{details}");
    assert!(details["error"].as_str().is_some_and(|e| e.contains("new")), "{details}");
    assert!(scripts_on("new", &address).await.0.is_empty(), "nothing written");
    let flags = store.attention_list().await.expect("attention");
    assert!(!flags.iter().any(|f| f.address == address), "{flags:?}");
    let (text, _) = mail2(&address, false).await;
    assert!(!text.contains("Redirections automatiques") && !text.contains("n'ont pas pu"), "{text}");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(
    scripts_are_carried_without_their_external_forwarding_and_mail_2_says_so,
    a_script_left_out_is_recorded_and_flagged_and_the_cutover_goes_on,
    without_managesieve_on_the_new_platform_the_step_records_so_and_passes,
);
