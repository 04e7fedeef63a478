//! Who may do what to a repository and its files (docs/server-repositories.md §2), in one place.
//!
//! Company scope first (another company's repository is [`Error::NotFound`], like one that does not
//! exist), then the role (too low is [`Error::Forbidden`]), then append-only ([`Error::AppendOnly`]).

use brr_api::identity::Role;
use brr_storage::FileKind;

use crate::error::{Error, Result};
use crate::service::Principal;

/// What the caller wants to do with a repository's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// List, read, look up blobs.
    Read,
    /// Upload.
    Write,
    /// Delete.
    Delete,
}

/// What the caller wants to do with a repository's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoOp {
    /// Read its settings and usage.
    Read,
    /// Create one, or change its settings.
    Manage,
}

/// A permitted file operation, possibly with a condition the operation itself must check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Allowed as it is.
    Yes,
    /// Deleting an index file: only if a stored index file supersedes it.
    IfSuperseded,
}

/// How the caller stands to a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Outsider,
    Staff,
    ApiKey,
    Member,
    Admin,
}

fn standing(p: &Principal, company_id: &str) -> Standing {
    match p {
        Principal::User { role, .. } if role.is_provider() => Standing::Staff,
        Principal::User {
            company_id: Some(c),
            role,
            ..
        } if c == company_id => match role {
            Role::CompanyAdmin => Standing::Admin,
            _ => Standing::Member,
        },
        Principal::Agent {
            company_id: c,
            agent_id,
            ..
        } if c == company_id => match agent_id {
            Some(_) => Standing::Member,
            None => Standing::ApiKey,
        },
        _ => Standing::Outsider,
    }
}

/// May `p` read or manage the record of a repository of `company_id`? Provider staff read metadata and
/// usage; company members and agents read; company admins manage.
pub fn repo_rule(p: &Principal, company_id: &str, op: RepoOp) -> Result<()> {
    match (standing(p, company_id), op) {
        (Standing::Outsider, _) => Err(Error::NotFound),
        (Standing::Admin, _) => Ok(()),
        (Standing::Staff | Standing::Member, RepoOp::Read) => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

/// May `p` do `op` on files of `kind` in a repository of `company_id` that is (effectively)
/// `append_only`?
pub fn file_rule(
    p: &Principal,
    company_id: &str,
    kind: FileKind,
    op: FileOp,
    append_only: bool,
) -> Result<Allowed> {
    use FileKind::*;
    let s = standing(p, company_id);
    match s {
        Standing::Outsider => return Err(Error::NotFound),
        Standing::Staff | Standing::ApiKey => return Err(Error::Forbidden),
        Standing::Member | Standing::Admin => {}
    }
    let admin = s == Standing::Admin;
    match (op, kind) {
        (FileOp::Read, _) => Ok(Allowed::Yes),
        (FileOp::Write, Pack | Index | Snapshot | Lock) => Ok(Allowed::Yes),
        (FileOp::Write, Config | Key | Gc) if admin => Ok(Allowed::Yes),
        (FileOp::Delete, Lock) => Ok(Allowed::Yes),
        (FileOp::Delete, Index) if admin && !append_only => Ok(Allowed::Yes),
        (FileOp::Delete, Index) => Ok(Allowed::IfSuperseded),
        (FileOp::Delete, Snapshot | Pack | Key | Gc) if admin => {
            if append_only {
                Err(Error::AppendOnly(format!(
                    "the repository is append-only: {} files cannot be deleted",
                    kind.as_str()
                )))
            } else {
                Ok(Allowed::Yes)
            }
        }
        _ => Err(Error::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, company: Option<&str>) -> Principal {
        Principal::User {
            id: "u".into(),
            company_id: company.map(str::to_string),
            role,
            session_id: "s".into(),
        }
    }

    fn agent(company: &str, enrolled: bool) -> Principal {
        Principal::Agent {
            key_id: "k".into(),
            company_id: company.into(),
            agent_id: enrolled.then(|| "g".into()),
        }
    }

    /// Expected outcome: `Y` allowed, `S` allowed if superseded, `F` forbidden, `N` not found,
    /// `A` refused as append-only.
    fn outcome(r: Result<Allowed>) -> char {
        match r {
            Ok(Allowed::Yes) => 'Y',
            Ok(Allowed::IfSuperseded) => 'S',
            Err(Error::Forbidden) => 'F',
            Err(Error::NotFound) => 'N',
            Err(Error::AppendOnly(_)) => 'A',
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn file_rules_table() {
        use FileKind::*;
        use FileOp::*;
        let kinds = [Config, Key, Pack, Index, Snapshot, Lock, Gc];
        // Per principal, per (op, append_only): the outcome for each kind in `kinds` order.
        let admin = user(Role::CompanyAdmin, Some("a"));
        let member = user(Role::CompanyUser, Some("a"));
        let enrolled = agent("a", true);
        let cases: Vec<(&Principal, FileOp, bool, &str)> = vec![
            (&admin, Read, false, "YYYYYYY"),
            (&admin, Write, false, "YYYYYYY"),
            (&admin, Delete, false, "FYYYYYY"),
            (&admin, Delete, true, "FAASAYA"),
            (&admin, Write, true, "YYYYYYY"),
            (&member, Read, false, "YYYYYYY"),
            (&member, Write, false, "FFYYYYF"),
            (&member, Delete, false, "FFFSFYF"),
            (&member, Delete, true, "FFFSFYF"),
            (&enrolled, Read, true, "YYYYYYY"),
            (&enrolled, Write, false, "FFYYYYF"),
            (&enrolled, Delete, false, "FFFSFYF"),
        ];
        for (p, op, ao, expect) in cases {
            let got: String = kinds
                .iter()
                .map(|k| outcome(file_rule(p, "a", *k, op, ao)))
                .collect();
            assert_eq!(got, expect, "{p:?} {op:?} append_only={ao}");
        }
        let nobody: Vec<(Principal, char)> = vec![
            (user(Role::ProviderAdmin, None), 'F'),
            (user(Role::Operator, None), 'F'),
            (user(Role::SecurityOfficer, None), 'F'),
            (agent("a", false), 'F'),
            (user(Role::CompanyAdmin, Some("b")), 'N'),
            (user(Role::CompanyUser, Some("b")), 'N'),
            (agent("b", true), 'N'),
            (agent("b", false), 'N'),
        ];
        for (p, expect) in nobody {
            for op in [Read, Write, Delete] {
                for k in kinds {
                    assert_eq!(outcome(file_rule(&p, "a", k, op, false)), expect, "{p:?}");
                }
            }
        }
    }

    #[test]
    fn repo_rules_table() {
        let cases = [
            (user(Role::ProviderAdmin, None), "YF"),
            (user(Role::Operator, None), "YF"),
            (user(Role::SecurityOfficer, None), "YF"),
            (user(Role::CompanyAdmin, Some("a")), "YY"),
            (user(Role::CompanyUser, Some("a")), "YF"),
            (agent("a", true), "YF"),
            (agent("a", false), "FF"),
            (user(Role::CompanyAdmin, Some("b")), "NN"),
            (agent("b", true), "NN"),
        ];
        for (p, expect) in cases {
            let got: String = [RepoOp::Read, RepoOp::Manage]
                .into_iter()
                .map(|op| match repo_rule(&p, "a", op) {
                    Ok(()) => 'Y',
                    Err(Error::Forbidden) => 'F',
                    Err(Error::NotFound) => 'N',
                    Err(e) => panic!("{e:?}"),
                })
                .collect();
            assert_eq!(got, expect, "{p:?}");
        }
    }
}
