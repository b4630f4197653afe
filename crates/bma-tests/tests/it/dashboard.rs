//! The console's dashboard over HTTP (`/console/tableau-de-bord`): an
//! agent logged in at the lab's provider sees the figures of a seeded
//! campaign (the store's figures test's seed: mailboxes in several states
//! and waves, emails sent, a bounce, an email left unconfirmed, forms, a
//! correction, presyncs, cutovers done and planned) exactly, in the text
//! alternative of each chart, each chart an SVG image with its title; the
//! list of what needs a human oldest first; the page linked from the
//! console's navigation; nobody without a staff session sees it.

use std::time::Instant;

use bma_core::staff::RoleLists;
use bma_tests::web::{Harness, lab_console};
use bma_tests::{TestBackend, on_both_backends, provider::login_with};
use reqwest::StatusCode;
use time::macros::datetime;

use crate::figures::seed;

/// A client logged in to the console as `account`.
async fn staff(h: &Harness, account: &str) -> reqwest::Client {
    let client = bma_tests::web::client();
    let (status, url, page) = login_with(&client, &h.url("/console/connexion"), account).await;
    assert_eq!(status, StatusCode::OK, "{account} landed on {url}: {page}");
    client
}

async fn get(c: &reqwest::Client, h: &Harness, path: &str) -> (StatusCode, String) {
    let res = c.get(h.url(path)).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The table `id` of the page.
fn table<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no table {id}"));
    let end = page[start..].find("</table>").unwrap_or_else(|| panic!("table {id} not closed"));
    &page[start..start + end]
}

/// The cells of the row headed `head` in the table `id`, as written.
fn row(page: &str, id: &str, head: &str) -> Vec<String> {
    let t = table(page, id);
    let start = t.find(&format!("<th scope=\"row\">{head}</th>")).unwrap_or_else(|| panic!("{id}: no row {head}\n{t}"));
    let end = t[start..].find("</tr>").unwrap() + start;
    t[start..end].split("<td>").skip(1).map(|c| c.trim_end_matches("</td>").to_owned()).collect()
}

/// Forwarding audits of three of the seed's boxes: one forwards to Gmail
/// (and to Skynet from an inactive script), one to a computed address, one
/// has a script nobody can read.
async fn audits(store: &bma_store::Store) {
    use bma_store::{FindingKind, ForwardingAudit, ForwardingFinding, ForwardingReach};
    let finding = |active: bool, kind: FindingKind, reach: Option<ForwardingReach>, target: &str| ForwardingFinding {
        script: "roundcube".into(),
        active,
        kind,
        reach,
        target: target.into(),
        line: 3,
        copy: false,
        conditional: false,
        detail: String::new(),
    };
    let audit = |findings: Vec<ForwardingFinding>| ForwardingAudit {
        audited_at: datetime!(2024-04-22 07:00 UTC),
        scripts: 1,
        active_script: Some("roundcube".into()),
        findings,
    };
    let actor = bma_core::Actor::System("test".into());
    let boxes = [
        audit(vec![
            finding(true, FindingKind::Redirect, Some(ForwardingReach::External), "direction@gmail.com"),
            finding(false, FindingKind::Redirect, Some(ForwardingReach::External), "old@skynet.be"),
        ]),
        audit(vec![finding(true, FindingKind::Redirect, Some(ForwardingReach::Dynamic), "${to}")]),
        audit(vec![finding(true, FindingKind::Unreadable, None, "")]),
    ];
    for (i, a) in boxes.iter().enumerate() {
        let address = bma_tests::addr(&format!("ec83000{}@adm.cfwb.be", i + 1));
        store.record_forwarding_audit(&address, a, &actor).await.unwrap();
    }
}

fn cells(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.replace(' ', "\u{a0}")).collect()
}

async fn an_agent_reads_the_campaign(backend: TestBackend) {
    let h = Harness::start(backend, |s| {
        s.console = Some(lab_console(RoleLists::default()));
        s.campaign.campaign.cutover_capacity = 1;
    })
    .await;
    seed(&h.store).await;
    audits(&h.store).await;
    h.clock.set(datetime!(2024-05-15 12:00 UTC));

    // Nobody without a staff session.
    let (status, page) = get(&h.client, &h, "/console/tableau-de-bord").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");

    let c = staff(&h, "agent.helpdesk").await;
    let (_, home) = get(&c, &h, "/console").await;
    assert!(home.contains("<a href=\"/console/tableau-de-bord\">Tableau de bord</a>"), "{home}");
    let started = Instant::now();
    let (status, page) = get(&c, &h, "/console/tableau-de-bord").await;
    eprintln!("dashboard of the seed: {:?}", started.elapsed());
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Du 15 avril 2024 au 15 mai 2024 (31 jours, en temps universel)."), "{page}");

    // At a glance.
    for (id, value) in [
        ("chiffre-boites", "6"),
        ("chiffre-migrees", "1"),
        ("chiffre-formulaires", "2"),
        ("chiffre-envoyes", "7"),
        ("chiffre-erreurs", "1"),
        ("chiffre-incertains", "1"),
        ("chiffre-attente", "0"),
        ("chiffre-presync", "5,0\u{a0}Mo"),
        ("chiffre-attention", "2"),
    ] {
        assert!(page.contains(&format!("<dd id=\"{id}\">{value}</dd>")), "{id} = {value}");
    }

    // What the forwarding audits found.
    for (id, value) in
        [("redirections-auditees", "3"), ("redirections-exterieur", "2"), ("redirections-illisibles", "1")]
    {
        assert!(page.contains(&format!("<dd id=\"{id}\">{value}</dd>")), "{id} = {value}");
    }
    assert_eq!(row(&page, "redirections-domaines", "gmail.com"), cells(&["1"]));
    assert_eq!(row(&page, "redirections-domaines", "(calculée)"), cells(&["1"]));
    assert_eq!(table(&page, "redirections-domaines").matches("<th scope=\"row\">").count(), 2);

    // Every chart an image named by its title and description, with its table.
    for id in ["etats", "vagues", "progression", "emails", "formulaires", "presync", "bascules"] {
        let g = format!("graphique-{id}");
        let at = page.find(&format!("aria-labelledby=\"{g}-titre {g}-desc\"")).unwrap_or_else(|| panic!("{id}"));
        let svg_start = page[..at].rfind("<svg").unwrap();
        let svg_end = page[svg_start..].find("</svg>").unwrap() + svg_start;
        let svg = &page[svg_start..svg_end];
        assert!(svg.contains("role=\"img\""), "{id}");
        assert!(svg.contains(&format!("<title id=\"{g}-titre\">")), "{id}");
        assert!(svg.contains(&format!("<desc id=\"{g}-desc\">")), "{id}");
        assert!(svg.contains("<rect") || svg.contains("<polyline"), "{id}: something drawn");
        assert!(page.contains(&format!("id=\"tableau-{id}\"")), "{id}: its table");
    }

    // The figures, exactly, in the text alternatives.
    assert_eq!(row(&page, "tableau-etats", "en attente de planification"), cells(&["1"]));
    assert_eq!(row(&page, "tableau-etats", "invitation planifiée"), cells(&["1"]));
    assert_eq!(row(&page, "tableau-etats", "invitation envoyée"), cells(&["1"]));
    assert_eq!(row(&page, "tableau-etats", "invitation non distribuée"), cells(&["1"]));
    assert_eq!(row(&page, "tableau-etats", "formulaire reçu"), cells(&["0"]));
    assert_eq!(row(&page, "tableau-etats", "migration planifiée"), cells(&["1"]));
    assert_eq!(row(&page, "tableau-etats", "migrée"), cells(&["1"]));
    assert_eq!(row(&page, "tableau-etats", "Total"), cells(&["6"]));

    assert_eq!(row(&page, "tableau-vagues", "sans vague"), cells(&["1", "0", "0", "0", "0", "0", "0", "1"]));
    assert_eq!(row(&page, "tableau-vagues", "22 avril 2024"), cells(&["0", "1", "1", "0", "1", "1", "0", "4"]));
    assert_eq!(row(&page, "tableau-vagues", "29 avril 2024"), cells(&["1", "0", "0", "0", "0", "0", "0", "1"]));

    assert_eq!(row(&page, "tableau-emails", "22 avril 2024"), cells(&["4", "0", "0"]));
    assert_eq!(row(&page, "tableau-emails", "23 avril 2024"), cells(&["2", "1", "0"]));
    assert_eq!(row(&page, "tableau-emails", "24 avril 2024"), cells(&["1", "0", "0"]));
    assert_eq!(row(&page, "tableau-emails", "26 avril 2024"), cells(&["0", "0", "1"]));
    assert_eq!(row(&page, "tableau-emails", "14 mai 2024"), cells(&["0", "0", "0"]));

    assert_eq!(row(&page, "tableau-formulaires", "23 avril 2024"), cells(&["2", "0"]));
    assert_eq!(row(&page, "tableau-formulaires", "24 avril 2024"), cells(&["0", "1"]));

    assert_eq!(row(&page, "tableau-presync", "24 avril 2024"), cells(&["130", "5 001 000", "5,0 Mo"]));
    assert_eq!(row(&page, "tableau-presync", "25 avril 2024"), cells(&["3", "4 096", "0,0 Mo"]));

    assert_eq!(row(&page, "tableau-progression", "22 avril 2024"), cells(&["4", "0", "0"]));
    assert_eq!(row(&page, "tableau-progression", "23 avril 2024"), cells(&["4", "2", "0"]));
    assert_eq!(row(&page, "tableau-progression", "15 mai 2024"), cells(&["4", "2", "1"]));

    assert_eq!(row(&page, "tableau-bascules", "13 mai 2024"), cells(&["1", "0", "1"]));
    assert_eq!(row(&page, "tableau-bascules", "20 mai 2024"), cells(&["0", "1", "1"]));
    assert_eq!(table(&page, "tableau-bascules").matches("<th scope=\"row\">").count(), 2);
    assert!(page.contains("1 bascules faites, 1 planifiées ; capacité de 1 par semaine, jamais dépassée."), "{page}");

    // What needs a human, oldest first: the bounced mail 1, then the unconfirmed email.
    let attention = table(&page, "attention");
    let bounced = attention.find("ec830004@adm.cfwb.be").expect("the bounced mailbox");
    let unconfirmed = attention.find("ec830003@adm.cfwb.be").expect("the unconfirmed email's mailbox");
    assert!(bounced < unconfirmed, "{attention}");
    assert!(attention.contains("23 avril 2024 à 09:00 UTC"), "{attention}");
    assert_eq!(attention.matches("<tr>").count(), 3, "a header and two rows");

    // A copy recorded on a past day after this view: the next view counts it
    // (the days' counts are kept between views, read again from the
    // earliest event written since).
    crate::figures::presync(&h.store, "ec830002@adm.cfwb.be", 7, 7_000, datetime!(2024-04-25 10:00 UTC)).await;
    let (_, page) = get(&c, &h, "/console/tableau-de-bord").await;
    assert_eq!(row(&page, "tableau-presync", "25 avril 2024"), cells(&["10", "11 096", "0,0 Mo"]));
    assert_eq!(row(&page, "tableau-presync", "24 avril 2024"), cells(&["130", "5 001 000", "5,0 Mo"]));
    h.stop().await;
}

on_both_backends!(an_agent_reads_the_campaign);
