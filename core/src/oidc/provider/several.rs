//! Several projects in one process: [`Providers`] serves each project at
//! its own issuer, `{baseUrl}/{projectId}`, with every endpoint of that
//! project under it (`{issuer}/oauth2/v1/token`, `{issuer}/login/{projectId}`,
//! `{issuer}/v1/flow/...`, `{issuer}/v1/mgmt/...`) and its cookies scoped
//! to that path. Each project has its own keys, applications, flows,
//! limits and store (the `database` names one per project with
//! `{project}`), so nothing of one is known to another: a token of one is
//! refused by the other's userinfo, and the same email is two users.
//!
//! A single project is served as [`Provider::new`] serves it (endpoints at
//! the base URL), so a deployment that adds no second project sees no
//! change.

use super::http::{HttpRequest, HttpResponse};
use super::{metrics, Provider};
use crate::error::{Error, Result};
use crate::project::Project;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One or several projects' providers, and the requests' dispatch between
/// them by path.
pub struct Providers {
    providers: Vec<Arc<Provider>>,
    /// The families the projects' series share (several projects only).
    metrics: Option<metrics::Metrics>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.iter().map(|p| p.issuer())).finish()
    }
}

impl Providers {
    /// Providers for `projects` on `database` ([`crate::store::open_for_project`]:
    /// with several projects, a SQLite path or PostgreSQL URL must hold
    /// `{project}`; `None` keeps each in memory). Project ids must be
    /// unique, and with several projects safe as a path segment (letters,
    /// digits, `_` and `-`).
    pub fn open(projects: Vec<Project>, database: Option<&str>) -> Result<Providers> {
        let several = projects.len() > 1;
        for (i, p) in projects.iter().enumerate() {
            if projects[..i].iter().any(|q| q.project_id == p.project_id) {
                return Err(Error::config(format!("project {:?} is given twice", p.project_id)));
            }
            if several {
                crate::store::safe_project_id(&p.project_id)?;
            }
        }
        if several && database.is_some_and(|d| !d.contains(crate::store::PROJECT_PLACEHOLDER)) {
            return Err(Error::config(
                "several projects never share a store: put {project} in the database (data/{project}.db, or postgres://host/db?schema={project})",
            ));
        }
        if !several {
            let Some(project) = projects.into_iter().next() else {
                return Err(Error::config("no project to serve"));
            };
            let store = crate::store::open_for_project(database, &project.project_id)?;
            return Ok(Providers { providers: vec![Arc::new(Provider::new(project, store)?)], metrics: None });
        }
        let root = metrics::Metrics::root();
        let mut providers = Vec::with_capacity(projects.len());
        for project in projects {
            let store = crate::store::open_for_project(database, &project.project_id)?;
            providers.push(Arc::new(Provider::new_mounted(project, store, &root)?));
        }
        Ok(Providers { providers, metrics: Some(root) })
    }

    /// [`Providers::open`] on project files (JSON, or TOML by the name); a
    /// folder stands for every `.json` and `.toml` file in it, in name
    /// order. `base_url` overrides every project's.
    pub fn open_files(paths: &[impl AsRef<Path>], database: Option<&str>, base_url: Option<&str>) -> Result<Providers> {
        let mut projects = Vec::new();
        for file in project_files(paths)? {
            let mut project = Project::from_file(&file)?;
            project.override_base_url(base_url);
            projects.push(project);
        }
        Providers::open(projects, database)
    }

    /// [`Providers::open`] on project JSON texts (flow paths relative to
    /// `base_dir`). What the bindings construct.
    pub fn open_json(projects: &[&str], base_dir: &Path, database: Option<&str>, base_url: Option<&str>) -> Result<Providers> {
        let mut out = Vec::with_capacity(projects.len());
        for text in projects {
            let mut project = Project::from_json(text, base_dir)?;
            project.override_base_url(base_url);
            out.push(project);
        }
        Providers::open(out, database)
    }

    /// The providers, in the order their projects were given.
    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// The provider of project `project_id`.
    pub fn provider(&self, project_id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.project().project_id == project_id)
    }

    /// Handles one request: the project whose issuer path the request's
    /// path is under answers it. `/health` and `/favicon.ico` at a base
    /// URL's path are answered for all.
    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        if self.metrics.is_none() {
            return self.providers[0].handle(req).await;
        }
        // The process's own paths first: a project named `health` does
        // not hide the health check.
        let at_base = |name: &str| self.providers.iter().any(|p| req.path == format!("{}{name}", p.base_path));
        if at_base("/health") && req.method == "GET" {
            return HttpResponse::json(200, &json!({"status": "ok"})).with_header("Cache-Control", "no-store");
        }
        if at_base("/favicon.ico") && req.method == "GET" {
            return HttpResponse::new(204).with_header("Cache-Control", "public, max-age=86400");
        }
        let owner = self
            .providers
            .iter()
            .filter(|p| under(&req.path, &p.route_base))
            .max_by_key(|p| p.route_base.len());
        match owner {
            Some(p) => p.handle(req).await,
            None => HttpResponse::json(404, &json!({"error": "not_found", "error_description": "no such endpoint"})),
        }
    }

    /// Every project's metrics in one Prometheus text, each series
    /// labelled with its `project` when several are served.
    pub fn metrics(&self) -> String {
        match &self.metrics {
            None => self.providers[0].metrics(),
            Some(root) => {
                for p in &self.providers {
                    p.metrics.set_pool(p.store.pool_use());
                }
                root.encode()
            }
        }
    }
}

/// Whether `path` is `base` or below it (whole segments only: `/acme`
/// is not under `/ac`).
fn under(path: &str, base: &str) -> bool {
    path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The project files `paths` name: a file itself, a folder every `.json`
/// and `.toml` file in it (in name order). A folder without any is an
/// error, as is a path that is neither.
pub fn project_files(paths: &[impl AsRef<Path>]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if !path.is_dir() {
            out.push(path.to_owned());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|e| Error::config(format!("cannot read the folder {}: {e}", path.display())))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("json") || x.eq_ignore_ascii_case("toml")))
            .collect();
        if found.is_empty() {
            return Err(Error::config(format!("the folder {} has no project file (.json or .toml)", path.display())));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_under_a_base_by_whole_segments() {
        assert!(under("/acme/oauth2/v1/token", "/acme") && under("/acme", "/acme") && under("/idp/acme/x", "/idp/acme"));
        assert!(!under("/acmeco/oauth2/v1/token", "/acme") && !under("/oauth2/v1/token", "/acme"));
    }
}
