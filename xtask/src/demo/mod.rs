//! `cargo xtask demo`: the main job, a demo campaign on the lab.
//!
//! Starts and seeds the lab, builds `bma`, and in `target/demo/` (the
//! embedded default store, `sqlite://bma.db`) writes a commented
//! `bma.toml`, shows a registry with bad rows being refused whole, imports
//! the Excel export (Windows-1252, semicolons) of the lab's seeded
//! mailboxes plus one school the legacy platform does not know, imports the
//! same list again in UTF-8 without change, plans the invitation waves,
//! simulates the campaign's load, starts it and runs it on an accelerated
//! clock: mail 1 of each wave delivered into the legacy mailboxes through
//! the lab's Postfix, the unknown school's bounce read back and matched,
//! reminders, presync copies to the new platform; three managers answer
//! the form through the portal over HTTP (`portal`: mail 1's link read
//! from the legacy mailbox, a login at the lab's OpenID Connect provider,
//! one who has lost the BMA's password, each backup address confirmed from
//! its link), cutover slots for them, the deadline list to the migration
//! team, then their cutovers on their day (account, hold, final copy,
//! receipt, mail 2, routing to the new platform); then what they find
//! (mail 2 on both sides, the old password on the new platform, the new
//! one from its link, mail landing on the new platform), the campaign's
//! status and one migrated mailbox's steps, receipt and timeline. Every
//! command is printed before it runs.
//!
//! It ends with what a newcomer opens: the command that serves the demo's
//! store on the demo's clock (`BMA_NOW`, advancing from there), and a link
//! that works, read the way a manager would get it: mail 1 of a mailbox
//! that has not answered, fetched from its legacy mailbox over IMAP (the
//! store keeps only the hash of the link).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::pipeline::{root, run, xtask};

mod portal;

#[derive(Deserialize)]
struct Seed {
    mailboxes: Vec<SeedMailbox>,
}

#[derive(Deserialize)]
struct SeedMailbox {
    address: String,
    password: String,
    messages: u64,
    bytes: u64,
}

const TOWNS: &[&str] = &[
    "Namur",
    "Liège",
    "Mons",
    "Charleroi",
    "Tournai",
    "Arlon",
    "Wavre",
    "Bruxelles",
    "Huy",
    "Dinant",
    "Verviers",
    "Nivelles",
    "Ath",
    "Marche-en-Famenne",
    "Braine-l'Alleud",
    "Jodoigne",
];
const SCHOOLS: &[&str] = &[
    "École fondamentale communale de",
    "Athénée royal de",
    "Institut Sainte-Marie de",
    "Lycée Émile Jacqmain de",
    "École secondaire libre de",
    "Centre d'enseignement spécialisé de",
];

fn name_for(i: usize, address: &str) -> String {
    let town = TOWNS[i % TOWNS.len()];
    if address.starts_with("po") {
        format!("Pouvoir organisateur — Ville de {town}")
    } else {
        format!("{} {town}", SCHOOLS[(i / TOWNS.len() + i) % SCHOOLS.len()])
    }
}

fn registry(seed: &Seed) -> (Vec<u8>, String) {
    let mut excel = String::from("type;fase;nom;quota;utilisation;messages\r\n");
    let mut utf8 = String::from("address,name,quota_bytes,usage_bytes,messages\n");
    for (i, m) in seed.mailboxes.iter().enumerate() {
        let Some((local, _)) = m.address.split_once('@') else { continue };
        let (kind, fase) = local.split_at(2);
        let name = name_for(i, &m.address);
        let quota = 100 * 1024 * 1024;
        // Excel drops leading zeros of numbers: write the FASE as a number.
        let fase_number = fase.trim_start_matches('0');
        excel.push_str(&format!("{kind};{fase_number};{name};{quota};{};{}\r\n", m.bytes, m.messages));
        utf8.push_str(&format!("{},\"{name}\",{quota},{},{}\n", m.address, m.bytes, m.messages));
    }
    // A school the legacy platform does not know: its mail 1 bounces.
    excel.push_str("ec;999999;École fantôme;104857600;0;0\r\n");
    utf8.push_str("ec999999@adm.cfwb.be,\"École fantôme\",104857600,0,0\n");
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&excel);
    assert!(!unmappable, "demo names fit in Windows-1252");
    (bytes.into_owned(), utf8)
}

/// The lab's relay, domains and platforms, for every `bma` command of the
/// demo and for the `bma serve` it prints.
const LAB_ENV: [(&str, &str); 17] = [
    ("BMA_MAIL_SMTP_PORT", "2525"),
    ("BMA_MAIL_SMTP_TLS", "none"),
    ("BMA_MAIL_BOUNCE_ADDRESS", "bounces@bma.test"),
    ("BMA_MAIL_MESSAGE_ID_DOMAIN", "bma.test"),
    ("BMA_MAIL_TEAM_ADDRESS", "migrationbma@bma.test"),
    ("BMA_MAIL_MAX_PER_MINUTE", "0"),
    // Both platforms' IMAP, with the lab's master user.
    ("BMA_LEGACY_URL", "imap://127.0.0.1:10143"),
    ("BMA_LEGACY_TLS", "none"),
    ("BMA_LEGACY_ADMIN", "admin"),
    ("BMA_LEGACY_PASSWORD_FILE", "admin.password"),
    ("BMA_NEW_URL", "imap://127.0.0.1:20143"),
    ("BMA_NEW_TLS", "none"),
    ("BMA_NEW_ADMIN", "admin"),
    ("BMA_NEW_PASSWORD_FILE", "admin.password"),
    // Both platforms' ManageSieve: the forwarding audit before mail 1 reads
    // the legacy scripts, the cutover writes them on the new platform.
    ("BMA_LEGACY_MANAGESIEVE", "127.0.0.1:14190"),
    ("BMA_NEW_MANAGESIEVE", "127.0.0.1:24190"),
    // The demo's steps are at 08:00: copies are allowed all day.
    ("BMA_PRESYNC_HOURS", "0-24"),
];

/// The lab's OpenID Connect provider (Cerbère EDU), for `bma serve`.
const OIDC_ENV: [(&str, &str); 3] = [
    ("BMA_OIDC_ISSUER", "http://127.0.0.1:9090"),
    ("BMA_OIDC_CLIENT_ID", "bma-portal"),
    ("BMA_OIDC_CLIENT_SECRET", "bma-portal-secret"),
];

/// The portal's address in the demo (`portal.base_url`'s default, registered at the lab's provider).
const PORTAL: &str = "http://127.0.0.1:8080";

struct Demo {
    dir: PathBuf,
    bin: PathBuf,
    /// The campaign clock of the commands (`BMA_NOW`): the demo's timelines are all in 2024.
    now: std::cell::RefCell<&'static str>,
}

impl Demo {
    /// `bma ARGS` in the demo's directory, on its clock and the lab.
    fn command(&self, args: &[&str]) -> anyhow::Result<Command> {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(&self.dir)
            .env_remove("BMA_DATABASE_URL")
            .env_remove("BMA_CONFIG")
            .env_remove("BMA_PORTAL_BASE_URL")
            .env("BMA_NOW", *self.now.borrow())
            .envs(LAB_ENV)
            .envs(OIDC_ENV)
            .envs(crate::lab::cutover_env()?);
        Ok(command)
    }

    fn bma(&self, args: &[&str]) -> anyhow::Result<std::process::ExitStatus> {
        println!("\n$ bma {}", args.join(" "));
        self.command(args)?.status().context("cannot run bma")
    }

    fn ok(&self, args: &[&str]) -> anyhow::Result<()> {
        let status = self.bma(args)?;
        if !status.success() {
            bail!("bma {} failed ({status})", args.join(" "));
        }
        Ok(())
    }
}

/// Runs the demo.
pub fn demo() -> anyhow::Result<()> {
    xtask(&["lab", "up"])?;
    xtask(&["lab", "seed"])?;
    run("cargo build -p bma", Command::new("cargo").args(["build", "-p", "bma"]))?;
    let dir = root().join("target/demo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let demo = Demo {
        dir: dir.clone(),
        bin: root().join("target/debug/bma"),
        now: std::cell::RefCell::new("2024-04-15T09:00:00Z"),
    };

    let seed_path = root().join("target/lab/seed.json");
    let seed: Seed = serde_json::from_str(
        &std::fs::read_to_string(&seed_path).with_context(|| format!("cannot read {}", seed_path.display()))?,
    )
    .context("seed.json")?;
    let (excel, utf8) = registry(&seed);
    std::fs::write(dir.join("registre-excel.csv"), &excel)?;
    std::fs::write(dir.join("registre.csv"), &utf8)?;
    std::fs::write(
        dir.join("registre-errone.csv"),
        "adresse;nom\nec100001@adm.cfwb.be;École A\nec10002@adm.cfwb.be;École B\npo100003@cfwb.be;PO C\nec100004@adm.cfwb.be;\n",
    )?;

    std::fs::write(dir.join("admin.password"), "adminpass\n")?;
    // The new platform knows the mailboxes (its provisioning is the cutover's job).
    let mut adduser: Vec<String> = vec!["lab".into(), "adduser".into(), "new".into()];
    for (i, m) in seed.mailboxes.iter().enumerate() {
        if i == 0 {
            adduser.push(m.address.clone());
            adduser.push(m.password.clone());
        } else {
            adduser.push("--also".into());
            adduser.push(m.address.clone());
        }
    }
    let adduser: Vec<&str> = adduser.iter().map(String::as_str).collect();
    xtask(&adduser)?;

    println!("Demo campaign in {} (store: the embedded default, sqlite://bma.db)", dir.display());
    demo.ok(&["init"])?;
    demo.ok(&["--config", "bma.toml", "config"])?;
    println!("\n# A registry with bad rows is refused whole, each bad row named:");
    if demo.bma(&["--config", "bma.toml", "import", "mailboxes", "registre-errone.csv"])?.success() {
        bail!("the bad registry should have been refused");
    }
    println!(
        "\n# The Excel export (Windows-1252, semicolons, type;fase;nom) of the lab's {} mailboxes:",
        seed.mailboxes.len()
    );
    demo.ok(&["--config", "bma.toml", "import", "mailboxes", "registre-excel.csv"])?;
    println!("\n# The same mailboxes again, in UTF-8 with addresses: nothing changes.");
    demo.ok(&["--config", "bma.toml", "import", "mailboxes", "registre.csv"])?;

    println!("\n# The invitation waves: a preview, a capacity too small (refused, with the way out), then applied.");
    demo.ok(&["--config", "bma.toml", "plan"])?;
    if demo.bma(&["--config", "bma.toml", "plan", "--wave-capacity", "5"])?.success() {
        bail!("a capacity of 5 cannot hold the lab's mailboxes in 5 waves: the plan should have been refused");
    }
    demo.ok(&["--config", "bma.toml", "plan", "--apply", "--as", "demo"])?;

    println!("\n# Before starting: the whole campaign simulated week by week (nothing sent), to check the load.");
    demo.ok(&["--config", "bma.toml", "simulate"])?;
    demo.ok(&["--config", "bma.toml", "campaign", "start", "--as", "demo", "--reason", "démonstration"])?;
    let run = |from: &str, until: &str| {
        demo.ok(&[
            "--config", "bma.toml", "campaign", "run", "--from", from, "--until", until, "--step", "1d", "--pace", "0s",
        ])
    };
    println!("\n# The campaign on an accelerated clock: one step per simulated day from 22/04/2024.");
    println!("# Each wave's mail 1 leaves at 08:00 on its Monday, through the outbox and the lab's Postfix,");
    println!("# into the legacy mailboxes (open one with any IMAP client on 127.0.0.1:10143); the school");
    println!("# the legacy platform does not know bounces; invited mailboxes are copied to the new platform.");
    run("2024-04-22T08:00:00Z", "2024-04-24T08:00:00Z")?;
    *demo.now.borrow_mut() = "2024-04-24T10:00:00Z";
    println!("\n# Three managers answer the form on the portal, as they would: mail 1's link read from");
    println!("# their legacy mailbox, followed, a login at Cerbère EDU (the lab's provider), the form");
    println!("# filled; the second one does not know the BMA's password. Each confirms the backup address");
    println!("# from the link that reached it.");
    let managers: Vec<&str> = seed.mailboxes.iter().take(3).map(|m| m.address.as_str()).collect();
    let lost = portal::answer_forms(&demo, &managers)?;
    println!("\n# On to the deadline: reminders go to those who have not answered, cutover slots to those who have,");
    println!("# and on its day each of those is cut over: the account on the new platform (same password, quota x25),");
    println!("# mail held at the relay, the final copy, the receipt, mail 2, mail routed to the new platform.");
    run("2024-04-25T08:00:00Z", "2024-05-24T08:00:00Z")?;
    demo.ok(&["--config", "bma.toml", "campaign", "status"])?;
    println!("\n# The deadline list (also emailed to the migration team at migrationbma@bma.test):");
    demo.ok(&["--config", "bma.toml", "campaign", "deadline"])?;

    let first = &seed.mailboxes[0].address;
    let second = &seed.mailboxes[4].address;
    *demo.now.borrow_mut() = "2024-05-24T10:00:00Z";
    println!("\n# The cutovers: where each stands, and one run by hand (already done by the scheduler: nothing more).");
    demo.ok(&["--config", "bma.toml", "cutover", "status"])?;
    demo.ok(&["--config", "bma.toml", "cutover", "run", first])?;
    println!("\n# The helpdesk holds a mailbox:");
    demo.ok(&[
        "--config",
        "bma.toml",
        "mailbox",
        "transition",
        second,
        "blocked",
        "--reason",
        "école fermée pour travaux",
        "--as",
        "demo",
    ])?;
    println!("\n# An illegal transition is refused, nothing is written:");
    if demo
        .bma(&["--config", "bma.toml", "mailbox", "transition", second, "migrated", "--reason", "trop tôt"])?
        .success()
    {
        bail!("the illegal transition should have been refused");
    }
    demo.ok(&["--config", "bma.toml", "show", first])?;
    println!("\n# What the managers find now:");
    portal::after_cutover(&demo, &seed.mailboxes[0], lost)?;
    demo.ok(&["--config", "bma.toml", "status"])?;
    demo.ok(&["--config", "bma.toml", "status", "--json"])?;
    println!("\nDemo done: the store is {}", Path::new(&dir).join("bma.db").display());

    // What a newcomer opens: the portal on the demo's store and clock, and
    // a link of mail 1 as its manager received it.
    let waiting =
        seed.mailboxes.iter().skip(3).map(|m| m.address.as_str()).next().context("a mailbox still invited")?;
    let link =
        portal::mail1_link(waiting, PORTAL).with_context(|| format!("mail 1 of {waiting} in the legacy mailbox"))?;
    let env: Vec<String> = std::iter::once(("BMA_NOW", *demo.now.borrow()))
        .chain(LAB_ENV)
        .chain(OIDC_ENV)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!("\n# Open what the demo made: serve its store on its clock (BMA_NOW, advancing from there),");
    println!(
        "\n  cd {} && \\\n  {} \\\n  {} --config bma.toml serve",
        dir.display(),
        env.join(" \\\n  "),
        demo.bin.display()
    );
    println!("\n# then open the link of mail 1 that {waiting} received (read from its legacy mailbox");
    println!("# over IMAP, as its manager would; the store keeps only its hash), and log in to Cerbère EDU");
    println!("# (the lab's provider) as directrice.dupont / password:\n\n  {link}\n");
    Ok(())
}
