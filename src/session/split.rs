//! Sending one message per method group: when the route plan gives the
//! recipients different methods, each group gets its own copy in its own
//! SMTP transaction and its own outbox entry.
//!
//! Every copy has the same Message-ID, Date, From, To, Cc and Subject
//! handling; none has a Bcc field. An encrypted copy is encrypted to its
//! group's recipients and the sender only. Each Bcc recipient is a group of
//! their own, so no copy names or is encrypted to a Bcc recipient except
//! that recipient's own copy, which names no other Bcc recipient. Only the
//! first group's copy is filed in Sent; it is readable by the sender,
//! because encrypted copies are always encrypted to the sender too.

use std::sync::Arc;

use super::{Method, Session, SessionError};
use super::{PortalDelivery, PortalFactor};
use crate::audit::{self, AuditDraft};
use crate::compose::Draft;
use crate::guard::Choice;
use crate::outbox::{self, GroupCopy};
use crate::protected::{Protection, SealError};
use crate::route::{Method as RouteMethod, MethodGroup, RoutePlan, Sealing};
use crate::sync::blocking;

/// The outcome of one method group's transaction.
#[derive(Debug, Clone)]
pub struct GroupOutcome {
    /// The group's outbox entry, for a retry with [`Session::resend`].
    pub outbox: i64,
    /// The group's envelope recipients.
    pub recipients: Vec<String>,
    /// The sealing of the group's copy.
    pub sealing: Sealing,
    /// Whether this is a Bcc recipient's own transaction.
    pub bcc: bool,
    /// Whether the copy was submitted (and, for the first group, filed in
    /// Sent), or why not. For a portal group, the copy is the notice.
    pub result: Result<(), Arc<SessionError>>,
    /// For a portal group: the uploaded message and the code to give the
    /// recipient.
    pub portal: Option<PortalDelivery>,
}

impl Session {
    /// Sends `draft` as one SMTP transaction per method group of `plan`
    /// (see [`RoutePlan::groups`]). `sign` names the technology that signs
    /// the clear copies; encrypted copies are signed with their own
    /// technology. `None` signs nothing.
    ///
    /// Every copy is written before any is queued, so a missing key, a
    /// locked key or a blocked recipient returns an error with nothing
    /// queued or sent. After that, each group is queued, recorded in the
    /// audit log with its own recipients and sent on its own: a group that
    /// fails stays in the outbox and the others are not sent again by a
    /// retry of it.
    pub async fn send_planned(
        self: &Arc<Self>,
        draft: Draft,
        message_id: String,
        date_unix: i64,
        plan: &RoutePlan,
        sign: Option<Method>,
        audit: AuditDraft,
    ) -> Result<Vec<GroupOutcome>, SessionError> {
        self.send_planned_with(draft, message_id, date_unix, plan, sign, audit, &[])
            .await
    }

    /// Sends as [`Session::send_planned`] does, with `factors` choosing how
    /// each portal recipient unlocks their copy (a code by phone when an
    /// address is not listed). A code by e-mail goes as one more
    /// transaction to the recipient, after the notice.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_planned_with(
        self: &Arc<Self>,
        draft: Draft,
        message_id: String,
        date_unix: i64,
        plan: &RoutePlan,
        sign: Option<Method>,
        audit: AuditDraft,
        factors: &[(String, PortalFactor)],
    ) -> Result<Vec<GroupOutcome>, SessionError> {
        let bcc: Vec<String> = draft.bcc.iter().map(|a| a.email.clone()).collect();
        let wants_requiretls = plan
            .routes
            .iter()
            .any(|route| route.method == Some(RouteMethod::Tls));
        let requiretls = wants_requiretls && self.requiretls().await == Some(true);
        let groups = plan
            .groups(&bcc, requiretls)
            .map_err(|problem| SealError::Crypto(format!("cannot send: {problem}")))?;

        let only_portal = groups.iter().all(|group| group.sealing == Sealing::Portal);
        let mut copies = Vec::with_capacity(groups.len());
        let mut prepared = Vec::new();
        for (position, group) in groups.iter().enumerate() {
            let raw = if group.sealing == Sealing::Portal {
                let session = self.clone();
                let (draft, id, recipient) = (
                    draft.clone(),
                    message_id.clone(),
                    group.recipients[0].clone(),
                );
                let factor = factors
                    .iter()
                    .find(|(address, _)| address.eq_ignore_ascii_case(&recipient))
                    .map(|(_, factor)| factor.clone())
                    .unwrap_or_default();
                // Sealing runs PBKDF2 with 600,000 iterations.
                let portal = super::unblock(move || {
                    session.prepare_portal(&draft, &id, &recipient, date_unix, &factor)
                })
                .await?;
                let notice = portal.notice.clone();
                prepared.push((position, portal));
                notice
            } else {
                self.build_group(&draft, &message_id, date_unix, group, sign)
                    .await?
            };
            copies.push(GroupCopy {
                message_id: message_id.clone(),
                position,
                raw,
                recipients: group.recipients.clone(),
                // A message to portal recipients only gets its copy in Sent
                // from `file_portal_copy`, because its only mail is notices.
                sent_copy: position == 0 && group.sealing != Sealing::Portal,
                require_tls: group.require_tls,
            });
        }

        // Uploads come before any copy is queued, so a portal that cannot
        // be reached leaves nothing half sent.
        let mut deliveries = Vec::with_capacity(prepared.len());
        for (position, portal) in &prepared {
            match self.upload_portal(portal).await {
                Ok(delivery) => deliveries.push((*position, delivery)),
                Err(error) => {
                    for (_, uploaded) in &deliveries {
                        if let Err(revoke) = self.portal_revoke(&uploaded.portal_id).await {
                            tracing::warn!(account = %self.account.id, error = %revoke, "an uploaded portal message could not be revoked");
                        }
                    }
                    return Err(error);
                }
            }
        }

        // A code by e-mail goes in a transaction of its own after the
        // groups, so the notice and the code never share one e-mail.
        let mut groups = groups;
        for (_, portal) in &prepared {
            let Some(code_notice) = &portal.code_notice else {
                continue;
            };
            copies.push(GroupCopy {
                message_id: message_id.clone(),
                position: copies.len(),
                raw: code_notice.clone(),
                recipients: vec![portal.recipient.clone()],
                sent_copy: false,
                require_tls: false,
            });
            groups.push(MethodGroup {
                sealing: Sealing::Clear,
                recipients: vec![portal.recipient.clone()],
                bcc: false,
                require_tls: false,
            });
        }

        let ids = self.enqueue_groups(copies, &audit).await?;
        tracing::info!(
            account = %self.account.id,
            groups = ids.len(),
            "message queued as one transaction per method group"
        );
        let mut outcomes = Vec::with_capacity(ids.len());
        for (position, (id, group)) in ids.into_iter().zip(groups).enumerate() {
            let result = self.resend(id, false).await.map_err(Arc::new);
            if result.is_err() {
                // The error text is not logged: the server's reply can name
                // the recipient's address. The outbox keeps it for the user.
                tracing::warn!(account = %self.account.id, outbox = id, "a method group was not sent");
            }
            outcomes.push(GroupOutcome {
                outbox: id,
                recipients: group.recipients,
                sealing: group.sealing,
                bcc: group.bcc,
                result,
                portal: deliveries
                    .iter()
                    .find(|(at, _)| *at == position)
                    .map(|(_, delivery)| delivery.clone()),
            });
        }
        if only_portal
            && !deliveries.is_empty()
            && let Err(error) = self.file_portal_copy(draft, &message_id, date_unix).await
        {
            // The message reached the portal and the notices are queued;
            // only the user's own copy is missing.
            tracing::warn!(account = %self.account.id, %error, "no copy of a portal message was filed in Sent");
        }
        Ok(outcomes)
    }

    /// Writes one group's copy: sealed for its encrypted groups, signed or
    /// plain for a clear group.
    async fn build_group(
        self: &Arc<Self>,
        draft: &Draft,
        message_id: &str,
        date_unix: i64,
        group: &MethodGroup,
        sign: Option<Method>,
    ) -> Result<Vec<u8>, SessionError> {
        let (method, encrypt) = match (group.sealing, sign) {
            (Sealing::Openpgp, _) => (Method::Openpgp, true),
            (Sealing::Smime, _) => (Method::Smime, true),
            (Sealing::Clear, Some(method)) => (method, false),
            (Sealing::Portal, _) => {
                return Err(SealError::Crypto(
                    "a portal copy is sealed for the portal, not as mail".to_owned(),
                )
                .into());
            }
            (Sealing::Clear, None) => {
                let draft = draft.clone();
                let message_id = message_id.to_owned();
                return super::unblock(move || {
                    draft
                        .to_mime(&message_id, date_unix)
                        .map_err(|error| SealError::Compose(error).into())
                })
                .await;
            }
        };
        let protection = Protection {
            sign: sign.is_some(),
            encrypt,
        };
        self.build_sealed(
            draft.clone(),
            message_id.to_owned(),
            date_unix,
            method,
            protection,
            group.recipients.clone(),
        )
        .await
    }

    /// Queues every copy with the part of `audit` that concerns its
    /// recipients. If one cannot be queued, the ones queued before it are
    /// removed again, so the message is either queued whole or not at all.
    async fn enqueue_groups(
        &self,
        copies: Vec<GroupCopy>,
        audit: &AuditDraft,
    ) -> Result<Vec<i64>, SessionError> {
        let mut ids = Vec::with_capacity(copies.len());
        for copy in copies {
            let plan = AuditDraft {
                recipients: audit
                    .recipients
                    .iter()
                    .filter(|planned| {
                        copy.recipients
                            .iter()
                            .any(|address| address.eq_ignore_ascii_case(&planned.address))
                    })
                    .cloned()
                    .collect(),
                decision: audit.decision.clone(),
                override_reason: audit.override_reason.clone(),
                // A removal concerns no copy; the first copy's entry keeps it.
                choices: audit
                    .choices
                    .iter()
                    .filter(|choice| match choice.choice {
                        Choice::Removed => copy.position == 0,
                        _ => copy
                            .recipients
                            .iter()
                            .any(|address| address.eq_ignore_ascii_case(&choice.address)),
                    })
                    .cloned()
                    .collect(),
            };
            let queued = async {
                let id = outbox::enqueue_group(&self.store, &self.account, copy).await?;
                ids.push(id);
                blocking(&self.store, move |s| audit::save_plan(s, id, &plan)).await?;
                Ok::<(), SessionError>(())
            }
            .await;
            match queued {
                Ok(()) => {}
                Err(error) => {
                    for id in ids {
                        let _ = blocking(&self.store, move |s| s.outbox_remove(id)).await;
                    }
                    return Err(error);
                }
            }
        }
        Ok(ids)
    }
}
