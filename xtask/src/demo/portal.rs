//! The demo's managers on the portal, as they go: mail 1 read from their
//! legacy mailbox over IMAP, its link followed, a login at the lab's
//! OpenID Connect provider, the form filled (`bma-visitor`, the walk the
//! tests take), the backup address confirmed from the link that reached
//! it; after the cutovers, what they find: mail 2 on both sides, the old
//! password on the new platform, a new password read from its link for the
//! manager who had lost it, mail delivered to the new platform.
//!
//! `bma serve` runs on the demo's store and clock while they do, its
//! scheduler stepping every second so that the outbox sends the emails the
//! portal queues (the verification links); it is stopped when the walk is
//! over, and on error. Nothing is looked up in the store: every link comes
//! from a mailbox.

use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bma_imap::{Auth, Client, Config, MailboxName, Secret, Security, UidSet};
use bma_visitor::{Answers, Visitor, link_in};

use super::{Demo, PORTAL, SeedMailbox};

/// The lab's legacy and new IMAP ports.
const LEGACY_IMAP: u16 = 10143;
const NEW_IMAP: u16 = 20143;

/// Who answers for each of the demo's managers: their Cerbère EDU login
/// (`lab/oidc/accounts.json`, password `password`), names, and the backup
/// address they give (a lab mailbox, where the link to confirm it arrives).
const PEOPLE: [(&str, &str, &str, &str); 3] = [
    ("directrice.dupont", "Dupont", "Marie", "marie.dupont@ecole.test"),
    ("secretaire.martin", "Martin", "Luc", "luc.martin@ecole.test"),
    ("directeur.lejeune", "Lejeune", "Éric", "eric.lejeune@ecole.test"),
];

/// `bma serve` on the demo's store and clock, stopped when dropped.
struct Serve {
    child: Child,
}

impl Serve {
    fn start(demo: &Demo) -> anyhow::Result<Serve> {
        let log = std::fs::File::create(demo.dir.join("serve.log"))?;
        println!("\n$ bma --config bma.toml serve --scheduler-interval 1s   (in the background, log in serve.log)");
        let child = demo
            .command(&["--config", "bma.toml", "serve", "--scheduler-interval", "1s"])?
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start bma serve")?;
        let serve = Serve { child };
        let start = Instant::now();
        while TcpStream::connect("127.0.0.1:8080").is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("bma serve does not listen on 8080 after 30 s; see {}", demo.dir.join("serve.log").display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(serve)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Every message of `address`'s INBOX on the platform at `port`, raw, read
/// with the lab's master user.
async fn inbox(port: u16, address: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let config = Config::new("127.0.0.1", port).with_security(Security::None);
    let mut c = Client::connect(&config).await?;
    let auth = Auth::Plain {
        authzid: Some(address.to_owned()),
        authcid: "admin".to_owned(),
        password: Secret::new("adminpass"),
    };
    c.login(&auth).await?;
    c.select(&MailboxName::new("INBOX")).await?;
    let mut out = Vec::new();
    {
        let mut bodies = c.fetch_bodies(&UidSet::all()).await?;
        while let Some(m) = bodies.next().await? {
            out.push(m.body);
        }
    }
    let _ = c.logout().await;
    Ok(out)
}

/// The links under `prefix` in `address`'s legacy INBOX, oldest first,
/// read in the text part as a mail client shows it.
async fn links(address: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
    Ok(inbox(LEGACY_IMAP, address)
        .await?
        .iter()
        .filter_map(|raw| bma_mail::inspect::part(raw, "text/plain"))
        .filter_map(|text| link_in(&text, prefix))
        .collect())
}

/// Waits (up to 30 s) for a link under `prefix` beyond the `seen` first ones.
async fn new_link(address: &str, prefix: &str, seen: usize) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        let mut found = links(address, prefix).await?;
        if found.len() > seen {
            return found.pop().context("a link");
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("no new {prefix}… link reached {address} in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The three managers answer the form; the second says they do not know
/// the BMA's password. Returns that mailbox's address.
pub fn answer_forms<'a>(demo: &Demo, managers: &[&'a str]) -> anyhow::Result<&'a str> {
    let lost = *managers.get(1).context("three managers")?;
    let verification = format!("{PORTAL}/verification/");
    let serve = Serve::start(demo)?;
    runtime()?.block_on(async {
        for (address, (login, family, given, backup)) in managers.iter().zip(PEOPLE) {
            let link = find_mail1_link(address, PORTAL).await?;
            let seen = links(backup, &verification).await?.len();
            let visitor = Visitor::new()?;
            let answers = Answers {
                family_name: family.to_owned(),
                given_name: given.to_owned(),
                phone: "081 23 45 67".to_owned(),
                role: "direction".to_owned(),
                backup_email: backup.to_owned(),
                knows_password: address != &lost,
            };
            let answered = visitor.enrol(&link, login, "password", &answers).await?;
            let said =
                if answers.knows_password { "connaît le mot de passe" } else { "ne connaît pas le mot de passe" };
            println!("  {address}: {login} logged in at Cerbère EDU, form sent ({}; {said})", answered.status);
            let confirm = new_link(backup, &verification, seen).await?;
            visitor.confirm(&confirm).await?;
            println!("  {backup}: the link of the verification email followed, the backup address confirmed");
        }
        anyhow::Ok(())
    })?;
    drop(serve);
    Ok(lost)
}

/// What the managers find after the cutovers: mail 2 in the legacy and new
/// INBOX of `kept` (who knew the password), the old password logging into
/// the new platform, a message sent now landing there; for `lost`, the new
/// password read from the link of mail 2 and logging in, the old one not.
pub fn after_cutover(demo: &Demo, kept: &SeedMailbox, lost: &str) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let is_mail2 = |raw: &Vec<u8>| is_kind(&String::from_utf8_lossy(raw), "migrated");
        let (legacy, new) = (inbox(LEGACY_IMAP, &kept.address).await?, inbox(NEW_IMAP, &kept.address).await?);
        let counts = (legacy.iter().filter(|m| is_mail2(m)).count(), new.iter().filter(|m| is_mail2(m)).count());
        println!("  {}: mail 2 in the legacy INBOX ×{}, in the new INBOX ×{}", kept.address, counts.0, counts.1);
        if counts != (1, 1) {
            bail!("mail 2 of {} should be once on each side, found {counts:?}", kept.address);
        }
        login(NEW_IMAP, &kept.address, &kept.password).await.context("the old password on the new platform")?;
        println!("  {}: the old password logs into the new platform (IMAP 127.0.0.1:{NEW_IMAP})", kept.address);

        let subject = format!("Après la bascule {}", kept.address);
        let raw = format!(
            "From: Direction <direction@ecole.test>\r\nTo: {}\r\nSubject: {subject}\r\n\
             Date: Fri, 24 May 2024 10:00:00 +0200\r\nMessage-ID: <apres.{}@ecole.test>\r\n\r\nBonjour.\r\n",
            kept.address,
            kept.address.replace('@', ".")
        );
        crate::lab::send_mail("direction@ecole.test", &kept.address, &raw)?;
        let start = Instant::now();
        loop {
            let arrived = inbox(NEW_IMAP, &kept.address)
                .await?
                .iter()
                .any(|m| String::from_utf8_lossy(m).contains(&format!("Subject: {subject}")));
            if arrived {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("a message sent to {} after its cutover never reached the new platform", kept.address);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        println!("  {}: a message sent now through the lab's Postfix lands on the new platform", kept.address);
        anyhow::Ok(())
    })?;

    let prefix = format!("{PORTAL}/mot-de-passe/");
    let link =
        rt.block_on(links(lost, &prefix))?.pop().with_context(|| format!("no {prefix}… link in mail 2 of {lost}"))?;
    let serve = Serve::start(demo)?;
    let password = rt.block_on(async { Visitor::new()?.reveal_password(&link).await })?;
    drop(serve);
    rt.block_on(async {
        login(NEW_IMAP, lost, &password).await.context("the new password on the new platform")?;
        if login(NEW_IMAP, lost, &seed_password(lost)?).await.is_ok() {
            bail!("the old password of {lost} still logs into the new platform");
        }
        anyhow::Ok(())
    })?;
    println!(
        "  {lost}: the new password, shown once by the link of mail 2, logs into the new platform; the old one does not"
    );
    Ok(())
}

/// The lab's seed password of `address`.
fn seed_password(address: &str) -> anyhow::Result<String> {
    let seed = std::fs::read_to_string(crate::pipeline::root().join("target/lab/seed.json"))?;
    let seed: super::Seed = serde_json::from_str(&seed)?;
    seed.mailboxes.into_iter().find(|m| m.address == address).map(|m| m.password).context("a seeded mailbox")
}

/// The owner's own login.
async fn login(port: u16, address: &str, password: &str) -> anyhow::Result<()> {
    let config = Config::new("127.0.0.1", port).with_security(Security::None);
    let mut c = Client::connect(&config).await?;
    c.login(&Auth::Login { user: address.to_owned(), password: Secret::new(password) }).await?;
    let _ = c.logout().await;
    Ok(())
}

/// The form link of `address`'s mail 1, read from its legacy INBOX over
/// IMAP with the lab's master user (a reminder's link if mail 1 is not there).
pub fn mail1_link(address: &str, portal: &str) -> anyhow::Result<String> {
    runtime()?.block_on(find_mail1_link(address, portal))
}

async fn find_mail1_link(address: &str, portal: &str) -> anyhow::Result<String> {
    let bodies = inbox(LEGACY_IMAP, address).await?;
    let texts: Vec<String> = bodies.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    let mail1 = texts.iter().filter(|t| is_kind(t, "invitation")).find_map(|t| form_link(t, portal));
    mail1
        .or_else(|| texts.iter().rev().find_map(|t| form_link(t, portal)))
        .with_context(|| format!("no email with a {portal}/formulaire/ link"))
}

/// Whether a raw message is one the campaign sent as `kind` (its Message-ID is `<kind.…@…>`).
fn is_kind(raw: &str, kind: &str) -> bool {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("message-id:") && l.contains(&format!("<{kind}."))
    })
}

/// The first `<portal>/formulaire/<token>` link of a raw message (a token
/// is 32 characters at least).
fn form_link(raw: &str, portal: &str) -> Option<String> {
    let prefix = format!("{portal}/formulaire/");
    link_in(raw, &prefix).filter(|l| l.len() >= prefix.len() + 32)
}

#[cfg(test)]
mod tests {
    use super::{PORTAL, form_link, is_kind};

    #[test]
    fn the_link_of_mail_1_is_found_as_a_person_would() {
        let token = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
        let mail1 = format!(
            "Message-ID: <invitation.4.abc@bma.test>\r\nSubject: x\r\n\r\nOuvrez le lien :\r\n    \
             http://127.0.0.1:8080/formulai=\r\nre/{}=\r\n{}\r\n",
            &token[..20],
            &token[20..]
        );
        assert!(is_kind(&mail1, "invitation"));
        assert!(!is_kind(&mail1, "reminder"));
        assert_eq!(form_link(&mail1, PORTAL), Some(format!("{PORTAL}/formulaire/{token}")));
        let body_only = "Subject: x\r\n\r\nMessage-ID: <invitation.1@x>\r\n";
        assert!(!is_kind(body_only, "invitation"), "a header, not the body");
        assert_eq!(form_link("http://127.0.0.1:8080/formulaire/court", PORTAL), None);
        assert_eq!(form_link(&mail1, "https://autre.example"), None);
    }
}
