//! Forwarding on the new platform, against the lab's real servers: refused
//! at upload and at delivery when it would leave the organisation, working
//! when it stays inside.
//!
//! At upload: scripts go through the new platform's public ManageSieve port
//! (the lab's policy proxy in front of Dovecot), as the mailbox's own user:
//! a redirect (with or without `:copy`) or a `mailto:` notification to an
//! address outside the internal domains (`adm.cfwb.be`; a subdomain is
//! outside), or to a target computed by the script, gets `NO` with the
//! French reason, for PUTSCRIPT and CHECKSCRIPT alike, and is not stored;
//! internal redirects, vacation, and the word `redirect` in a comment or a
//! string are accepted and stored byte for byte; answers stay in the order
//! of the commands when they are pipelined.
//!
//! At delivery: a script installed by an administrator (`doveadm sieve
//! put`, no ManageSieve) that redirects outside keeps the message in the
//! INBOX, and the relay's redirect listener refused the recipient (nothing
//! was queued for it); an internal redirect lands in the other BMA's INBOX.
//!
//! Needs `cargo xtask lab up`. Each test has mailboxes of its own.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bma_imap::Secret;
use bma_platform::managesieve::{Client, Login, SieveError};
use bma_tests::lab_file;
use bma_tests::sieve::lab_sieve_config;

const PASSWORD: &str = "secret-sieve-policy";

/// The reason the new platform gives for an action that sends `target` outside.
fn refused_outside(action: Action, target: &str) -> String {
    format!(
        "{} vers une adresse extérieure ({target}) ne sont pas autorisées sur la nouvelle plateforme de messagerie. \
         Seules les adresses @adm.cfwb.be sont acceptées.",
        action.words()
    )
}

/// The reason for an action whose target the script computes.
fn refused_computed(action: Action, target: &str) -> String {
    format!(
        "{} vers une adresse calculée par le script ({target}) ne sont pas autorisées sur la nouvelle plateforme de \
         messagerie. Seules les adresses @adm.cfwb.be sont acceptées.",
        action.words()
    )
}

#[derive(Clone, Copy)]
enum Action {
    Redirect,
    Notify,
}

impl Action {
    fn words(self) -> &'static str {
        match self {
            Action::Redirect => "Les redirections automatiques",
            Action::Notify => "Les notifications par e-mail",
        }
    }
}

/// A token unique to this run and call.
fn token(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{what}-{}-{nanos:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Runs `xtask lab ARGS` (the binary that wrote lab.json).
fn xtask(args: &[&str]) {
    let lab = lab_file("lab.json");
    let exe = lab["xtask"].as_str().expect("xtask");
    let out = Command::new(exe).arg("lab").args(args).output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(out.status.success(), "xtask lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A new-platform mailbox whose mail the relay routes to the new platform.
fn new_mailbox(address: &str) {
    xtask(&["adduser", "new", address, PASSWORD, "--backend", "files"]);
    xtask(&["route", address, "new"]);
}

/// The mailbox's own ManageSieve session on the new platform's public port,
/// with no script left from an earlier run.
async fn sieve_as(address: &str) -> Client {
    let mut c = Client::login(&lab_sieve_config("new"), &Login::user(address, Secret::new(PASSWORD)))
        .await
        .expect("ManageSieve login through the policy proxy");
    c.set_active("").await.expect("deactivate");
    for old in c.list_scripts().await.expect("LISTSCRIPTS") {
        c.delete_script(&old.name).await.expect("DELETESCRIPT");
    }
    c
}

/// The server's words when it refuses a command.
fn refusal(result: Result<Option<String>, SieveError>, what: &str) -> String {
    match result {
        Err(SieveError::Refused { text, .. }) => text,
        other => panic!("{what}: expected NO, got {other:?}"),
    }
}

#[tokio::test]
async fn scripts_sending_mail_outside_are_refused_at_upload_with_the_french_reason() {
    let address = "ec870001@adm.cfwb.be";
    new_mailbox(address);
    let mut c = sieve_as(address).await;
    let redirect = Action::Redirect;
    let notify = Action::Notify;
    let cases: Vec<(&str, String, String)> = vec![
        ("plain", "redirect \"quelquun@gmail.com\";\r\n".into(), refused_outside(redirect, "quelquun@gmail.com")),
        (
            "copy",
            "require [\"copy\"];\r\nredirect :copy \"Secretariat.Ecole@Outlook.com\";\r\n".into(),
            refused_outside(redirect, "Secretariat.Ecole@Outlook.com"),
        ),
        (
            "conditional",
            "require \"fileinto\";\r\nif address :domain \"from\" \"cfwb.be\" {\r\n  fileinto \"INBOX\";\r\n} \
             else {\r\n  REDIRECT \"a@b.example\";\r\n}\r\n"
                .into(),
            refused_outside(redirect, "a@b.example"),
        ),
        (
            "subdomain",
            "redirect \"ec870009@ecoles.adm.cfwb.be\";\r\n".into(),
            refused_outside(redirect, "ec870009@ecoles.adm.cfwb.be"),
        ),
        (
            "second-of-two",
            "redirect :copy \"ec870009@adm.cfwb.be\";\r\nredirect \"x@hotmail.be\";\r\n".into(),
            refused_outside(redirect, "x@hotmail.be"),
        ),
        (
            "variable",
            "require [\"variables\"];\r\nset \"dest\" \"quelquun@gmail.com\";\r\nredirect \"${dest}\";\r\n".into(),
            refused_computed(redirect, "${dest}"),
        ),
        (
            "multi-line",
            "if header :contains \"subject\" \"x\" {\r\n  keep;\r\n} elsif true {\r\n  redirect text:\r\n\
             quelquun@gmail.com\r\n.\r\n;\r\n}\r\n"
                .into(),
            refused_outside(redirect, "quelquun@gmail.com"),
        ),
        (
            "encoded",
            "require \"encoded-character\";\r\nredirect \"x${hex:40}gmail.com\";\r\n".into(),
            refused_computed(redirect, "x${hex:40}gmail.com"),
        ),
        (
            "notify-draft",
            "require \"notify\";\r\nnotify :method \"mailto\" :options [\"alerte@gmail.com\"];\r\n".into(),
            refused_outside(notify, "alerte@gmail.com"),
        ),
        (
            "notify",
            "require [\"enotify\"];\r\nnotify :message \"Nouveau message\" \"mailto:alerte@gmail.com\";\r\n".into(),
            refused_outside(notify, "alerte@gmail.com"),
        ),
        (
            "notify-cc",
            "require [\"enotify\"];\r\nnotify \"mailto:ec870009@adm.cfwb.be?cc=copie%40gmail.com\";\r\n".into(),
            refused_outside(notify, "copie@gmail.com"),
        ),
    ];
    for (name, script, reason) in &cases {
        let put = refusal(c.put_script(name, script.as_bytes()).await, &format!("PUTSCRIPT {name}"));
        assert_eq!(&put, reason, "PUTSCRIPT {name}");
        let check = refusal(c.check_script(script.as_bytes()).await, &format!("CHECKSCRIPT {name}"));
        assert_eq!(&check, reason, "CHECKSCRIPT {name}");
    }
    let stored = c.list_scripts().await.expect("LISTSCRIPTS");
    assert!(stored.is_empty(), "refused scripts were stored: {stored:?}");
    c.logout().await.expect("logout");
}

#[tokio::test]
async fn internal_redirects_and_vacation_are_accepted_and_stored() {
    let address = "ec870002@adm.cfwb.be";
    new_mailbox(address);
    let mut c = sieve_as(address).await;
    let cases: [(&str, &str); 7] = [
        ("interne", "redirect \"ec870003@adm.cfwb.be\";\r\n"),
        ("interne-copie", "require \"copy\";\r\nredirect :copy \"Ec870003@ADM.cfwb.be\";\r\n"),
        (
            "vacances",
            "require [\"vacation\"];\r\nvacation :days 7 :subject \"Absent\" text:\r\nJe suis absent; pour \
             redirect \"x@gmail.com\", voyez le secrétariat.\r\n..un point\r\n.\r\n;\r\n",
        ),
        ("commentaire", "# redirect \"quelquun@gmail.com\";\r\n/* redirect \"x@gmail.com\"; */\r\nkeep;\r\n"),
        ("chaine", "require \"fileinto\";\r\nfileinto \"redirect \\\"quelquun@gmail.com\\\"\";\r\n"),
        ("notify-interne", "require \"enotify\";\r\nnotify \"mailto:ec870003@adm.cfwb.be\";\r\n"),
        (
            "test-sur-adresse",
            "if address :is \"from\" \"quelquun@gmail.com\" {\r\n  redirect \"ec870003@adm.cfwb.be\";\r\n}\r\n",
        ),
    ];
    for (name, script) in cases {
        c.check_script(script.as_bytes()).await.unwrap_or_else(|e| panic!("CHECKSCRIPT {name}: {e}"));
        c.put_script(name, script.as_bytes()).await.unwrap_or_else(|e| panic!("PUTSCRIPT {name}: {e}"));
        assert_eq!(c.get_script(name).await.expect("GETSCRIPT"), script.as_bytes(), "{name} stored as sent");
    }
    c.set_active("interne").await.expect("SETACTIVE");
    let mut names: Vec<String> = c.list_scripts().await.expect("LISTSCRIPTS").into_iter().map(|s| s.name).collect();
    names.sort();
    let mut expected: Vec<String> = cases.iter().map(|(n, _)| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected);
    c.logout().await.expect("logout");
}

/// Just enough raw ManageSieve to pipeline commands: every response line,
/// literals inlined.
fn read_response_lines(r: &mut BufReader<TcpStream>, finals: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut seen = 0;
    while seen < finals {
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).expect("read");
        assert!(!line.is_empty(), "connection closed after {lines:?}");
        if let Some(n) = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.trim_end().strip_suffix('}'))
            .and_then(|l| l.rsplit_once('{'))
            .and_then(|(_, n)| n.parse::<usize>().ok())
        {
            let mut literal = vec![0; n];
            r.read_exact(&mut literal).expect("literal");
            line.extend_from_slice(&literal);
            r.read_until(b'\n', &mut line).expect("read");
        }
        let text = String::from_utf8(line).expect("UTF-8 response");
        if text.starts_with("OK") || text.starts_with("NO") || text.starts_with("BYE") {
            seen += 1;
        }
        lines.push(text.trim_end().to_owned());
    }
    lines
}

/// Standard base64 with padding (SASL PLAIN's initial response).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= c.len() { char::from(A[(n >> (18 - 6 * i)) as usize & 63]) } else { '=' });
        }
    }
    out
}

#[test]
fn pipelined_commands_after_a_refused_one_are_answered_in_order() {
    let address = "ec870004@adm.cfwb.be";
    new_mailbox(address);
    let lab = lab_file("lab.json");
    let port = lab["new"]["managesieve_port"].as_u64().expect("port") as u16;
    let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    w.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut r = BufReader::new(w.try_clone().expect("clone"));
    let mut w = w;
    read_response_lines(&mut r, 1);
    let sasl = base64(format!("\0{address}\0{PASSWORD}").as_bytes());
    w.write_all(format!("AUTHENTICATE \"PLAIN\" \"{sasl}\"\r\n").as_bytes()).expect("write");
    assert!(read_response_lines(&mut r, 1)[0].starts_with("OK"));
    w.write_all(b"DELETESCRIPT \"dehors\"\r\nDELETESCRIPT \"dedans\"\r\n").expect("write");
    read_response_lines(&mut r, 2);

    let outside = "require \"copy\";\r\nredirect :copy \"quelquun@gmail.com\";\r\n";
    let inside = "redirect \"ec870005@adm.cfwb.be\";\r\n";
    // Every form of string the grammar allows: the script name as a
    // literal, the script as a literal, the script as a quoted string.
    let pipelined = format!(
        "PUTSCRIPT {{6+}}\r\ndehors {{{}+}}\r\n{outside}\r\nPUTSCRIPT \"dedans\" {{{}+}}\r\n{inside}\r\n\
         CHECKSCRIPT \"redirect \\\"x@gmail.com\\\";\"\r\nNOOP \"apres\"\r\nLISTSCRIPTS\r\nLOGOUT\r\n",
        outside.len(),
        inside.len()
    );
    w.write_all(pipelined.as_bytes()).expect("write");
    let lines = read_response_lines(&mut r, 6);
    let expected = [
        format!("NO \"{}\"", refused_outside(Action::Redirect, "quelquun@gmail.com")),
        "OK".to_owned(),
        format!("NO \"{}\"", refused_outside(Action::Redirect, "x@gmail.com")),
        "OK (TAG \"apres\")".to_owned(),
        "\"dedans\"".to_owned(),
        "OK".to_owned(),
        "OK".to_owned(),
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(&expected) {
        assert!(line.starts_with(want.as_str()), "expected {want:?} in order, got {lines:#?}");
    }
}

/// Installs `script` as `user`'s active script on the new platform the way
/// an administrator would, bypassing ManageSieve.
fn admin_installs(user: &str, script: &str) {
    let lab = lab_file("lab.json");
    let mut child = Command::new("doveadm")
        .arg("-c")
        .arg(lab["new"]["config"].as_str().expect("config"))
        .args(["sieve", "put", "-a", "-u", user, "admin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("doveadm sieve put");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script");
    assert!(child.wait().expect("doveadm").success(), "doveadm sieve put for {user}");
}

/// One message to `to` through the lab relay, found again by its id.
fn deliver(to: &str, id: &str) {
    let lab = lab_file("lab.json");
    let port = lab["smtp"]["port"].as_u64().expect("port") as u16;
    let from = "parent.eleve@ecole.test";
    let message =
        format!("From: {from}\nTo: {to}\nSubject: Inscription {id}\nMessage-ID: <{id}@ecole.test>\n\nBonjour, {id}.\n");
    bma_tests::smtp::send(port, from, to, &message);
}

/// How many messages of `user`'s INBOX on the new platform carry `id`,
/// once there is one (within 15 s), or 0.
async fn in_new_inbox(user: &str, id: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = bma_tests::lab_inbox("new", user)
            .await
            .iter()
            .filter(|m| m.windows(id.len()).any(|w| w == id.as_bytes()))
            .count();
        if found > 0 || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The relay's log lines that name `address`.
fn relay_log_about(address: &str) -> Vec<String> {
    let lab = lab_file("lab.json");
    let log = std::fs::read_to_string(lab["smtp"]["log"].as_str().expect("log")).expect("postfix log");
    log.lines().filter(|l| l.contains(address)).map(str::to_owned).collect()
}

#[tokio::test]
async fn an_external_redirect_installed_by_an_admin_keeps_the_message_and_sends_nothing_out() {
    let user = "ec870006@adm.cfwb.be";
    new_mailbox(user);
    let id = token("dehors");
    let outside = format!("{id}@gmail.com");
    admin_installs(user, &format!("require \"copy\";\r\nredirect :copy \"{outside}\";\r\nredirect \"{outside}\";\r\n"));
    deliver(user, &id);
    assert_eq!(in_new_inbox(user, &id).await, 1, "the message stays in the INBOX, once");
    let log = relay_log_about(&outside);
    assert!(
        log.iter().any(|l| l.contains("/redirect/smtpd") && l.contains("NOQUEUE: reject: RCPT")),
        "the redirect listener refused {outside}: {log:#?}"
    );
    assert!(
        log.iter().all(|l| l.contains("NOQUEUE: reject")),
        "nothing was accepted for {outside} (a queued message has a queue id): {log:#?}"
    );
}

#[tokio::test]
async fn an_internal_redirect_delivers_to_the_other_bma() {
    let (user, other) = ("ec870007@adm.cfwb.be", "ec870008@adm.cfwb.be");
    new_mailbox(user);
    new_mailbox(other);
    admin_installs(other, "keep;\r\n");
    // through ManageSieve, as its user would: the policy lets it in
    let mut c = sieve_as(user).await;
    let script = format!("redirect \"{}\";\r\n", other.to_uppercase());
    c.put_script("vers-collegue", script.as_bytes()).await.expect("an internal redirect is accepted");
    c.set_active("vers-collegue").await.expect("SETACTIVE");
    c.logout().await.expect("logout");
    let id = token("dedans");
    deliver(user, &id);
    assert_eq!(in_new_inbox(other, &id).await, 1, "redirected to the other BMA's INBOX");
    assert_eq!(in_new_inbox_now(user, &id).await, 0, "a redirect without :copy keeps no copy");
}

/// Like [`in_new_inbox`] without waiting.
async fn in_new_inbox_now(user: &str, id: &str) -> usize {
    bma_tests::lab_inbox("new", user).await.iter().filter(|m| m.windows(id.len()).any(|w| w == id.as_bytes())).count()
}
