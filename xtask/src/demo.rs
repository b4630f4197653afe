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
//! reminders, presync copies to the new platform, cutover slots for the
//! managers who answered, the deadline list to the migration team; then
//! prints the campaign's status and one mailbox's timeline. Every command
//! is printed before it runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::pipeline::{root, run, xtask};

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

struct Demo {
    dir: PathBuf,
    bin: PathBuf,
    /// The campaign clock of the commands (`BMA_NOW`): the demo's timelines are all in 2024.
    now: std::cell::RefCell<&'static str>,
}

impl Demo {
    fn bma(&self, args: &[&str]) -> anyhow::Result<std::process::ExitStatus> {
        println!("\n$ bma {}", args.join(" "));
        Command::new(&self.bin)
            .args(args)
            .current_dir(&self.dir)
            .env_remove("BMA_DATABASE_URL")
            .env_remove("BMA_CONFIG")
            // The lab's relay and domains.
            .env("BMA_NOW", *self.now.borrow())
            .env("BMA_MAIL_SMTP_PORT", "2525")
            .env("BMA_MAIL_SMTP_TLS", "none")
            .env("BMA_MAIL_BOUNCE_ADDRESS", "bounces@bma.test")
            .env("BMA_MAIL_MESSAGE_ID_DOMAIN", "bma.test")
            .env("BMA_MAIL_TEAM_ADDRESS", "migrationbma@bma.test")
            .env("BMA_MAIL_MAX_PER_MINUTE", "0")
            // Both platforms' IMAP, with the lab's master user.
            .env("BMA_LEGACY_URL", "imap://127.0.0.1:10143")
            .env("BMA_LEGACY_TLS", "none")
            .env("BMA_LEGACY_ADMIN", "admin")
            .env("BMA_LEGACY_PASSWORD_FILE", "admin.password")
            .env("BMA_NEW_URL", "imap://127.0.0.1:20143")
            .env("BMA_NEW_TLS", "none")
            .env("BMA_NEW_ADMIN", "admin")
            .env("BMA_NEW_PASSWORD_FILE", "admin.password")
            // The demo's steps are at 08:00: copies are allowed all day.
            .env("BMA_PRESYNC_HOURS", "0-24")
            .status()
            .context("cannot run bma")
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
    println!("\n# Three managers answer the form (the portal records it the same way):");
    for m in seed.mailboxes.iter().take(3) {
        demo.ok(&[
            "--config",
            "bma.toml",
            "mailbox",
            "transition",
            &m.address,
            "enrolled",
            "--reason",
            "formulaire reçu",
            "--as",
            "demo",
        ])?;
    }
    println!("\n# On to the deadline: reminders go to those who have not answered, cutover slots to those who have.");
    run("2024-04-25T08:00:00Z", "2024-05-24T08:00:00Z")?;
    demo.ok(&["--config", "bma.toml", "campaign", "status"])?;
    println!("\n# The deadline list (also emailed to the migration team at migrationbma@bma.test):");
    demo.ok(&["--config", "bma.toml", "campaign", "deadline"])?;

    let first = &seed.mailboxes[0].address;
    let second = &seed.mailboxes[1].address;
    *demo.now.borrow_mut() = "2024-05-24T10:00:00Z";
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
        .bma(&["--config", "bma.toml", "mailbox", "transition", first, "migrated", "--reason", "trop tôt"])?
        .success()
    {
        bail!("the illegal transition should have been refused");
    }
    demo.ok(&["--config", "bma.toml", "show", first])?;
    demo.ok(&["--config", "bma.toml", "status"])?;
    demo.ok(&["--config", "bma.toml", "status", "--json"])?;
    println!("\nDemo done: the store is {}", Path::new(&dir).join("bma.db").display());
    Ok(())
}
