//! Verification (step 7 of the crate doc): STATUS (MESSAGES, SIZE) of the
//! folder on both sides at once, into the folder's report. A folder is
//! complete when the target holds at least the source's count
//! ([`FolderReport::complete`](crate::FolderReport)).

use crate::error::{Error, Side, on};
use crate::folder::FolderSync;

impl<S> FolderSync<'_, S> {
    /// Reads both sides' STATUS into the report (the target's only if
    /// `target_exists`); returns the target folder's UIDVALIDITY.
    pub(crate) async fn verify(&mut self, target_exists: bool) -> Result<Option<u32>, Error> {
        let (src, tgt, plan) = (&mut *self.src, &mut *self.tgt, self.plan);
        // Both sides at once: one round trip instead of two.
        let target = async {
            if target_exists { tgt.status(&plan.target).await.map(Some).map_err(on(Side::Target)) } else { Ok(None) }
        };
        let (s, t) = tokio::try_join!(async { src.status(&plan.source).await.map_err(on(Side::Source)) }, target)?;
        self.report.source_messages = u64::from(s.messages.unwrap_or(0));
        self.report.source_bytes = s.size.unwrap_or(0);
        Ok(t.and_then(|t| {
            self.report.target_messages = u64::from(t.messages.unwrap_or(0));
            self.report.target_bytes = t.size.unwrap_or(0);
            t.uid_validity
        }))
    }
}
