//! The target's tree, before any folder is copied: missing folders created
//! (with their special use where the target can) and subscriptions carried
//! in one pipelined round trip (a name the target refuses tried again under
//! [`fallback_names`]), and with
//! `--delete` the copies from source folders gone (deleted, renamed)
//! removed from the target. Each step can be done again after a failure.

use std::collections::HashMap;

use bma_imap::{Client, Flag, MailboxCommand, MailboxName, StoreMode, UidSet};

use crate::error::{Error, Side, on};
use crate::mapping::{self, FolderPlan};
use crate::report::FolderReport;
use crate::state::SyncState;

/// With [`Options::delete`](crate::Options::delete): the folders of the
/// state whose source folder is gone (deleted or renamed on the source; a
/// folder only left out by `--exclude` is still listed, so untouched). The
/// messages copied from it are expunged from its target folder (if that is
/// still the folder they were copied to: same UIDVALIDITY), and the state
/// forgets it. The target folder itself stays.
pub(crate) async fn remove_vanished_folders<S: SyncState>(
    tgt: &mut Client,
    state: &S,
    pair: &str,
    src_list: &[bma_imap::MailboxInfo],
) -> Result<Vec<FolderReport>, Error> {
    let mut out = Vec::new();
    for f in state.folders(pair).await? {
        if src_list.iter().any(|m| m.name.name() == f.source_folder) {
            continue;
        }
        let mut r = FolderReport {
            source: f.source_folder.clone(),
            target: f.target_folder.clone(),
            ..FolderReport::default()
        };
        match tgt.select(&MailboxName::new(&f.target_folder)).await {
            Ok(sel) if sel.uid_validity == f.target_uidvalidity => {
                let uids: UidSet = state.messages(pair, &f.source_folder).await?.iter().map(|m| m.target_uid).collect();
                if !uids.is_empty() {
                    tgt.uid_store(&uids, StoreMode::Add, &[Flag::Deleted]).await.map_err(on(Side::Target))?;
                    tgt.uid_expunge(&uids).await.map_err(on(Side::Target))?;
                }
                r.deleted = uids.count();
                let st = tgt.status(&MailboxName::new(&f.target_folder)).await.map_err(on(Side::Target))?;
                r.target_messages = u64::from(st.messages.unwrap_or(0));
                r.target_bytes = st.size;
            }
            // Another folder by that name now, or none: nothing of ours there.
            Ok(_) => {}
            Err(e) if e.is_connection_lost() => return Err(on(Side::Target)(e)),
            Err(_) => {}
        }
        tracing::info!(folder = %f.source_folder, removed = r.deleted, "folder gone from the source");
        r.note =
            Some(format!("gone from the source: the {} messages copied from it removed from the target", r.deleted));
        state.remove_folder(pair, &f.source_folder).await?;
        out.push(r);
    }
    Ok(out)
}

/// Creates the target folders that are missing and subscribes those the
/// source has subscribed (INBOX included), in one pipelined round trip. A
/// folder of a special use the target lacks is created with its use where
/// the plan says so (CREATE-SPECIAL-USE). A name the target refuses is
/// tried again, one round trip each, under [`fallback_names`] (the same
/// name without the use, cleaned, without characters outside the BMP,
/// ASCII only); the plan follows the name that was created, with a note.
/// A folder whose CREATE was refused is not left subscribed. Returns the
/// folders whose target could not be created, with the reasons.
pub(crate) async fn prepare_tree(
    tgt: &mut Client,
    plans: &mut [FolderPlan],
    tgt_list: &[bma_imap::MailboxInfo],
) -> Result<HashMap<String, String>, Error> {
    let delim = tgt_list.iter().find_map(|m| m.delimiter).unwrap_or('/');
    let mut first: Vec<Attempt> = Vec::new();
    let mut subscribe_only: Vec<MailboxName> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let on_target =
            tgt_list.iter().find(|t| t.name.name() == p.target_name || (t.name.is_inbox() && p.target.is_inbox()));
        let subscribe = p.subscribed && !on_target.is_some_and(|t| t.subscribed);
        if !p.target.is_inbox() && !p.target_exists && on_target.is_none() {
            first.push(Attempt { plan: i, step: 0, name: p.target_name.clone(), create_use: p.create_use, subscribe });
        } else if subscribe {
            subscribe_only.push(p.target.clone());
        }
    }
    let mut early = HashMap::new();
    let mut reasons: HashMap<usize, Vec<String>> = HashMap::new();
    let mut attempts = first;
    let mut extra = subscribe_only;
    let mut taken: Vec<String> = plans.iter().map(|p| p.target_name.clone()).collect();
    while !attempts.is_empty() || !extra.is_empty() {
        let results = run_attempts(tgt, &attempts, &extra).await?;
        extra.clear();
        let mut next = Vec::new();
        for (a, result) in attempts.into_iter().zip(results) {
            let p = &mut plans[a.plan];
            let reason = match result {
                Created::Refused(reason) => reason,
                made => {
                    let why = reasons.remove(&a.plan).map(|r| r.join("; ")).unwrap_or_default();
                    if a.name != p.target_name {
                        tracing::warn!(folder = %p.target_name, to = %a.name, "the target refused the name: {why}");
                        p.note = Some(format!(
                            "the target refused the name {} ({why}): copied to {}",
                            p.target_name, a.name
                        ));
                        p.target = MailboxName::new(&a.name);
                        p.target_name = a.name.clone();
                    } else if a.create_use.is_none() && p.create_use.is_some() {
                        tracing::warn!(folder = %p.target_name, "the target refused the special use: {why}");
                        p.note = Some(format!("created without its special use, which the target refused ({why})"));
                    }
                    p.create_use = a.create_use;
                    // Only a folder this run created is known to be empty.
                    p.created = made == Created::Yes;
                    p.target_exists = true;
                    continue;
                }
            };
            reasons.entry(a.plan).or_default().push(reason);
            let step = a.step + 1;
            match fallback_names(&p.target_name, delim, p.create_use.is_some()).get(step).cloned() {
                Some((name, with_use)) => {
                    // Never onto another source folder's target.
                    let mut free = name.clone();
                    let mut n = 2;
                    while free != p.target_name && taken.contains(&free) {
                        free = format!("{name} ({n})");
                        n += 1;
                    }
                    taken.push(free.clone());
                    let create_use = if with_use { p.create_use } else { None };
                    next.push(Attempt { plan: a.plan, step, name: free, create_use, subscribe: a.subscribe });
                }
                None => {
                    let why = reasons.remove(&a.plan).unwrap_or_default().join("; then ");
                    early.insert(p.source_name.clone(), format!("cannot create {}: {why}", p.target_name));
                }
            }
        }
        attempts = next;
    }
    Ok(early)
}

/// One CREATE to try for a plan, and whether to subscribe the folder.
struct Attempt {
    /// The plan's index.
    plan: usize,
    /// Its place in [`fallback_names`].
    step: usize,
    name: String,
    create_use: Option<bma_imap::SpecialUse>,
    subscribe: bool,
}

/// The names to try, in order, for a folder the target refused to create
/// as `name` (with `with_use`: with its special use): `(name, with use)`,
/// starting with the first attempt itself, without repeats. After the use
/// (a server may refuse it, `[USEATTR]`): the name cleaned
/// ([`mapping::cleaned_name`]), then with the characters outside the Basic
/// Multilingual Plane replaced by `_` (Courier refuses an emoji), then
/// with every non-ASCII character replaced.
pub(crate) fn fallback_names(name: &str, delim: char, with_use: bool) -> Vec<(String, bool)> {
    let cleaned = mapping::cleaned_name(name, delim);
    let bmp: String = cleaned.chars().map(|c| if u32::from(c) > 0xFFFF { '_' } else { c }).collect();
    let ascii: String = cleaned.chars().map(|c| if c.is_ascii() { c } else { '_' }).collect();
    let mut out: Vec<(String, bool)> = vec![(name.to_owned(), with_use)];
    if with_use {
        out.push((name.to_owned(), false));
    }
    for n in [cleaned, bmp, ascii] {
        if !out.iter().any(|(m, _)| *m == n) {
            out.push((n, false));
        }
    }
    out
}

/// What became of one CREATE.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Created {
    /// Created by this run (so empty).
    Yes,
    /// It was there already (`[ALREADYEXISTS]`).
    Existed,
    /// Refused: the server's reason.
    Refused(String),
}

/// Sends the attempts' CREATE (and SUBSCRIBE) and the SUBSCRIBE of
/// folders already there, pipelined; returns what became of each attempt.
/// The SUBSCRIBE of a folder whose CREATE was refused is undone; a refused
/// SUBSCRIBE is only logged.
async fn run_attempts(
    tgt: &mut Client,
    attempts: &[Attempt],
    subscribe: &[MailboxName],
) -> Result<Vec<Created>, Error> {
    // (command, name, the attempt it belongs to)
    let mut commands: Vec<(MailboxCommand, MailboxName, Option<usize>)> = Vec::new();
    for (k, a) in attempts.iter().enumerate() {
        let name = MailboxName::new(&a.name);
        let create = a.create_use.map_or(MailboxCommand::Create, MailboxCommand::CreateSpecialUse);
        commands.push((create, name.clone(), Some(k)));
        if a.subscribe {
            commands.push((MailboxCommand::Subscribe, name, Some(k)));
        }
    }
    commands.extend(subscribe.iter().map(|m| (MailboxCommand::Subscribe, m.clone(), None)));
    let borrowed: Vec<(MailboxCommand, &MailboxName)> = commands.iter().map(|(c, m, _)| (*c, m)).collect();
    let results = tgt.mailbox_commands(&borrowed).await.map_err(on(Side::Target))?;
    let mut created: Vec<Created> = vec![Created::Yes; attempts.len()];
    let mut undo: Vec<MailboxName> = Vec::new();
    for ((command, name, k), r) in commands.iter().zip(results) {
        let refused = |k: &Option<usize>| k.is_some_and(|k| matches!(created[k], Created::Refused(_)));
        match (command, r) {
            (MailboxCommand::Create | MailboxCommand::CreateSpecialUse(_), Err(e)) => {
                if let Some(k) = *k {
                    created[k] = if e.code() == Some(bma_imap::ResponseCode::AlreadyExists) {
                        Created::Existed
                    } else {
                        Created::Refused(e.to_string())
                    };
                }
            }
            (MailboxCommand::Subscribe, Ok(())) if refused(k) => undo.push(name.clone()),
            (MailboxCommand::Subscribe, Err(e)) => tracing::warn!(folder = %name.name(), "cannot subscribe: {e}"),
            _ => {}
        }
    }
    if !undo.is_empty() {
        let borrowed: Vec<(MailboxCommand, &MailboxName)> =
            undo.iter().map(|m| (MailboxCommand::Unsubscribe, m)).collect();
        for (m, r) in undo.iter().zip(tgt.mailbox_commands(&borrowed).await.map_err(on(Side::Target))?) {
            if let Err(e) = r {
                tracing::debug!(folder = %m.name(), "unsubscribe of a folder not created: {e}");
            }
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::fallback_names;

    #[test]
    fn names_tried_after_a_refusal() {
        let owned = |v: &[(&str, bool)]| v.iter().map(|(n, u)| ((*n).to_owned(), *u)).collect::<Vec<_>>();
        type Case = (&'static str, char, bool, Vec<(String, bool)>);
        let cases: [Case; 5] = [
            // Courier refuses characters outside the BMP.
            (
                "INBOX.Émoji 📧",
                '.',
                false,
                owned(&[("INBOX.Émoji 📧", false), ("INBOX.Émoji _", false), ("INBOX._moji _", false)]),
            ),
            // A Maildir++ store refuses the dot: cleaned first.
            ("Projets v1.2", '/', false, owned(&[("Projets v1.2", false), ("Projets v1_2", false)])),
            // A special use refused ([USEATTR]): the same name without it first.
            ("INBOX.Sent", '.', true, owned(&[("INBOX.Sent", true), ("INBOX.Sent", false)])),
            ("Été", '/', false, owned(&[("Été", false), ("_t_", false)])),
            ("Plain", '/', false, owned(&[("Plain", false)])),
        ];
        for (name, delim, with_use, want) in cases {
            assert_eq!(fallback_names(name, delim, with_use), want, "{name}");
        }
    }
}
