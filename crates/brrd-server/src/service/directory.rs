//! The directory: colleagues, and users of other companies whose visibility allows it.

use brr_api::identity::{CompanyVisibility, DirectoryEntry, Role, UserStatus, UserVisibility};

use super::access::{Target, View, Viewer, directory_view};
use super::{Ctx, Principal, Service};
use crate::error::{Error, Result};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    company_id: Option<String>,
    email: String,
    display_name: String,
    role: String,
    status: String,
    visibility: String,
    company_name: Option<String>,
    company_visibility: Option<String>,
}

const SELECT: &str = "SELECT u.id, u.company_id, u.email, u.display_name, u.role, u.status, u.visibility, \
     c.name AS company_name, c.visibility AS company_visibility \
     FROM users u LEFT JOIN companies c ON c.id = u.company_id";

impl Service {
    async fn viewer_visibility(&self, p: &Principal) -> Result<Option<CompanyVisibility>> {
        let Some(c) = p.company_id() else {
            return Ok(None);
        };
        let v: Option<String> =
            sqlx::query_scalar("SELECT visibility FROM companies WHERE id = $1")
                .bind(c)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(v.as_deref().and_then(CompanyVisibility::parse))
    }

    fn entry(viewer: Viewer<'_>, r: Row) -> Option<DirectoryEntry> {
        let target = Target {
            company_id: r.company_id.as_deref(),
            company_visibility: r
                .company_visibility
                .as_deref()
                .and_then(CompanyVisibility::parse),
            user_visibility: UserVisibility::parse(&r.visibility)?,
            status: UserStatus::parse(&r.status)?,
        };
        let view = directory_view(viewer, target)?;
        let full = view == View::Full;
        Some(DirectoryEntry {
            id: r.id,
            display_name: r.display_name,
            company: r.company_name.unwrap_or_else(|| "provider".into()),
            email: full.then_some(r.email),
            role: if full { Role::parse(&r.role) } else { None },
        })
    }

    /// Users visible to the caller whose name or e-mail contains `q` (at most 200).
    pub async fn directory(&self, ctx: &Ctx, q: Option<&str>) -> Result<Vec<DirectoryEntry>> {
        let p = ctx.principal()?;
        let role = p.role().ok_or(Error::Forbidden)?;
        let vis = self.viewer_visibility(p).await?;
        let viewer = Viewer {
            role,
            company_id: p.company_id(),
            company_visibility: vis,
        };
        let needle = q.unwrap_or_default().to_lowercase().replace(['%', '_'], "");
        let pattern = format!("%{needle}%");
        // Outsiders are filtered by [`directory_view`]; the SQL only narrows by the search text.
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{SELECT} WHERE (LOWER(u.display_name) LIKE $1 OR u.email LIKE $1) ORDER BY u.display_name LIMIT 2000"
        ))
        .bind(&pattern)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Self::entry(viewer, r))
            // An e-mail match counts only where the viewer may see the e-mail; otherwise searching
            // by address would reveal outsiders' addresses one character at a time.
            .filter(|e| e.email.is_some() || e.display_name.to_lowercase().contains(&needle))
            .take(200)
            .collect())
    }

    /// One directory entry, or [`Error::NotFound`] when the caller may not see the user.
    pub async fn directory_entry(&self, ctx: &Ctx, user_id: &str) -> Result<DirectoryEntry> {
        let p = ctx.principal()?;
        let role = p.role().ok_or(Error::Forbidden)?;
        let vis = self.viewer_visibility(p).await?;
        let viewer = Viewer {
            role,
            company_id: p.company_id(),
            company_visibility: vis,
        };
        let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE u.id = $1"))
            .bind(user_id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.and_then(|r| Self::entry(viewer, r))
            .ok_or(Error::NotFound)
    }
}
