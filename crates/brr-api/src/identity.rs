//! Companies, users, roles, invitations, the directory and agent API keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role. Provider roles have no company; company roles always have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the service: manages companies and provider staff.
    ProviderAdmin,
    /// Operates the service: sees service metadata, never customer content or people.
    Operator,
    /// Reads and verifies the audit trail across all companies.
    SecurityOfficer,
    /// Manages one company's users, invitations, API keys and visibility.
    CompanyAdmin,
    /// A member of one company.
    CompanyUser,
}

impl Role {
    /// Stable text form (as stored and serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProviderAdmin => "provider_admin",
            Role::Operator => "operator",
            Role::SecurityOfficer => "security_officer",
            Role::CompanyAdmin => "company_admin",
            Role::CompanyUser => "company_user",
        }
    }

    /// Parses the stable text form.
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::ProviderAdmin,
            Role::Operator,
            Role::SecurityOfficer,
            Role::CompanyAdmin,
            Role::CompanyUser,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// True for the provider's own staff roles (no company).
    pub fn is_provider(self) -> bool {
        matches!(
            self,
            Role::ProviderAdmin | Role::Operator | Role::SecurityOfficer
        )
    }
}

/// How visible a company's members are outside the company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompanyVisibility {
    /// Default: members invisible outside unless a user is made public; members may see public outsiders.
    Private,
    /// Members visible outside unless a user is hidden.
    Public,
    /// Like private, and members cannot see anyone outside the company.
    Closed,
    /// Nobody visible outside (overrides ignored), and members cannot see outside.
    Isolated,
}

impl CompanyVisibility {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            CompanyVisibility::Private => "private",
            CompanyVisibility::Public => "public",
            CompanyVisibility::Closed => "closed",
            CompanyVisibility::Isolated => "isolated",
        }
    }

    /// Parses the stable text form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Private, Self::Public, Self::Closed, Self::Isolated]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A per-user override of the company's visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserVisibility {
    /// Follow the company setting.
    Inherit,
    /// Visible outside the company (ignored when the company is isolated).
    Public,
    /// Never visible outside the company.
    Hidden,
}

impl UserVisibility {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            UserVisibility::Inherit => "inherit",
            UserVisibility::Public => "public",
            UserVisibility::Hidden => "hidden",
        }
    }

    /// Parses the stable text form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Inherit, Self::Public, Self::Hidden]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Account state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Signed up, e-mail not yet proven.
    Pending,
    /// May log in.
    Active,
    /// Blocked by an administrator; every token stops working at once.
    Disabled,
}

impl UserStatus {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    /// Parses the stable text form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Disabled]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A site of the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Site code, e.g. `HK-ALC`.
    pub code: String,
    /// Human-readable location.
    pub name: String,
}

/// A company (tenant).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Company {
    /// Identifier.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Home site code.
    pub site: String,
    /// Directory visibility.
    pub visibility: CompanyVisibility,
    /// `active` or `suspended`.
    pub status: String,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
}

/// `POST /companies` (provider admin): creates a company and invites its first administrator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCompany {
    /// Unique name.
    pub name: String,
    /// Home site code from the catalogue.
    pub site: String,
    /// E-mail address of the company administrator to invite.
    pub admin_email: String,
}

/// `PATCH /companies/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCompany {
    /// New directory visibility (company admin or provider admin).
    #[serde(default)]
    pub visibility: Option<CompanyVisibility>,
    /// `active` or `suspended` (provider admin only).
    #[serde(default)]
    pub status: Option<String>,
}

/// A user as seen by the user, colleagues' administrators and provider staff.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Identifier.
    pub id: String,
    /// Company, absent for provider staff.
    pub company_id: Option<String>,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Account state.
    pub status: UserStatus,
    /// Per-user directory override.
    pub visibility: UserVisibility,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
}

/// `PATCH /companies/{cid}/users/{uid}` (company admin).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New role (company roles only).
    #[serde(default)]
    pub role: Option<Role>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: Option<UserStatus>,
    /// Directory override.
    #[serde(default)]
    pub visibility: Option<UserVisibility>,
}

/// `POST /companies/{cid}/invitations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    /// Address to invite.
    pub email: String,
    /// Role to grant (company roles only).
    pub role: Role,
}

/// An invitation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    /// Identifier.
    pub id: String,
    /// Company.
    pub company_id: String,
    /// Invited address.
    pub email: String,
    /// Role granted on sign-up.
    pub role: Role,
    /// `open`, `accepted` or `revoked`.
    pub status: String,
    /// Expiry, Unix milliseconds.
    pub expires_at: i64,
}

/// A directory entry: only what the viewer may see.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryEntry {
    /// User identifier.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Company name.
    pub company: String,
    /// E-mail: only shown to colleagues and provider staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role: only shown to colleagues and provider staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// `POST /companies/{cid}/api-keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Label, e.g. the machine's host name.
    pub name: String,
}

/// An agent API key's metadata (the secret is never shown again).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Identifier (also the public prefix of the key).
    pub id: String,
    /// Company.
    pub company_id: String,
    /// Label.
    pub name: String,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// The response to creating an API key: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatedApiKey {
    /// Metadata.
    pub key: ApiKey,
    /// The secret to give the agent (`Authorization: Bearer <secret>`).
    pub secret: String,
}

/// `GET /me`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Me {
    /// The user, absent when the caller is an agent.
    pub user: Option<User>,
    /// The API key id, when the caller is an API key or an agent enrolled with one.
    pub api_key_id: Option<String>,
    /// The agent id, when the caller is an enrolled agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The caller's company.
    pub company_id: Option<String>,
}

/// `GET /me/export`: the personal data held about the caller (GDPR access request).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalDataExport {
    /// The account.
    pub user: User,
    /// Audit entries the caller is the actor of.
    pub audit: Vec<crate::audit::AuditEntry>,
}
