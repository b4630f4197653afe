//! Generated mail for the seed corpus: French, MIME, deterministic.
//!
//! Everything derives from a [`Rng`] seeded per mailbox, so a corpus is
//! byte-identical from one run to the next.

use std::fmt::Write as _;

/// SplitMix64: tiny, fast and stable across Rust and crate versions.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_b3a1_ab00_0001)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    /// One string of a non-empty slice.
    pub fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const FIRST: [&str; 16] = [
    "Marie",
    "Jean",
    "Françoise",
    "Luc",
    "Hélène",
    "Éric",
    "Nathalie",
    "Benoît",
    "Céline",
    "Stéphane",
    "Anne-Sophie",
    "Jérôme",
    "Véronique",
    "François",
    "Amélie",
    "Noël",
];
const LAST: [&str; 14] = [
    "Dupont", "Lambert", "Lejeune", "Dubois", "Renard", "Peeters", "Janssens", "Lefèvre", "Mertens", "Wauters",
    "Goossens", "De Smet", "Laurent", "Leclercq",
];
const ORGS: [(&str, &str); 6] = [
    ("Service général du Numérique éducatif", "sgne@cfwb.be"),
    ("Administration générale de l'Enseignement", "age@cfwb.be"),
    ("ETNIC Service Desk", "support@etnic.be"),
    ("Enseignement.be", "bma@enseignement.be"),
    ("Inspection de l'enseignement fondamental", "inspection@cfwb.be"),
    ("Centre PMS de Namur", "cpms.namur@ecole.test"),
];
const TOPICS: [&str; 16] = [
    "Circulaire n°{n} — organisation de l'année scolaire",
    "Inscriptions en première année : calendrier {y}-{y1}",
    "Réunion du conseil de participation du {d}",
    "Convocation : conseil de classe de fin d'année",
    "Demande de congé pour raisons familiales",
    "Organisation des épreuves externes (CEB) {y}",
    "Formation en cours de carrière — inscriptions ouvertes",
    "Facture de la cantine — {m} {y}",
    "Procès-verbal de la réunion des délégués",
    "Sortie scolaire à Bruxelles le {d}",
    "Absences d'élèves : relevé du mois de {m}",
    "Mise à jour du règlement d'ordre intérieur",
    "Subventions de fonctionnement : déclaration {y}",
    "Journée pédagogique du {d} — école fermée",
    "Projet d'établissement : appel à idées",
    "Accès à la plateforme « Mon École » : nouveaux identifiants",
];
const SENTENCES: [&str; 18] = [
    "Veuillez trouver ci-joint les informations relatives à l'organisation de la rentrée.",
    "Nous vous remercions de bien vouloir transmettre ce document à l'ensemble de l'équipe éducative.",
    "La réunion aura lieu dans la salle des professeurs à 16 h 30 ; la présence de chacun est souhaitée.",
    "Les parents d'élèves ont été informés par courrier et par la plateforme de l'école.",
    "Merci de compléter le formulaire et de le renvoyer avant la fin du mois, cachet de l'école faisant foi.",
    "Le pouvoir organisateur a validé le budget prévu pour les activités culturelles de l'année.",
    "En cas de question, n'hésitez pas à contacter le secrétariat de direction.",
    "Les élèves de sixième primaire présenteront l'épreuve externe commune à la date prévue.",
    "Nous attirons votre attention sur l'échéance du dépôt des dossiers d'inscription.",
    "L'inspecteur passera dans l'établissement la semaine prochaine pour un entretien avec la direction.",
    "Le conseil de participation s'est prononcé favorablement sur le projet de potager scolaire.",
    "À la suite des intempéries, la cour de récréation restera fermée jusqu'à nouvel ordre.",
    "Le relevé des présences doit être encodé chaque jour avant 10 heures.",
    "Les bulletins seront remis aux élèves le vendredi, après la réunion des titulaires.",
    "Une formation consacrée au numérique éducatif est proposée aux enseignants volontaires.",
    "Le service de garderie est assuré de 7 h à 18 h, y compris le mercredi après-midi.",
    "Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations distinguées.",
    "Pour rappel, la piscine est accessible aux classes de troisième et quatrième années.",
];
const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTHS_EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS_EN: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Keywords that seed messages may carry, in dovecot-keywords order.
pub const KEYWORDS: [&str; 4] = ["$Label1", "$Forwarded", "Important", "$MDNSent"];

/// A generated message with its IMAP metadata.
pub struct Message {
    /// RFC 5322 bytes (LF line endings, as Dovecot's Maildir stores them).
    pub bytes: Vec<u8>,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// System flags as Maildir letters (subset of "DFRST").
    pub flags: String,
    /// Indices into [`KEYWORDS`].
    pub keywords: Vec<usize>,
}

/// What the generator needs to know about the mailbox and folder.
pub struct Context<'a> {
    /// The mailbox owner's address.
    pub owner: &'a str,
    /// The establishment's display name.
    pub owner_name: &'a str,
    /// "sent", "drafts", "trash" or anything else for received mail.
    pub role: &'a str,
    /// Average attachment size in bytes (0 for the default small corpus).
    pub attachment_bytes: usize,
}

/// `(y, m, d, hh, mm, ss, weekday 0 = Thursday)` of a unix time.
fn civil(t: i64) -> (i64, usize, i64, i64, i64, i64, usize) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, (m - 1) as usize, d, secs / 3600, secs % 3600 / 60, secs % 60, days.rem_euclid(7) as usize)
}

/// RFC 5322 date in +0100 of unix time `t`.
pub fn rfc5322_date(t: i64) -> String {
    let (y, m, d, hh, mm, ss, wd) = civil(t + 3600);
    format!("{}, {d} {} {y} {hh:02}:{mm:02}:{ss:02} +0100", DAYS_EN[wd], MONTHS_EN[m])
}

/// Standard base64 with CRLF-free 76-column lines (LF separated).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push(b'\n');
        }
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.extend_from_slice(&[
            A[(n >> 18) as usize & 63],
            A[(n >> 12) as usize & 63],
            if chunk.len() > 1 { A[(n >> 6) as usize & 63] } else { b'=' },
            if chunk.len() > 2 { A[n as usize & 63] } else { b'=' },
        ]);
    }
    String::from_utf8(out).expect("base64 is ASCII")
}

/// Quoted-printable (RFC 2045) of `data`, soft line breaks at 76 columns.
pub fn quoted_printable(data: &[u8]) -> String {
    let mut out = String::new();
    for line in data.split(|b| *b == b'\n') {
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let piece = if literal { (b as char).to_string() } else { format!("={b:02X}") };
            if col + piece.len() > 75 {
                out.push_str("=\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// RFC 2047 encoded word (UTF-8, B) when `text` is not ASCII.
pub fn encoded_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    // split on char boundaries so that every encoded word stays short
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if cur.len() + c.len_utf8() > 42 {
            words.push(format!("=?UTF-8?B?{}?=", base64(cur.as_bytes())));
            cur.clear();
        }
        cur.push(c);
    }
    words.push(format!("=?UTF-8?B?{}?=", base64(cur.as_bytes())));
    words.join("\n ")
}

/// ISO-8859-1 bytes of `text` (characters outside it approximated).
pub fn latin1(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{0}'..='\u{ff}' => out.push(c as u32 as u8),
            '’' => out.push(b'\''),
            '—' => out.push(b'-'),
            'œ' => out.extend_from_slice(b"oe"),
            '€' => out.extend_from_slice(b"EUR"),
            _ => out.push(b'?'),
        }
    }
    out
}

/// IMAP modified UTF-7 (RFC 3501 §5.1.3) of a mailbox name.
pub fn mutf7(name: &str) -> String {
    bma_imap::mutf7::encode(name)
}

fn fill(template: &str, rng: &mut Rng, t: i64) -> String {
    let (y, m, d, ..) = civil(t);
    template
        .replace("{n}", &format!("{}/{y}", 100 + rng.below(900)))
        .replace("{y1}", &(y + 1).to_string())
        .replace("{y}", &y.to_string())
        .replace("{m}", MONTHS[m])
        .replace("{d}", &format!("{d} {} {y}", MONTHS[m]))
}

/// Body paragraphs in French.
pub fn paragraphs(rng: &mut Rng, greeting: &str, signature: &str) -> String {
    let mut text = format!("{greeting},\n\n");
    for _ in 0..1 + rng.below(3) {
        for _ in 0..1 + rng.below(4) {
            text.push_str(rng.pick_str(&SENTENCES));
            text.push(' ');
        }
        text.pop();
        text.push_str("\n\n");
    }
    text.push_str(&format!("Bien cordialement,\n\n-- \n{signature}\n"));
    text
}

/// A small valid PDF of about `size` bytes (text pages).
pub fn pdf(rng: &mut Rng, title: &str, size: usize) -> Vec<u8> {
    let mut content = String::from("BT /F1 11 Tf 50 780 Td 14 TL\n");
    let ascii = |s: &str| -> String {
        latin1(s)
            .into_iter()
            .map(|b| if b.is_ascii() && b != b'(' && b != b')' && b != b'\\' { b as char } else { '?' })
            .collect()
    };
    let _ = writeln!(content, "({}) Tj T*", ascii(title));
    while content.len() < size.max(300) {
        let _ = writeln!(content, "({}) Tj T*", ascii(rng.pick_str(&SENTENCES)));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = write!(out, "{} 0 obj\n{obj}\nendobj\n", i + 1);
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(out, "{o:010} 00000 n ");
    }
    let _ = write!(out, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1);
    out.into_bytes()
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    !data.iter().fold(!0u32, |crc, &b| table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8))
}

/// A valid RGB PNG (uncompressed deflate) of `w`×`h` pixels.
pub fn png(rng: &mut Rng, w: u32, h: u32) -> Vec<u8> {
    let (r0, g0, b0) = (rng.below(256) as u32, rng.below(256) as u32, rng.below(256) as u32);
    let mut raw = Vec::with_capacity(((w * 3 + 1) * h) as usize);
    for y in 0..h {
        raw.push(0);
        for x in 0..w {
            raw.extend_from_slice(&[(r0 + x) as u8, (g0 + y) as u8, (b0 + x * y / 8) as u8]);
        }
    }
    // zlib stream made of stored blocks
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &z);
    chunk(b"IEND", &[]);
    out
}

fn person(rng: &mut Rng) -> (String, String) {
    let first = *rng.pick(&FIRST);
    let last = *rng.pick(&LAST);
    let local: String = format!("{first}.{last}")
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'ç' => 'c',
            'ï' | 'î' => 'i',
            'ô' => 'o',
            ' ' => '-',
            c => c,
        })
        .collect();
    (format!("{first} {last}"), format!("{local}@ecole.test"))
}

fn mailbox(name: &str, address: &str) -> String {
    format!("{} <{address}>", encoded_word(&format!("\"{name}\"")).replace("\"\"", "\""))
}

/// One realistic message dated around `t`.
pub fn message(rng: &mut Rng, ctx: &Context<'_>, t: i64, seq: usize) -> Message {
    let (from_name, from_addr, to_name, to_addr) = if ctx.role == "sent" || ctx.role == "drafts" {
        let (n, a) = person(rng);
        (ctx.owner_name.to_string(), ctx.owner.to_string(), n, a)
    } else if rng.chance(40) {
        let (n, a) = *rng.pick(&ORGS);
        (n.to_string(), a.to_string(), ctx.owner_name.to_string(), ctx.owner.to_string())
    } else {
        let (n, a) = person(rng);
        (n, a, ctx.owner_name.to_string(), ctx.owner.to_string())
    };
    let mut subject = fill(rng.pick_str(&TOPICS), rng, t);
    let reply = rng.chance(25);
    if reply {
        subject = format!("{} {subject}", if rng.chance(80) { "Re:" } else { "RE :" });
    } else if rng.chance(8) {
        subject = format!("Fwd: {subject}");
    }
    let domain = from_addr.split('@').nth(1).unwrap_or("ecole.test");
    let msgid = format!("<{:016x}.{seq}@{domain}>", rng.next_u64());
    let mut h = String::new();
    let received_t = t + 2 + rng.below(40) as i64;
    if ctx.role != "sent" && ctx.role != "drafts" {
        let _ = writeln!(h, "Return-Path: <{from_addr}>");
        let _ = writeln!(
            h,
            "Received: from mail.{domain} (mail.{domain} [192.0.2.{}])\n\tby mx.adm.cfwb.be (Postfix) with ESMTPS id {:010X}\n\tfor <{}>; {}",
            1 + rng.below(250),
            rng.next_u64() >> 24,
            ctx.owner,
            rfc5322_date(received_t)
        );
    }
    let _ = writeln!(h, "Date: {}", rfc5322_date(t));
    let _ = writeln!(h, "From: {}", mailbox(&from_name, &from_addr));
    let _ = writeln!(h, "To: {}", mailbox(&to_name, &to_addr));
    if rng.chance(15) {
        let (n, a) = person(rng);
        let _ = writeln!(h, "Cc: {}", mailbox(&n, &a));
    }
    let _ = writeln!(h, "Subject: {}", encoded_word(&subject));
    let _ = writeln!(h, "Message-ID: {msgid}");
    if reply {
        let parent = format!("<{:016x}@{}>", rng.next_u64(), to_addr.split('@').nth(1).unwrap_or("x"));
        let _ = writeln!(h, "In-Reply-To: {parent}\nReferences: {parent}");
    }
    if rng.chance(30) {
        let _ = writeln!(
            h,
            "X-Mailer: {}",
            rng.pick(&["Microsoft Outlook 16.0", "Thunderbird 115.6.0", "Roundcube Webmail/1.6.5"])
        );
    }
    h.push_str("MIME-Version: 1.0\n");
    let greeting = if rng.chance(50) { "Madame, Monsieur" } else { "Bonjour" };
    let text = paragraphs(rng, greeting, &from_name);
    let boundary = format!("=_bma_{:012x}", rng.next_u64() >> 16);
    let kind = rng.below(100);
    let attach = ctx.attachment_bytes;
    let body = if kind < 35 {
        h.push_str("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n");
        quoted_printable(text.as_bytes())
    } else if kind < 45 {
        h.push_str("Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n");
        quoted_printable(&latin1(&text))
    } else if kind < 52 {
        h.push_str("Content-Type: text/plain; charset=utf-8; format=flowed\nContent-Transfer-Encoding: 8bit\n");
        text
    } else if kind < 72 {
        let html = format!(
            "<html><head><meta charset=\"utf-8\"></head><body>{}</body></html>",
            text.split("\n\n").map(|p| format!("<p>{}</p>", p.replace('\n', "<br>"))).collect::<String>()
        );
        let _ = writeln!(h, "Content-Type: multipart/alternative; boundary=\"{boundary}\"");
        format!(
            "This is a multi-part message in MIME format.\n\n--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}\n--{boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}\n--{boundary}--\n",
            quoted_printable(text.as_bytes()),
            quoted_printable(html.as_bytes())
        )
    } else {
        let (ctype, name, data) = if kind < 88 {
            let size = if attach > 0 { attach / 2 + rng.below(attach) } else { 2_000 + rng.below(12_000) };
            let name = rng.pick(&[
                "procès-verbal.pdf",
                "circulaire.pdf",
                "Règlement d'ordre intérieur.pdf",
                "horaire_2024.pdf",
            ]);
            ("application/pdf", name.to_string(), pdf(rng, &subject, size))
        } else {
            let side = if attach > 0 { ((attach / 3) as f64).sqrt() as u32 } else { 24 + rng.below(40) as u32 };
            ("image/png", format!("photo_classe_{seq}.png"), png(rng, side, side))
        };
        let _ = writeln!(h, "Content-Type: multipart/mixed; boundary=\"{boundary}\"");
        let disposition = if name.is_ascii() {
            format!("attachment; filename=\"{name}\"")
        } else {
            let pct: String = name
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("attachment;\n filename*=UTF-8''{pct}")
        };
        format!(
            "This is a multi-part message in MIME format.\n\n--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}\n--{boundary}\nContent-Type: {ctype}; name=\"{}\"\nContent-Transfer-Encoding: base64\nContent-Disposition: {disposition}\n\n{}\n--{boundary}--\n",
            quoted_printable(text.as_bytes()),
            encoded_word(&name),
            base64(&data)
        )
    };
    let mut bytes = h.into_bytes();
    bytes.push(b'\n');
    bytes.extend_from_slice(body.as_bytes());
    // flags
    let mut flags = String::new();
    match ctx.role {
        "drafts" => flags.push_str("DS"),
        "sent" => flags.push('S'),
        _ => {
            if rng.chance(8) {
                flags.push('F');
            }
            if reply || rng.chance(15) {
                flags.push('R');
            }
            if rng.chance(85) {
                flags.push('S');
            }
        }
    }
    let mut keywords = Vec::new();
    for k in 0..KEYWORDS.len() {
        if rng.chance(6) {
            keywords.push(k);
        }
    }
    Message { bytes, internal_date: received_t, flags, keywords }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_matches_rfc3501() {
        assert_eq!(mutf7("Éléments envoyés"), "&AMk-l&AOk-ments envoy&AOk-s");
        assert_eq!(mutf7("Réunions & Conseils"), "R&AOk-unions &- Conseils");
        assert_eq!(mutf7("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    }

    #[test]
    fn dates_and_encodings() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 01:00:00 +0100");
        assert_eq!(rfc5322_date(1_700_000_000), "Tue, 14 Nov 2023 23:13:20 +0100");
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(quoted_printable("école = ok ".as_bytes()), "=C3=A9cole =3D ok=20");
    }
}
