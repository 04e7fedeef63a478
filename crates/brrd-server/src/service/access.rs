//! Access control, in one place: who the caller is ([`Service::authenticate`]), whether a role may use
//! an endpoint ([`Access`]), whether the caller may touch a company's records ([`company_scope`]) and
//! whether one user may see another in the directory ([`directory_view`]).
//!
//! Cross-company access is answered with [`Error::NotFound`], so that another company's ids cannot even
//! be confirmed to exist; a role that is too low inside the right company gets [`Error::Forbidden`].

use brr_api::identity::{CompanyVisibility, Role, UserStatus, UserVisibility};

use super::Service;
use crate::crypto::{ct_eq, sha256_hex};
use crate::error::{Error, Result};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person, logged in with a session.
    User {
        /// User id.
        id: String,
        /// Company (none for provider staff).
        company_id: Option<String>,
        /// Role.
        role: Role,
        /// Session id.
        session_id: String,
    },
    /// A machine: a company API key (`brr_…`, which only enrols agents and reads `/me`), or an agent
    /// enrolled with one (`brra_…`, which backs up).
    Agent {
        /// The API key, or the key the agent enrolled with.
        key_id: String,
        /// Company the key belongs to.
        company_id: String,
        /// The enrolled agent; `None` for the API key itself.
        agent_id: Option<String>,
    },
}

impl Principal {
    /// `user:<id>` or `agent:<id>`, as written to the audit trail.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { id, .. } => format!("user:{id}"),
            Principal::Agent {
                agent_id: Some(id), ..
            } => format!("agent:{id}"),
            Principal::Agent { key_id, .. } => format!("api_key:{key_id}"),
        }
    }

    /// The caller's company.
    pub fn company_id(&self) -> Option<&str> {
        match self {
            Principal::User { company_id, .. } => company_id.as_deref(),
            Principal::Agent { company_id, .. } => Some(company_id),
        }
    }

    /// The role of a person (agents have none).
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::User { role, .. } => Some(*role),
            Principal::Agent { .. } => None,
        }
    }

    /// The enrolled agent's id, if the caller is one.
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Principal::Agent { agent_id, .. } => agent_id.as_deref(),
            Principal::User { .. } => None,
        }
    }
}

/// Who may call an endpoint; declared next to every handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Any authenticated person or agent.
    Authenticated,
    /// Any logged-in person (not agents).
    Users,
    /// Persons with one of these roles.
    Roles(&'static [Role]),
    /// Company API keys only (enrolment).
    ApiKeys,
    /// Any logged-in person or enrolled agent, not a bare API key (repositories; the fine-grained
    /// rules are `service::repos::rules`).
    Members,
}

impl Access {
    /// Whether `p` passes this rule (company scope is checked separately, by the handler's operation).
    pub fn allows(self, p: Option<&Principal>) -> Result<()> {
        match (self, p) {
            (Access::Public, _) => Ok(()),
            (_, None) => Err(Error::Unauthenticated),
            (Access::Authenticated, Some(_)) => Ok(()),
            (Access::Users, Some(Principal::User { .. })) => Ok(()),
            (Access::Roles(roles), Some(Principal::User { role, .. })) if roles.contains(role) => {
                Ok(())
            }
            (Access::Members, Some(Principal::User { .. })) => Ok(()),
            (
                Access::Members,
                Some(Principal::Agent {
                    agent_id: Some(_), ..
                }),
            ) => Ok(()),
            (Access::ApiKeys, Some(Principal::Agent { agent_id: None, .. })) => Ok(()),
            _ => Err(Error::Forbidden),
        }
    }
}

/// What an operation does to a company's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read metadata of the company.
    Read,
    /// Change it, or read its people, invitations and keys.
    Manage,
}

/// The one check of company scope. Provider admins may do anything; operators and security officers
/// may read company metadata; company admins manage their own company; company users read it.
/// Everyone else gets [`Error::NotFound`].
pub fn company_scope(p: &Principal, company_id: &str, need: Need) -> Result<()> {
    match p {
        Principal::User {
            role: Role::ProviderAdmin,
            ..
        } => Ok(()),
        Principal::User {
            role: Role::Operator | Role::SecurityOfficer,
            ..
        } => match need {
            Need::Read => Ok(()),
            Need::Manage => Err(Error::Forbidden),
        },
        Principal::User {
            company_id: Some(c),
            role,
            ..
        } if c == company_id => match (role, need) {
            (Role::CompanyAdmin, _) | (Role::CompanyUser, Need::Read) => Ok(()),
            _ => Err(Error::Forbidden),
        },
        Principal::Agent { company_id: c, .. } if c == company_id => match need {
            Need::Read => Ok(()),
            Need::Manage => Err(Error::Forbidden),
        },
        _ => Err(Error::NotFound),
    }
}

/// How much of a profile a viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Everything (colleagues, provider admins and security officers).
    Full,
    /// Name and company only (outsiders, where visibility allows).
    Limited,
}

/// The viewer's side of a directory look-up.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// Role.
    pub role: Role,
    /// Company id.
    pub company_id: Option<&'a str>,
    /// Visibility of the viewer's company.
    pub company_visibility: Option<CompanyVisibility>,
}

/// The target's side of a directory look-up.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Company id.
    pub company_id: Option<&'a str>,
    /// Visibility of the target's company.
    pub company_visibility: Option<CompanyVisibility>,
    /// The target's own override.
    pub user_visibility: UserVisibility,
    /// Account state (only active users are listed to outsiders).
    pub status: UserStatus,
}

/// Whether `viewer` may see `target`, and how much (the directory rules of R10).
pub fn directory_view(viewer: Viewer<'_>, target: Target<'_>) -> Option<View> {
    use CompanyVisibility as C;
    match viewer.role {
        Role::ProviderAdmin | Role::SecurityOfficer => return Some(View::Full),
        Role::Operator => return None,
        Role::CompanyAdmin | Role::CompanyUser => {}
    }
    if viewer.company_id.is_some() && viewer.company_id == target.company_id {
        return Some(View::Full);
    }
    if target.company_id.is_none() || target.status != UserStatus::Active {
        return None;
    }
    if matches!(
        viewer.company_visibility,
        Some(C::Closed | C::Isolated) | None
    ) {
        return None;
    }
    let visible = match (target.company_visibility?, target.user_visibility) {
        (C::Isolated, _) => false,
        (_, UserVisibility::Hidden) => false,
        (_, UserVisibility::Public) => true,
        (C::Public, UserVisibility::Inherit) => true,
        (C::Private | C::Closed, UserVisibility::Inherit) => false,
    };
    visible.then_some(View::Limited)
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    company_id: String,
    secret_hash: String,
    revoked_at: Option<i64>,
}

impl Service {
    /// Resolves a bearer credential to a principal, checking on every request that the user is still
    /// active, the session is not revoked, the API key is not revoked and the company is not suspended.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if let Some(rest) = bearer.strip_prefix("brra_") {
            return self.authenticate_agent(rest).await;
        }
        if let Some(rest) = bearer.strip_prefix("brr_") {
            return self.authenticate_key(rest).await;
        }
        let claims = self.tokens.verify(bearer, self.now())?;
        let user = self
            .user_by_id(&claims.sub)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if user.status()? != UserStatus::Active {
            return Err(Error::Unauthenticated);
        }
        let session: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT user_id, revoked_at FROM sessions WHERE id = $1")
                .bind(&claims.sid)
                .fetch_optional(&self.db.pool)
                .await?;
        match session {
            Some((uid, None)) if uid == user.id => {}
            _ => return Err(Error::Unauthenticated),
        }
        if let Some(c) = &user.company_id
            && self.company_status(c).await?.as_deref() != Some("active")
        {
            return Err(Error::Unauthenticated);
        }
        Ok(Principal::User {
            role: user.role()?,
            id: user.id,
            company_id: user.company_id,
            session_id: claims.sid,
        })
    }

    async fn authenticate_key(&self, rest: &str) -> Result<Principal> {
        let (id, secret) = rest.split_once('_').ok_or(Error::Unauthenticated)?;
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT company_id, secret_hash, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        let row = row.ok_or(Error::Unauthenticated)?;
        if row.revoked_at.is_some() || !ct_eq(&sha256_hex(secret.as_bytes()), &row.secret_hash) {
            return Err(Error::Unauthenticated);
        }
        if self.company_status(&row.company_id).await?.as_deref() != Some("active") {
            return Err(Error::Unauthenticated);
        }
        Ok(Principal::Agent {
            key_id: id.to_string(),
            company_id: row.company_id,
            agent_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(role: Role, company: Option<&str>) -> Principal {
        Principal::User {
            id: "u".into(),
            company_id: company.map(str::to_string),
            role,
            session_id: "s".into(),
        }
    }

    #[test]
    fn company_scope_table() {
        use Need::*;
        let cases = [
            (user(Role::ProviderAdmin, None), Manage, true),
            (user(Role::Operator, None), Read, true),
            (user(Role::Operator, None), Manage, false),
            (user(Role::SecurityOfficer, None), Manage, false),
            (user(Role::CompanyAdmin, Some("a")), Manage, true),
            (user(Role::CompanyUser, Some("a")), Read, true),
            (user(Role::CompanyUser, Some("a")), Manage, false),
            (user(Role::CompanyAdmin, Some("b")), Read, false),
            (
                Principal::Agent {
                    key_id: "k".into(),
                    company_id: "a".into(),
                    agent_id: None,
                },
                Manage,
                false,
            ),
            (
                Principal::Agent {
                    key_id: "k".into(),
                    company_id: "b".into(),
                    agent_id: Some("g".into()),
                },
                Read,
                false,
            ),
        ];
        for (p, need, ok) in cases {
            assert_eq!(company_scope(&p, "a", need).is_ok(), ok, "{p:?} {need:?}");
        }
        assert!(matches!(
            company_scope(&user(Role::CompanyAdmin, Some("b")), "a", Need::Read),
            Err(Error::NotFound)
        ));
    }

    fn company_vis() -> impl Strategy<Value = CompanyVisibility> {
        prop_oneof![
            Just(CompanyVisibility::Private),
            Just(CompanyVisibility::Public),
            Just(CompanyVisibility::Closed),
            Just(CompanyVisibility::Isolated)
        ]
    }

    fn user_vis() -> impl Strategy<Value = UserVisibility> {
        prop_oneof![
            Just(UserVisibility::Inherit),
            Just(UserVisibility::Public),
            Just(UserVisibility::Hidden)
        ]
    }

    proptest! {
        #[test]
        fn outsiders_never_see_more_than_visibility_allows(
            vc in company_vis(), tc in company_vis(), tu in user_vis(),
            admin in any::<bool>(), same in any::<bool>()
        ) {
            let role = if admin { Role::CompanyAdmin } else { Role::CompanyUser };
            let viewer = Viewer { role, company_id: Some("v"), company_visibility: Some(vc) };
            let target_company = if same { "v" } else { "t" };
            let target = Target {
                company_id: Some(target_company),
                company_visibility: Some(if same { vc } else { tc }),
                user_visibility: tu,
                status: UserStatus::Active,
            };
            let view = directory_view(viewer, target);
            if same {
                prop_assert_eq!(view, Some(View::Full));
            } else {
                // Outsiders never get the full profile.
                prop_assert_ne!(view, Some(View::Full));
                if view.is_some() {
                    prop_assert!(matches!(vc, CompanyVisibility::Private | CompanyVisibility::Public));
                    prop_assert!(tc != CompanyVisibility::Isolated);
                    prop_assert!(tu != UserVisibility::Hidden);
                    prop_assert!(tu == UserVisibility::Public || tc == CompanyVisibility::Public);
                }
            }
        }
    }

    #[test]
    fn operators_see_no_people() {
        let viewer = Viewer {
            role: Role::Operator,
            company_id: None,
            company_visibility: None,
        };
        let target = Target {
            company_id: Some("t"),
            company_visibility: Some(CompanyVisibility::Public),
            user_visibility: UserVisibility::Public,
            status: UserStatus::Active,
        };
        assert_eq!(directory_view(viewer, target), None);
    }
}
