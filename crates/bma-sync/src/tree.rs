//! The target's tree, before any folder is copied: missing folders created
//! and subscriptions carried in one pipelined round trip (a name the target
//! refuses tried again cleaned, [`mapping::cleaned_name`]), and with
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
/// source has subscribed, in one pipelined round trip. A name the target
/// refuses is tried once more cleaned ([`mapping::cleaned_name`]), and the
/// plan follows the new name, with a note. Returns the folders whose target
/// could not be created, with the reason.
pub(crate) async fn prepare_tree(
    tgt: &mut Client,
    plans: &mut [FolderPlan],
    tgt_list: &[bma_imap::MailboxInfo],
) -> Result<HashMap<String, String>, Error> {
    let delim = tgt_list.iter().find_map(|m| m.delimiter).unwrap_or('/');
    let mut commands: Vec<(MailboxCommand, MailboxName)> = Vec::new();
    let mut created: Vec<usize> = Vec::new();
    for (i, p) in plans.iter().enumerate().filter(|(_, p)| !p.target.is_inbox()) {
        let on_target = tgt_list.iter().find(|t| t.name.name() == p.target_name);
        if !p.target_exists && on_target.is_none() {
            commands.push((MailboxCommand::Create, p.target.clone()));
            created.push(i);
        }
        if p.subscribed && !on_target.is_some_and(|t| t.subscribed) {
            commands.push((MailboxCommand::Subscribe, p.target.clone()));
        }
    }
    let (made, refused) = run_tree_commands(tgt, &commands, &created).await?;
    for i in made {
        plans[i].created = true;
    }
    // Names refused: once more, cleaned.
    let mut early = HashMap::new();
    let mut retry: Vec<(MailboxCommand, MailboxName)> = Vec::new();
    let mut renamed: Vec<(usize, String, String)> = Vec::new();
    for (i, reason) in refused {
        let p = &plans[i];
        let base = mapping::cleaned_name(&p.target_name, delim);
        if base == p.target_name {
            early.insert(p.source_name.clone(), format!("cannot create {}: {reason}", p.target_name));
            continue;
        }
        // Never onto another source folder's target.
        let mut clean = base.clone();
        let mut n = 2;
        while plans.iter().any(|q| q.target_name == clean) || renamed.iter().any(|(_, c, _)| *c == clean) {
            clean = format!("{base} ({n})");
            n += 1;
        }
        retry.push((MailboxCommand::Create, MailboxName::new(&clean)));
        if p.subscribed {
            retry.push((MailboxCommand::Subscribe, MailboxName::new(&clean)));
        }
        renamed.push((i, clean, reason));
    }
    let again: Vec<usize> = renamed.iter().map(|(i, _, _)| *i).collect();
    let (made, still) = run_tree_commands(tgt, &retry, &again).await?;
    for (i, clean, reason) in renamed {
        let p = &mut plans[i];
        if let Some((_, e)) = still.iter().find(|(j, _)| *j == i) {
            early.insert(p.source_name.clone(), format!("cannot create {} ({reason}) nor {clean}: {e}", p.target_name));
            continue;
        }
        tracing::warn!(folder = %p.target_name, to = %clean, "the target refused the name: {reason}");
        p.note = Some(format!("the target refused the name {} ({reason}): copied to {clean}", p.target_name));
        p.target = MailboxName::new(&clean);
        p.target_name = clean;
        p.target_exists = true;
        p.created = made.contains(&i);
    }
    Ok(early)
}

/// Runs pipelined CREATE/SUBSCRIBE commands; `created[k]` is the plan of
/// the k-th CREATE. Returns the plans whose folder was created, and those
/// whose CREATE was refused (an existing folder is neither), with the
/// server's reason; a refused SUBSCRIBE is only logged.
async fn run_tree_commands(
    tgt: &mut Client,
    commands: &[(MailboxCommand, MailboxName)],
    created: &[usize],
) -> Result<(Vec<usize>, Vec<(usize, String)>), Error> {
    let borrowed: Vec<(MailboxCommand, &MailboxName)> = commands.iter().map(|(c, m)| (*c, m)).collect();
    let results = tgt.mailbox_commands(&borrowed).await.map_err(on(Side::Target))?;
    let (mut made, mut refused) = (Vec::new(), Vec::new());
    let mut plans = created.iter();
    for ((command, name), r) in commands.iter().zip(results) {
        match (command, r) {
            (MailboxCommand::Create, r) => {
                // One plan per CREATE, by construction.
                let Some(&i) = plans.next() else { continue };
                match r {
                    Ok(()) => made.push(i),
                    Err(e) if e.code() == Some(bma_imap::ResponseCode::AlreadyExists) => {}
                    Err(e) => refused.push((i, e.to_string())),
                }
            }
            (_, Err(e)) => tracing::warn!(folder = %name.name(), "cannot subscribe: {e}"),
            (_, Ok(())) => {}
        }
    }
    Ok((made, refused))
}
