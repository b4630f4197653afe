//! The lab itself, against its real servers: legacy and new Dovecot (IMAP,
//! master user, ManageSieve policy, quotas), Postfix (delivery, per-recipient
//! routing switch, DSN bounces), the OIDC provider, the seed corpus.
//!
//! Needs `cargo xtask lab up && cargo xtask lab seed` first. Every test uses
//! its own mailbox, so they run in parallel and can be rerun.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use bma_tests::lab_file as read_json;

fn lab() -> Value {
    read_json("lab.json")
}

fn seed() -> Value {
    read_json("seed.json")
}

fn port(v: &Value) -> u16 {
    v.as_u64().expect("a port") as u16
}

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

/// A token unique to this run and call, to find our own messages.
fn token(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{what}-{}-{nanos:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Runs `xtask lab ARGS` (the binary that wrote lab.json; no cargo lock).
fn xtask(args: &[&str]) {
    let lab = lab();
    let exe = s(&lab["xtask"]);
    let out = Command::new(exe).arg("lab").args(args).output().unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(out.status.success(), "xtask lab {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

fn sasl_plain(authzid: &str, authcid: &str, password: &str) -> String {
    base64(format!("{authzid}\0{authcid}\0{password}").as_bytes())
}

/// Polls `f` until it returns Some, for at most `secs` seconds.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Just enough IMAP: tagged commands, untagged lines, literals inlined.
struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u32,
}

impl Imap {
    fn connect(port: u16) -> Imap {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("IMAP connect");
        w.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut r = BufReader::new(w.try_clone().expect("clone"));
        let mut greeting = String::new();
        r.read_line(&mut greeting).expect("greeting");
        assert!(greeting.starts_with("* OK"), "IMAP greeting: {greeting}");
        Imap { r, w, tag: 0 }
    }

    /// Sends one command; Ok(untagged lines) on OK, Err(status line) otherwise.
    fn cmd(&mut self, command: &str) -> Result<Vec<String>, String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.w.write_all(format!("{tag} {command}\r\n").as_bytes()).map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            self.r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
            // inline literals: "... {123}\r\n" + 123 bytes + rest of the line
            while let Some(n) = literal_len(&line) {
                let mut lit = vec![0; n];
                self.r.read_exact(&mut lit).map_err(|e| e.to_string())?;
                line.extend_from_slice(&lit);
                self.r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                return if rest.starts_with("OK") { Ok(lines) } else { Err(text) };
            }
            if line.is_empty() {
                return Err("connection closed".into());
            }
            lines.push(text);
        }
    }

    fn login(port: u16, user: &str, password: &str) -> Imap {
        let mut imap = Imap::connect(port);
        imap.cmd(&format!("LOGIN {} {}", quote(user), quote(password))).expect("LOGIN");
        imap
    }

    /// STATUS MESSAGES of a mailbox (name as on the wire).
    fn messages(&mut self, mailbox: &str) -> usize {
        let lines = self.cmd(&format!("STATUS {} (MESSAGES)", quote(mailbox))).expect("STATUS");
        let line = lines.iter().find(|l| l.starts_with("* STATUS")).expect("STATUS answer");
        let n = line.rsplit("MESSAGES ").next().expect("MESSAGES").trim_end_matches(')');
        n.parse().expect("a count")
    }

    /// UIDs that SEARCH finds in the selected mailbox.
    fn search(&mut self, criteria: &str) -> Vec<u32> {
        let lines = self.cmd(&format!("UID SEARCH {criteria}")).expect("SEARCH");
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().map(|n| n.parse().expect("uid")).collect::<Vec<u32>>())
            .collect()
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let body = text.strip_suffix("}\r\n")?;
    body[body.rfind('{')? + 1..].parse().ok()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn simple_message(from: &str, to: &str, id: &str) -> String {
    format!(
        "From: Tests <{from}>\nTo: <{to}>\nSubject: =?UTF-8?Q?Test_de_livraison_=C3=A9cole?= {id}\nMessage-ID: <{id}@tests.lab.bma.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nBonjour, ceci est le message {id}.\n"
    )
}

fn seed_mailbox(kind: &str, nth: usize) -> Value {
    let seed = seed();
    let boxes: Vec<&Value> =
        seed["mailboxes"].as_array().expect("mailboxes").iter().filter(|b| b["kind"] == kind).collect();
    boxes.get(nth).copied().unwrap_or_else(|| panic!("no {kind} seed mailbox #{nth}: reseed")).clone()
}

#[test]
fn seed_user_sees_its_folders_and_the_manifest_counts() {
    let lab = lab();
    let mbx = seed_mailbox("regular", 0);
    let mut imap = Imap::login(port(&lab["legacy"]["imap_port"]), s(&mbx["address"]), s(&mbx["password"]));
    let list = imap.cmd("LIST \"\" \"*\"").expect("LIST").join("\n");
    assert!(list.contains("\"&AMk-l&AOk-ments envoy&AOk-s\""), "no \"Éléments envoyés\" in\n{list}");
    for folder in mbx["folders"].as_array().expect("folders") {
        let name = s(&folder["imap_name"]);
        assert!(list.contains(name), "{name} not listed");
        assert_eq!(imap.messages(name), folder["messages"].as_u64().expect("count") as usize, "{name}");
    }
    let lsub = imap.cmd("LSUB \"\" \"*\"").expect("LSUB");
    for folder in mbx["folders"].as_array().expect("folders") {
        let name = s(&folder["imap_name"]);
        let listed = lsub
            .iter()
            .any(|l| l.ends_with(&format!("\"/\" {name}")) || l.ends_with(&format!("\"/\" {}", quote(name))));
        assert_eq!(listed, folder["subscribed"] == true, "subscription of {}", s(&folder["name"]));
    }
}

#[test]
fn hard_cases_mailbox_is_read_back_as_seeded() {
    let lab = lab();
    let mbx = seed_mailbox("hard-cases", 0);
    let mut imap = Imap::login(port(&lab["legacy"]["imap_port"]), s(&mbx["address"]), s(&mbx["password"]));
    for folder in mbx["folders"].as_array().expect("folders") {
        assert_eq!(imap.messages(s(&folder["imap_name"])), folder["messages"].as_u64().expect("n") as usize);
    }
    imap.cmd("EXAMINE INBOX").expect("EXAMINE");
    assert_eq!(imap.search("DELETED").len(), 1, "one \\Deleted message, not expunged");
    assert_eq!(imap.search("HEADER Message-ID <meme-identifiant@ecole.test>").len(), 3);
    assert_eq!(imap.search("HEADER Message-ID <doublon-exact@ecole.test>").len(), 2);
    assert_eq!(imap.search("KEYWORD $Label1 KEYWORD $MDNSent DRAFT").len(), 1);
    let big = imap.search("LARGER 4000000");
    assert_eq!(big.len(), 1, "one ~5 MB message");
    let old = imap.search("BEFORE 1-Jan-2000");
    assert_eq!(old.len(), 1, "INTERNALDATE in 1998");
    let caps = imap.cmd("CAPABILITY").expect("CAPABILITY").join(" ");
    assert!(caps.contains("CONDSTORE") && caps.contains("QRESYNC"), "{caps}");
    let lsub = imap.cmd("LSUB \"\" \"*\"").expect("LSUB").join("\n");
    assert!(!lsub.contains("Non abonn&AOk-"), "unsubscribed folder is not in LSUB");
    assert!(lsub.contains("Projets ~ &AMk-t&AOk- &- Hiver"));
}

#[test]
fn master_user_logs_in_on_behalf_of_a_user_both_ways() {
    let lab = lab();
    let port = port(&lab["legacy"]["imap_port"]);
    let mbx = seed_mailbox("regular", 1);
    let user = s(&mbx["address"]);
    let (master, password) = (s(&lab["master_user"]), s(&lab["master_password"]));
    let inbox = mbx["folders"][0]["messages"].as_u64().expect("n") as usize;

    let mut imap = Imap::connect(port);
    imap.cmd(&format!("AUTHENTICATE PLAIN {}", sasl_plain(user, master, password))).expect("SASL PLAIN authzid");
    assert_eq!(imap.messages("INBOX"), inbox);

    let login = format!("{user}{}{master}", s(&lab["master_separator"]));
    let mut imap = Imap::login(port, &login, password);
    assert_eq!(imap.messages("INBOX"), inbox);

    let mut imap = Imap::connect(port);
    assert!(imap.cmd(&format!("AUTHENTICATE PLAIN {}", sasl_plain(user, master, "wrong"))).is_err());
}

#[test]
fn quotas_are_old_and_new() {
    let lab = lab();
    xtask(&["adduser", "new", "quota.probe@bma.test", "secret-quota.probe"]);
    for (platform, user, kib) in
        [("legacy", "bounces@bma.test", 100 * 1024), ("new", "quota.probe@bma.test", 2500 * 1024)]
    {
        let login = format!("{user}{}{}", s(&lab["master_separator"]), s(&lab["master_user"]));
        let mut imap = Imap::login(port(&lab[platform]["imap_port"]), &login, s(&lab["master_password"]));
        let lines = imap.cmd("GETQUOTAROOT INBOX").expect("GETQUOTAROOT").join("\n");
        assert!(lines.contains(&format!(" {kib})")), "{platform}: {lines}");
    }
}

#[test]
fn smtp_delivers_to_the_legacy_inbox() {
    let lab = lab();
    let mbx = seed_mailbox("regular", 3);
    let to = s(&mbx["address"]);
    let id = token("delivery");
    bma_tests::smtp::send(
        port(&lab["smtp"]["port"]),
        "migrationbma@bma.test",
        to,
        &simple_message("migrationbma@bma.test", to, &id),
    );
    let mut imap = Imap::login(port(&lab["legacy"]["imap_port"]), to, s(&mbx["password"]));
    let found = eventually(5, || {
        imap.cmd("EXAMINE INBOX").expect("EXAMINE");
        let uids = imap.search(&format!("HEADER Message-ID {id}"));
        (!uids.is_empty()).then_some(uids)
    });
    assert!(found.is_some(), "message {id} not in the INBOX of {to} after 5 s; see {}", s(&lab["smtp"]["log"]));
}

#[test]
fn routing_switch_sends_the_next_mail_to_the_new_platform() {
    let lab = lab();
    let address = "ec800001@adm.cfwb.be";
    xtask(&["adduser", "new", address, "secret-ec800001"]);
    xtask(&["route", address, "new"]);
    let transport = std::fs::read_to_string(s(&lab["smtp"]["transport_map"])).expect("transport map");
    assert!(transport.contains(&format!("{address}\t{}", s(&lab["new"]["transport"]))), "{transport}");

    let id = token("routed");
    bma_tests::smtp::send(
        port(&lab["smtp"]["port"]),
        "migrationbma@bma.test",
        address,
        &simple_message("migrationbma@bma.test", address, &id),
    );
    let mut imap = Imap::login(port(&lab["new"]["imap_port"]), address, "secret-ec800001");
    let found = eventually(5, || {
        imap.cmd("EXAMINE INBOX").expect("EXAMINE");
        (!imap.search(&format!("HEADER Message-ID {id}")).is_empty()).then_some(())
    });
    assert!(found.is_some(), "routed message {id} not on the new platform; see {}", s(&lab["smtp"]["log"]));
}

#[test]
fn unknown_recipient_bounces_with_a_dsn_to_the_sender() {
    let lab = lab();
    let id = token("bounce");
    let sender = "bounces@bma.test";
    let unknown = "ec000404@adm.cfwb.be";
    bma_tests::smtp::send(port(&lab["smtp"]["port"]), sender, unknown, &simple_message(sender, unknown, &id));
    let account = lab["system_accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["address"] == sender)
        .expect("bounces account");
    let mut imap = Imap::login(port(&lab["legacy"]["imap_port"]), sender, s(&account["password"]));
    let found = eventually(8, || {
        imap.cmd("EXAMINE INBOX").expect("EXAMINE");
        let uids = imap.search(&format!("TEXT {id}"));
        uids.first().copied()
    });
    let uid = found.unwrap_or_else(|| panic!("no DSN for {id} in {sender}; see {}", s(&lab["smtp"]["log"])));
    let lines =
        imap.cmd(&format!("UID FETCH {uid} (BODY.PEEK[HEADER.FIELDS (CONTENT-TYPE FROM)])")).expect("FETCH").join("\n");
    assert!(lines.contains("multipart/report") && lines.contains("delivery-status"), "{lines}");
}

/// Just enough ManageSieve: one command, its response lines, literals inlined.
struct Sieve {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Sieve {
    fn login(port: u16, user: &str, password: &str) -> Sieve {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("ManageSieve connect");
        w.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let r = BufReader::new(w.try_clone().expect("clone"));
        let mut s = Sieve { r, w };
        s.response().expect("greeting");
        s.send(&format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\n", sasl_plain("", user, password))).expect("AUTHENTICATE");
        s
    }

    fn response(&mut self) -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut line = Vec::new();
            self.r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
            if line.is_empty() {
                return Err(format!("connection closed after {all}"));
            }
            while let Some(n) = literal_len(&line) {
                let mut lit = vec![0; n];
                self.r.read_exact(&mut lit).map_err(|e| e.to_string())?;
                line.extend_from_slice(&lit);
                self.r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            all.push_str(&text);
            if text.starts_with("OK") {
                return Ok(all);
            }
            if text.starts_with("NO") || text.starts_with("BYE") {
                return Err(all);
            }
        }
    }

    fn send(&mut self, command: &str) -> Result<String, String> {
        self.w.write_all(command.as_bytes()).map_err(|e| e.to_string())?;
        self.response()
    }

    fn put(&mut self, name: &str, script: &str) -> Result<String, String> {
        self.send(&format!("PUTSCRIPT \"{name}\" {{{}+}}\r\n{script}\r\n", script.len()))
    }
}

const FORWARD: &str = "require [\"copy\"];\r\nredirect :copy \"quelquun@gmail.com\";\r\n";

#[test]
fn new_platform_refuses_a_redirect_script_at_upload() {
    let lab = lab();
    let address = "ec800002@adm.cfwb.be";
    xtask(&["adduser", "new", address, "secret-ec800002"]);
    let mut sieve = Sieve::login(port(&lab["new"]["managesieve_port"]), address, "secret-ec800002");
    let refused = sieve.put("transfert", FORWARD).expect_err("a redirect script must be refused");
    assert!(refused.contains("adresse extérieure (quelquun@gmail.com)"), "{refused}");
    sieve.send(&format!("CHECKSCRIPT {{{}+}}\r\n{FORWARD}\r\n", FORWARD.len())).expect_err("CHECKSCRIPT refuses too");
    let conditional = "if header :contains \"subject\" \"x\" {\r\n  redirect \"a@b.example\";\r\n}\r\n";
    sieve.put("conditionnel", conditional).expect_err("a conditional redirect must be refused");
    sieve
        .put("vacances", "require \"fileinto\";\r\n# redirect in a comment is fine\r\nfileinto \"INBOX\";\r\n")
        .expect("a script without redirect is accepted");
    let listed = sieve.send("LISTSCRIPTS\r\n").expect("LISTSCRIPTS");
    assert!(listed.contains("\"vacances\"") && !listed.contains("\"transfert\""), "{listed}");
}

#[test]
fn legacy_platform_keeps_forwarding_scripts() {
    let lab = lab();
    let mbx = seed_mailbox("forward", 0);
    let mut sieve = Sieve::login(port(&lab["legacy"]["managesieve_port"]), s(&mbx["address"]), s(&mbx["password"]));
    let listed = sieve.send("LISTSCRIPTS\r\n").expect("LISTSCRIPTS");
    let script = s(&mbx["sieve"]["script"]);
    assert!(listed.contains(&format!("\"{script}\" ACTIVE")), "{listed}");
    let text = sieve.send(&format!("GETSCRIPT \"{script}\"\r\n")).expect("GETSCRIPT");
    assert!(text.contains("redirect"), "{text}");
    // the legacy platform accepts new forwards too
    sieve.put("essai-transfert", FORWARD).expect("legacy accepts redirect");
    sieve.send("DELETESCRIPT \"essai-transfert\"\r\n").expect("DELETESCRIPT");
}

#[test]
fn oidc_discovery_names_the_issuer() {
    let lab = lab();
    let issuer = s(&lab["oidc"]["issuer"]);
    let mut stream = TcpStream::connect(("127.0.0.1", port(&lab["oidc"]["port"]))).expect("OIDC connect");
    stream
        .write_all(b"GET /.well-known/openid-configuration HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("HTTP request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("HTTP response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).expect("body");
    let doc: Value = serde_json::from_str(body).expect("discovery JSON");
    assert_eq!(doc["issuer"], issuer);
    assert!(doc["code_challenge_methods_supported"].as_array().expect("PKCE").iter().any(|m| m == "S256"));
    for claim in ["sub", "name", "given_name", "family_name", "email"] {
        assert!(doc["claims_supported"].as_array().expect("claims").iter().any(|c| c == claim), "{claim}");
    }
}
