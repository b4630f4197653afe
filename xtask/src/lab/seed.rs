//! `lab seed`: seed mailboxes on the legacy platform, written as Maildir++.
//!
//! Messages are written straight into Maildir (`cur/` names with `:2,` flags,
//! mtime = INTERNALDATE, `dovecot-uidlist` for a stable UID order,
//! `dovecot-keywords`, `maildirfolder`, `subscriptions`), which is what Dovecot
//! itself would have written, only much faster. `target/lab/seed.json` lists
//! every mailbox with its password, folders and message counts. Reseeding wipes
//! the previous seed mailboxes first, so nothing is ever duplicated.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::mail::{self, Context, KEYWORDS, Message, Rng};
use super::{DOMAIN, Paths, Platform, dovecot};

/// The mailbox that holds every hard case of a migration.
pub const HARD_CASES: &str = "ec999001@adm.cfwb.be";

const OWNER_NAMES: [&str; 8] = [
    "École fondamentale communale de Jambes",
    "Athénée royal de Namur",
    "Institut Saint-Joseph",
    "École primaire libre Sainte-Thérèse",
    "Lycée Émile Jacqmain",
    "École fondamentale autonome de Liège",
    "Collège Saint-Benoît de Maredsous",
    "Centre d'éducation et de formation en alternance",
];

/// Folders of regular mailboxes: (name, share of messages in ‰ or 0 = rest).
const FOLDERS: [&str; 10] = [
    "INBOX",
    "Éléments envoyés",
    "Brouillons",
    "Corbeille",
    "Archives",
    "Archives/2022",
    "Archives/2023",
    "Réunions & Conseils",
    "Inscriptions 2024-2025",
    "Élèves/Absences",
];

/// seed.json.
#[derive(Serialize, Deserialize)]
pub struct Manifest {
    version: u32,
    generator: String,
    regular_mailboxes: usize,
    messages_per_mailbox: usize,
    bench: bool,
    mailboxes: Vec<MailboxEntry>,
}

/// One seeded mailbox.
#[derive(Serialize, Deserialize)]
pub struct MailboxEntry {
    address: String,
    password: String,
    /// "regular", "forward", "hard-cases" or "bench".
    kind: String,
    messages: usize,
    bytes: u64,
    folders: Vec<FolderEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sieve: Option<SieveEntry>,
}

/// One folder of a seeded mailbox.
#[derive(Serialize, Deserialize)]
pub struct FolderEntry {
    /// UTF-8 name with "/" as hierarchy separator.
    name: String,
    /// The name on the wire (modified UTF-7).
    imap_name: String,
    messages: usize,
    /// Messages with \Deleted set (not expunged).
    deleted: usize,
    /// Messages without \Seen.
    unseen: usize,
    subscribed: bool,
}

/// The legacy forward of a mailbox.
#[derive(Serialize, Deserialize)]
pub struct SieveEntry {
    script: String,
    active: bool,
    redirects: Vec<String>,
    text: String,
}

/// Seed part of lab.json.
#[derive(Serialize)]
pub struct SeedSummaryJson {
    manifest: PathBuf,
    mailboxes: usize,
    messages: usize,
    hard_cases: String,
    forwards: Vec<String>,
    folders: Vec<String>,
    addresses: Vec<String>,
    bench: bool,
}

/// The seed section of lab.json, if a seed exists.
pub fn summary(paths: &Paths) -> Result<Option<SeedSummaryJson>> {
    let Some(m) = read_manifest(paths)? else { return Ok(None) };
    let folders: BTreeSet<String> = m.mailboxes.iter().flat_map(|b| b.folders.iter().map(|f| f.name.clone())).collect();
    Ok(Some(SeedSummaryJson {
        manifest: paths.seed_manifest(),
        mailboxes: m.mailboxes.len(),
        messages: m.mailboxes.iter().map(|b| b.messages).sum(),
        hard_cases: HARD_CASES.into(),
        forwards: m.mailboxes.iter().filter(|b| b.sieve.is_some()).map(|b| b.address.clone()).collect(),
        folders: folders.into_iter().collect(),
        addresses: m.mailboxes.iter().map(|b| b.address.clone()).collect(),
        bench: m.bench,
    }))
}

fn read_manifest(paths: &Paths) -> Result<Option<Manifest>> {
    match fs::read_to_string(paths.seed_manifest()) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).context("unreadable seed.json; delete it and reseed")?)),
        Err(_) => Ok(None),
    }
}

/// A folder to write.
struct Folder {
    name: String,
    subscribed: bool,
    messages: Vec<Message>,
}

impl Folder {
    fn new(name: &str, subscribed: bool) -> Folder {
        Folder { name: name.into(), subscribed, messages: Vec::new() }
    }
}

/// A mailbox to write.
struct Plan {
    address: String,
    password: String,
    kind: &'static str,
    folders: Vec<Folder>,
    sieve: Option<SieveEntry>,
}

fn password_for(address: &str) -> String {
    format!("secret-{}", address.split('@').next().unwrap_or(address))
}

fn seed_of(address: &str) -> u64 {
    dovecot::fnv(address.as_bytes())
}

/// Seeds the legacy platform; returns a one-line summary.
pub fn seed(paths: &Paths, mailboxes: usize, messages: usize, bench: bool) -> Result<String> {
    let p = Platform::Legacy;
    let mut addresses = Vec::new();
    for i in 0..mailboxes {
        let address = if i % 8 == 7 {
            format!("po{:06}@{DOMAIN}", 200_001 + i * 7)
        } else {
            format!("ec{:06}@{DOMAIN}", 100_001 + i * 7)
        };
        addresses.push(address);
    }
    let mut plans: Vec<Plan> = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let mut plan = regular(address, i, messages, 0);
        if i < 2 {
            plan.kind = "forward";
            plan.sieve = Some(forward_script(i));
        }
        plans.push(plan);
    }
    plans.push(hard_cases());
    if bench {
        plans.extend(bench_plans());
    }

    // Wipe previous seed mailboxes (and anything at the new ones' paths),
    // and their copies on the new platform (an earlier demo's presync and
    // cutover): a seeded mailbox is a legacy mailbox not yet migrated.
    let old: Vec<String> =
        read_manifest(paths)?.map(|m| m.mailboxes.into_iter().map(|b| b.address).collect()).unwrap_or_default();
    for platform in Platform::ALL {
        let _ = super::proc::run(dovecot::doveadm(paths, platform).args(["kick", "*@adm.cfwb.be"]));
    }
    let new: BTreeSet<&str> = plans.iter().map(|pl| pl.address.as_str()).collect();
    for address in old.iter().map(String::as_str).chain(new.iter().copied()) {
        let roots = Platform::ALL.map(|platform| [paths.mail_root(platform), paths.home_root(platform)]);
        for root in roots.into_iter().flatten() {
            let dir = user_dir(&root, address)?;
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
            }
        }
    }
    {
        let _lock = super::proc::lock(&paths.lock())?;
        dovecot::remove_users(paths, p, |a| old.iter().any(|o| o == a) && !new.contains(a))?;
        let users: Vec<dovecot::NewUser> = plans
            .iter()
            .map(|pl| {
                let extra = (pl.kind == "bench").then(|| "userdb_quota_rule=*:storage=2G".to_string());
                (pl.address.clone(), pl.password.clone(), extra)
            })
            .collect();
        let seeded: BTreeSet<String> = plans.iter().map(|pl| pl.address.clone()).collect();
        super::provision(paths, None, p, &users)?;
        // A seeded mailbox is a legacy mailbox again: no cutover's refusal
        // or route left from an earlier demo, on either backend.
        dovecot::allow_logins(paths, &seeded)?;
        super::postfix::route_to_legacy(paths, &seeded)?;
        super::ldap::clear(paths, &seeded)?;
    }

    // Write the maildirs, two threads (the machine has two cores).
    let entries: Vec<Result<MailboxEntry>> = std::thread::scope(|s| {
        let (a, b): (Vec<_>, Vec<_>) = plans.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let ha = s.spawn(|| a.into_iter().map(|(i, pl)| write_mailbox(paths, pl, i)).collect::<Vec<_>>());
        let hb = s.spawn(|| b.into_iter().map(|(i, pl)| write_mailbox(paths, pl, i)).collect::<Vec<_>>());
        let (ra, rb) = (ha.join().expect("seed thread"), hb.join().expect("seed thread"));
        // restore plan order
        let mut out = Vec::new();
        let (mut ia, mut ib) = (ra.into_iter(), rb.into_iter());
        for i in 0..plans.len() {
            out.push(if i % 2 == 0 { ia.next() } else { ib.next() }.expect("one result per plan"));
        }
        out
    });
    let mut entries = entries.into_iter().collect::<Result<Vec<_>>>()?;

    for (plan, entry) in plans.iter().zip(entries.iter_mut()) {
        if let Some(sieve) = &plan.sieve {
            install_sieve(paths, &plan.address, sieve)?;
            entry.sieve = Some(SieveEntry {
                script: sieve.script.clone(),
                active: sieve.active,
                redirects: sieve.redirects.clone(),
                text: sieve.text.clone(),
            });
        }
    }
    verify(paths, &entries)?;

    let manifest = Manifest {
        version: 1,
        generator: "cargo xtask lab seed".into(),
        regular_mailboxes: mailboxes,
        messages_per_mailbox: messages,
        bench,
        mailboxes: entries,
    };
    let total: usize = manifest.mailboxes.iter().map(|m| m.messages).sum();
    let bytes: u64 = manifest.mailboxes.iter().map(|m| m.bytes).sum();
    dovecot::write_atomically(&paths.seed_manifest(), &(serde_json::to_string_pretty(&manifest)? + "\n"))?;
    Ok(format!(
        "{} mailboxes, {total} messages, {:.1} MB; manifest {}",
        manifest.mailboxes.len(),
        bytes as f64 / 1e6,
        paths.seed_manifest().display()
    ))
}

/// The benchmark mailboxes (`ec900000`: 3,000 messages in 11 folders;
/// `ec900001`…`ec900100`: 200 messages in 6 folders).
fn bench_plans() -> Vec<Plan> {
    let mut plans = vec![bench_mailbox(&format!("ec900000@{DOMAIN}"), 3_000, &FOLDERS_BENCH)];
    for i in 1..=100 {
        plans.push(bench_mailbox(&format!("ec{:06}@{DOMAIN}", 900_000 + i), 200, &FOLDERS_BENCH[..6]));
    }
    plans
}

/// Adds the benchmark corpus to an existing seed without touching its other
/// mailboxes (so that tests running meanwhile keep theirs); nothing to do
/// when the manifest already has it. Returns a one-line summary.
pub fn ensure_bench(paths: &Paths) -> Result<String> {
    let Some(mut manifest) = read_manifest(paths)? else { bail!("no seed yet: run `cargo xtask lab seed` first") };
    let plans = bench_plans();
    let root = paths.mail_root(Platform::Legacy);
    let present = manifest.bench
        && plans.iter().all(|pl| {
            manifest.mailboxes.iter().any(|m| m.address == pl.address)
                && user_dir(&root, &pl.address).is_ok_and(|d| d.exists())
        });
    if present {
        return Ok("benchmark corpus already seeded".into());
    }
    let base = manifest.mailboxes.len();
    let entries = write_bench_mailboxes(paths, &plans, base)?;
    let (n, bytes) = (entries.iter().map(|e| e.messages).sum::<usize>(), entries.iter().map(|e| e.bytes).sum::<u64>());
    manifest.mailboxes.retain(|m| !plans.iter().any(|pl| pl.address == m.address));
    manifest.mailboxes.extend(entries);
    manifest.bench = true;
    dovecot::write_atomically(&paths.seed_manifest(), &(serde_json::to_string_pretty(&manifest)? + "\n"))?;
    Ok(format!("benchmark corpus: {} mailboxes, {n} messages, {:.1} MB", plans.len(), bytes as f64 / 1e6))
}

/// The corpus of `cargo xtask bench cutover`: `count` legacy mailboxes
/// (`ec910001`…) of `messages` messages each in the bench's folders
/// (3,000 make ≈99 MB), written afresh (the new platform's copies are the
/// bench's to remove); not in the seed manifest. Returns each address and
/// its password.
pub fn cutover_corpus(paths: &Paths, count: usize, messages: usize) -> Result<Vec<(String, String)>> {
    let plans: Vec<Plan> = (1..=count)
        .map(|i| bench_mailbox(&format!("ec{:06}@{DOMAIN}", 910_000 + i), messages, &FOLDERS_BENCH))
        .collect();
    {
        let _lock = super::proc::lock(&paths.lock())?;
        let addresses: BTreeSet<String> = plans.iter().map(|pl| pl.address.clone()).collect();
        dovecot::allow_logins(paths, &addresses)?;
        super::postfix::route_to_legacy(paths, &addresses)?;
        super::ldap::clear(paths, &addresses)?;
    }
    write_bench_mailboxes(paths, &plans, 10_000)?;
    Ok(plans.into_iter().map(|pl| (pl.address, pl.password)).collect())
}

/// Bench mailboxes on the legacy platform, written afresh: their sessions
/// kicked and directories removed, their users (2 GB quota), their
/// maildirs in two threads (the machine has two cores); `base` numbers
/// them in the manifest.
fn write_bench_mailboxes(paths: &Paths, plans: &[Plan], base: usize) -> Result<Vec<MailboxEntry>> {
    let root = paths.mail_root(Platform::Legacy);
    for pl in plans {
        let _ = super::proc::run(dovecot::doveadm(paths, Platform::Legacy).args(["kick", &pl.address]));
        let dir = user_dir(&root, &pl.address)?;
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
    }
    {
        let _lock = super::proc::lock(&paths.lock())?;
        let users: Vec<dovecot::NewUser> = plans
            .iter()
            .map(|pl| (pl.address.clone(), pl.password.clone(), Some("userdb_quota_rule=*:storage=2G".to_string())))
            .collect();
        super::provision(paths, None, Platform::Legacy, &users)?;
    }
    let entries: Vec<Result<MailboxEntry>> = std::thread::scope(|s| {
        let (a, b): (Vec<_>, Vec<_>) = plans.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let ha = s.spawn(|| a.into_iter().map(|(i, pl)| (i, write_mailbox(paths, pl, base + i))).collect::<Vec<_>>());
        let hb = s.spawn(|| b.into_iter().map(|(i, pl)| (i, write_mailbox(paths, pl, base + i))).collect::<Vec<_>>());
        let mut all = ha.join().expect("seed thread");
        all.extend(hb.join().expect("seed thread"));
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    entries.into_iter().collect()
}

/// Directory of a user below a `%d/%n` root.
fn user_dir(root: &Path, address: &str) -> Result<PathBuf> {
    let Some((local, domain)) = address.split_once('@') else { bail!("not an address: {address}") };
    Ok(root.join(domain).join(local))
}

/// 2018-09-01 .. 2024-06-30, the legacy platform's years.
const EPOCH_START: i64 = 1_535_760_000;
const EPOCH_END: i64 = 1_719_705_600;

fn regular(address: &str, index: usize, messages: usize, attachment_bytes: usize) -> Plan {
    let mut rng = Rng::new(seed_of(address));
    let owner_name = OWNER_NAMES[index % OWNER_NAMES.len()];
    let mut folders: Vec<Folder> = FOLDERS[..4].iter().map(|f| Folder::new(f, true)).collect();
    for f in &FOLDERS[4..] {
        if rng.chance(60) {
            // an unsubscribed folder now and then, as real users have
            folders.push(Folder::new(f, !rng.chance(15)));
        }
    }
    for seq in 0..messages {
        // INBOX ~50 %, sent ~20 %, the rest spread over the other folders
        let r = rng.below(100);
        let fi = if r < 50 {
            0
        } else if r < 70 {
            1
        } else if r < 73 {
            2
        } else if r < 76 {
            3
        } else if folders.len() > 4 {
            4 + rng.below(folders.len() - 4)
        } else {
            0
        };
        let fi = fi.min(folders.len() - 1);
        let (lo, hi) = match folders[fi].name.as_str() {
            "Archives/2022" => (1_640_995_200, 1_672_531_199),
            "Archives/2023" => (1_672_531_200, 1_704_067_199),
            _ => (EPOCH_START, EPOCH_END),
        };
        let t = lo + (rng.next_u64() % (hi - lo) as u64) as i64;
        let role = match fi {
            1 => "sent",
            2 => "drafts",
            3 => "trash",
            _ => "inbox",
        };
        let ctx = Context { owner: address, owner_name, role, attachment_bytes };
        let mut msg = mail::message(&mut rng, &ctx, t, seq);
        if role == "trash" && rng.chance(30) {
            msg.flags.push('T');
        }
        folders[fi].messages.push(msg);
    }
    Plan { address: address.into(), password: password_for(address), kind: "regular", folders, sieve: None }
}

const FOLDERS_BENCH: [&str; 11] = [
    "INBOX",
    "Éléments envoyés",
    "Brouillons",
    "Corbeille",
    "Archives",
    "Archives/2021",
    "Archives/2022",
    "Archives/2023",
    "Réunions & Conseils",
    "Inscriptions",
    "Circulaires",
];

fn bench_mailbox(address: &str, messages: usize, folders: &[&str]) -> Plan {
    let mut rng = Rng::new(seed_of(address));
    let mut out: Vec<Folder> = folders.iter().map(|f| Folder::new(f, true)).collect();
    for seq in 0..messages {
        let fi = if rng.chance(40) { 0 } else { rng.below(out.len()) };
        let role = match fi {
            1 => "sent",
            2 => "drafts",
            _ => "inbox",
        };
        let ctx = Context { owner: address, owner_name: OWNER_NAMES[seq % 8], role, attachment_bytes: 78_000 };
        let t = EPOCH_START + (rng.next_u64() % (EPOCH_END - EPOCH_START) as u64) as i64;
        let msg = mail::message(&mut rng, &ctx, t, seq);
        out[fi].messages.push(msg);
    }
    Plan { address: address.into(), password: password_for(address), kind: "bench", folders: out, sieve: None }
}

fn forward_script(i: usize) -> SieveEntry {
    let (script, target, text) = if i == 0 {
        (
            "transfert",
            "direction.ecole@gmail.com",
            "# Transfert vers l'adresse personnelle de la direction\r\nrequire [\"copy\"];\r\nredirect :copy \"direction.ecole@gmail.com\";\r\n",
        )
    } else {
        (
            "regles",
            "secretariat.ecole@outlook.com",
            "require [\"fileinto\"];\r\nif header :contains \"subject\" \"Circulaire\" {\r\n  fileinto \"INBOX\";\r\n}\r\nif address :domain \"from\" \"cfwb.be\" {\r\n  redirect \"secretariat.ecole@outlook.com\";\r\n}\r\n",
        )
    };
    SieveEntry { script: script.into(), active: true, redirects: vec![target.into()], text: text.into() }
}

fn install_sieve(paths: &Paths, address: &str, sieve: &SieveEntry) -> Result<()> {
    super::proc::run_with_input(
        dovecot::doveadm(paths, Platform::Legacy).args(["sieve", "put", "-a", "-u", address, &sieve.script]),
        sieve.text.as_bytes(),
    )
    .with_context(|| format!("cannot install the Sieve script of {address}"))?;
    Ok(())
}

/// Headers of a hand-made hard-case message.
fn raw(headers: &str, body: &str) -> Vec<u8> {
    format!("{headers}\n{body}").into_bytes()
}

fn hard_cases() -> Plan {
    let address = HARD_CASES;
    let mut rng = Rng::new(seed_of(address));
    let ctx = Context { owner: address, owner_name: "École des cas limites", role: "inbox", attachment_bytes: 0 };
    let msg = |bytes: Vec<u8>, t: i64, flags: &str| Message {
        bytes,
        internal_date: t,
        flags: flags.into(),
        keywords: vec![],
    };
    let base = "From: Secrétariat <secretariat@ecole.test>\nTo: ec999001@adm.cfwb.be\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n";
    let mut inbox = Folder::new("INBOX", true);
    for seq in 0..3 {
        inbox.messages.push(mail::message(&mut rng, &ctx, 1_600_000_000 + seq as i64 * 86_400, seq));
    }
    // 1. no Message-ID
    inbox.messages.push(msg(
        raw(
            &format!("Date: Mon, 2 Mar 2020 09:00:00 +0100\n{base}Subject: Sans identifiant de message\n"),
            "Ce message n'a pas d'en-tête Message-ID.\n",
        ),
        1_583_136_000,
        "S",
    ));
    // 2. byte-identical duplicates (twice here, once more in "Cas limites/Doublons")
    let dup = raw(
        &format!(
            "Date: Tue, 3 Mar 2020 10:00:00 +0100\n{base}Subject: Doublon exact\nMessage-ID: <doublon-exact@ecole.test>\n"
        ),
        "Ce message existe trois fois, octet pour octet.\n",
    );
    inbox.messages.push(msg(dup.clone(), 1_583_226_000, "S"));
    inbox.messages.push(msg(dup.clone(), 1_583_226_000, "S"));
    // 3. three different messages sharing one Message-ID
    for (i, subject) in ["Premier", "Deuxième", "Troisième"].iter().enumerate() {
        inbox.messages.push(msg(
            raw(
                &format!("Date: Wed, 4 Mar 2020 1{i}:00:00 +0100\n{base}Subject: {} message, même Message-ID\nMessage-ID: <meme-identifiant@ecole.test>\n", mail::encoded_word(subject)),
                &format!("Contenu différent numéro {}.\n", i + 1),
            ),
            1_583_312_400 + i as i64 * 3600,
            if i == 1 { "" } else { "S" },
        ));
    }
    // 4. \Deleted, not expunged
    inbox.messages.push(msg(
        raw(&format!("Date: Thu, 5 Mar 2020 08:00:00 +0100\n{base}Subject: Marqué supprimé mais pas effacé\nMessage-ID: <supprime@ecole.test>\n"), "\\Deleted est posé, EXPUNGE n'a jamais été fait.\n"),
        1_583_391_600,
        "ST",
    ));
    // 5. 8-bit raw and malformed headers
    let mut bad = b"Date: 6 Mar 2020 25:61:00 +9999\nFrom: Jos\xe9 Fran\xe7ois <jose@ecole.test\nTo: ec999001@adm.cfwb.be, , <>\nSubject: R\xe9union \xe0 l'\xe9cole (Latin-1 brut) =?UTF-8?B?cGFzIGZpbmk?= =?ISO-8859-1?Q?caf=E9\nMessage-ID: <huit-bits@ecole.test>\nX-Sans-Deux-Points\nContent-Type: text/plain; charset=\"inconnu\nMIME-Version: 1.0\n\n".to_vec();
    bad.extend_from_slice(b"Corps en Latin-1 sans d\xe9claration valable : \xe9t\xe9, \xe0 bient\xf4t.\nEt de l'UTF-8 : \xc3\xa9t\xc3\xa9.\n");
    inbox.messages.push(msg(bad, 1_583_478_000, "S"));
    // 6. very long header lines
    let refs: Vec<String> = (0..400).map(|i| format!("<ref{i:04}.{:08x}@ecole.test>", rng.next_u64() as u32)).collect();
    inbox.messages.push(msg(
        raw(
            &format!(
                "Date: Sat, 7 Mar 2020 08:00:00 +0100\n{base}Subject: {}\nMessage-ID: <long-entete@ecole.test>\nReferences: {}\nX-Tres-Long: {}\n",
                "Sujet très long ".repeat(60).trim_end(),
                refs.join(" "),
                "x".repeat(20_000)
            ),
            "En-têtes de plus de 10 000 caractères sur une seule ligne.\n",
        ),
        1_583_564_400,
        "S",
    ));
    // 7. a large message (~5 MB)
    let big = mail::pdf(&mut rng, "Rapport annuel", 3_700_000);
    inbox.messages.push(msg(
        raw(
            "Date: Mon, 9 Mar 2020 08:00:00 +0100\nFrom: Pouvoir organisateur <po@ecole.test>\nTo: ec999001@adm.cfwb.be\nSubject: Rapport annuel (pièce jointe volumineuse)\nMessage-ID: <gros-message@ecole.test>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"gros\"\n",
            &format!("--gros\nContent-Type: text/plain; charset=utf-8\n\nVoir le rapport ci-joint.\n--gros\nContent-Type: application/pdf; name=\"rapport.pdf\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"rapport.pdf\"\n\n{}\n--gros--\n", mail::base64(&big)),
        ),
        1_583_737_200,
        "S",
    ));
    // 8. empty body, and a message that is only headers (no blank line)
    inbox.messages.push(msg(
        raw(&format!("Date: Tue, 10 Mar 2020 08:00:00 +0100\n{base}Subject: Corps vide\nMessage-ID: <corps-vide@ecole.test>\n"), ""),
        1_583_823_600,
        "S",
    ));
    inbox.messages.push(msg(
        b"Date: Tue, 10 Mar 2020 09:00:00 +0100\nFrom: robot@ecole.test\nSubject: En-tetes seulement\nMessage-ID: <entetes-seulement@ecole.test>".to_vec(),
        1_583_827_200,
        "",
    ));
    // 9. mixed CRLF / bare LF line endings
    inbox.messages.push(msg(
        b"Date: Wed, 11 Mar 2020 08:00:00 +0100\r\nFrom: Mixte <mixte@ecole.test>\nTo: ec999001@adm.cfwb.be\r\nSubject: Fins de ligne mixtes\nMessage-ID: <fins-de-ligne@ecole.test>\r\n\r\nligne CRLF\r\nligne LF\nligne CR seul\rfin\n".to_vec(),
        1_583_910_000,
        "S",
    ));
    // 10. no Date header, internal date in 1998; and every flag and keyword
    inbox.messages.push(msg(
        raw(
            &format!("{base}Subject: Sans date, reçu en 1998\nMessage-ID: <sans-date@ecole.test>\n"),
            "Pas d'en-tête Date.\n",
        ),
        893_000_000,
        "S",
    ));
    let mut all = msg(
        raw(
            &format!(
                "Date: Thu, 12 Mar 2020 08:00:00 +0100\n{base}Subject: Tous les drapeaux\nMessage-ID: <drapeaux@ecole.test>\n"
            ),
            "Tous les drapeaux et mots-clés.\n",
        ),
        1_583_996_400,
        "DFRS",
    );
    all.keywords = (0..KEYWORDS.len()).collect();
    inbox.messages.push(all);

    let mut folders = vec![inbox];
    let mut dups = Folder::new("Cas limites/Doublons", true);
    dups.messages.push(msg(dup, 1_583_226_000, "S"));
    folders.push(Folder::new("Cas limites", true));
    folders.push(dups);
    let deep = ["Niveau 1", "Niveau 2", "Niveau 3", "Niveau 4", "Niveau 5", "Niveau 6", "Niveau 7"];
    for depth in 1..=deep.len() {
        let mut f = Folder::new(&deep[..depth].join("/"), true);
        if depth % 3 == 0 || depth == deep.len() {
            f.messages.push(mail::message(&mut rng, &ctx, 1_590_000_000 + depth as i64, 100 + depth));
        }
        folders.push(f);
    }
    let mut special = Folder::new("Projets ~ Été & Hiver", true);
    special.messages.push(mail::message(&mut rng, &ctx, 1_595_000_000, 200));
    folders.push(special);
    folders.push(Folder::new("Dossier vide", true));
    let mut unsub = Folder::new("Non abonné", false);
    unsub.messages.push(mail::message(&mut rng, &ctx, 1_596_000_000, 300));
    unsub.messages.push(mail::message(&mut rng, &ctx, 1_596_100_000, 301));
    folders.push(unsub);
    let mut sent = Folder::new("Éléments envoyés", true);
    let sent_ctx = Context { role: "sent", ..ctx };
    sent.messages.push(mail::message(&mut rng, &sent_ctx, 1_597_000_000, 400));
    folders.push(sent);
    Plan { address: address.into(), password: password_for(address), kind: "hard-cases", folders, sieve: None }
}

/// On-disk directory of a folder (Maildir++: ".A.B" in modified UTF-7).
fn folder_dir(user: &Path, name: &str) -> PathBuf {
    if name == "INBOX" { user.to_path_buf() } else { user.join(format!(".{}", mail::mutf7(name).replace('/', "."))) }
}

fn write_mailbox(paths: &Paths, plan: &Plan, index: usize) -> Result<MailboxEntry> {
    let user = user_dir(&paths.mail_root(Platform::Legacy), &plan.address)?;
    let mut folders = Vec::new();
    let mut bytes = 0u64;
    let uidvalidity = 1_600_000_000 + (seed_of(&plan.address) % 100_000_000) as u32;
    let mut subscriptions = String::from("V\t2\n\n");
    for (fi, folder) in plan.folders.iter().enumerate() {
        let dir = folder_dir(&user, &folder.name);
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub)).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if folder.name != "INBOX" {
            File::create(dir.join("maildirfolder"))?;
        }
        let mut keywords = String::new();
        for (i, k) in KEYWORDS.iter().enumerate() {
            keywords.push_str(&format!("{i} {k}\n"));
        }
        fs::write(dir.join("dovecot-keywords"), keywords)?;
        let mut uidlist = format!("3 V{} N{}\n", uidvalidity + fi as u32, folder.messages.len() + 1);
        let (mut deleted, mut unseen) = (0, 0);
        for (seq, m) in folder.messages.iter().enumerate() {
            let size = m.bytes.len();
            let bare_lf = m
                .bytes
                .iter()
                .enumerate()
                .filter(|(i, b)| **b == b'\n' && (*i == 0 || m.bytes[i - 1] != b'\r'))
                .count();
            let base = format!("{}.M{seq}P{index}Q{fi}.bmalab,S={size},W={}", m.internal_date, size + bare_lf);
            let mut flags: Vec<char> = m.flags.chars().collect();
            flags.extend(m.keywords.iter().map(|k| (b'a' + *k as u8) as char));
            flags.sort_unstable();
            flags.dedup();
            let path = dir.join("cur").join(format!("{base}:2,{}", flags.iter().collect::<String>()));
            fs::write(&path, &m.bytes).with_context(|| format!("cannot write {}", path.display()))?;
            let mtime = if m.internal_date >= 0 {
                UNIX_EPOCH + Duration::from_secs(m.internal_date as u64)
            } else {
                UNIX_EPOCH
            };
            File::options().write(true).open(&path)?.set_modified(mtime)?;
            uidlist.push_str(&format!("{} :{base}\n", seq + 1));
            bytes += size as u64;
            deleted += usize::from(m.flags.contains('T'));
            unseen += usize::from(!m.flags.contains('S'));
        }
        fs::write(dir.join("dovecot-uidlist"), uidlist)?;
        if folder.subscribed {
            subscriptions.push_str(&mail::mutf7(&folder.name).replace('/', "\t"));
            subscriptions.push('\n');
        }
        folders.push(FolderEntry {
            name: folder.name.clone(),
            imap_name: mail::mutf7(&folder.name),
            messages: folder.messages.len(),
            deleted,
            unseen,
            subscribed: folder.subscribed,
        });
    }
    fs::write(user.join("subscriptions"), subscriptions)?;
    // make the parent domain directory and the tree belong to the mail user
    let (uid, gid) = dovecot::mail_owner()?;
    if let Some(domain_dir) = user.parent() {
        std::os::unix::fs::chown(domain_dir, Some(uid), Some(gid))?;
    }
    dovecot::chown_tree(&user)?;
    Ok(MailboxEntry {
        address: plan.address.clone(),
        password: plan.password.clone(),
        kind: plan.kind.into(),
        messages: folders.iter().map(|f| f.messages).sum(),
        bytes,
        folders,
        sieve: None,
    })
}

/// Asks Dovecot itself for the hard-case mailbox's folders and counts.
fn verify(paths: &Paths, entries: &[MailboxEntry]) -> Result<()> {
    let Some(entry) = entries.iter().find(|e| e.address == HARD_CASES) else { return Ok(()) };
    let out = super::proc::run(
        dovecot::doveadm(paths, Platform::Legacy)
            .args(["-f", "tab", "mailbox", "status", "-u", HARD_CASES, "messages", "*"]),
    )?;
    let mut total = 0usize;
    let mut count = 0usize;
    for line in out.lines().skip(1) {
        if let Some(Ok(n)) = line.split('\t').next_back().map(str::parse::<usize>) {
            total += n;
            count += 1;
        }
    }
    if total != entry.messages || count < entry.folders.len() {
        bail!(
            "seed verification failed: Dovecot sees {total} messages in {count} folders of {HARD_CASES}, the manifest says {} in {}",
            entry.messages,
            entry.folders.len()
        );
    }
    Ok(())
}
