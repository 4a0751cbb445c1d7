//! The dashboard's pages, rendered by the server (maud checks them at compile time):
//! each is the frame (header, navigation, status banner) and the page's skeleton, its
//! headings, forms and tables, which the page's module fills from the public API.
//! Nothing user-specific is rendered here: the access token lives in the browser's
//! memory only, so the server cannot know who asks for a page.

use maud::{DOCTYPE, Markup, html};

use super::assets;

/// Which page, and what of it the URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    SignIn,
    Applications,
    NewApplication,
    Application { name: String, tab: AppTab },
    EditApplication { name: String },
    Admin { tab: AdminTab },
}

/// The tabs of an application's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppTab {
    Overview,
    Metrics,
    Logs,
    Deployments,
    Settings,
}

impl AppTab {
    pub const ALL: [Self; 5] = [
        Self::Overview,
        Self::Metrics,
        Self::Logs,
        Self::Deployments,
        Self::Settings,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Deployments => "deployments",
            Self::Settings => "settings",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Overview => "Overview",
            Self::Metrics => "Metrics",
            Self::Logs => "Logs",
            Self::Deployments => "Deployments",
            Self::Settings => "Settings",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The tabs of the admin page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminTab {
    Users,
    Audit,
    System,
}

impl AdminTab {
    pub const ALL: [Self; 3] = [Self::Users, Self::Audit, Self::System];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Audit => "audit",
            Self::System => "system",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Users => "Users",
            Self::Audit => "Audit log",
            Self::System => "System",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// What a new application starts from in the editor.
pub const TEMPLATE: &str = "apiVersion: longin.io/v1
kind: Application
metadata:
  name: my-app
  labels:
    team: web
spec:
  image: nginx:1.27
  containerPort: 80
  replicas: 1
  resources:
    memory: 128Mi
    cpu: \"0.5\"
  healthCheck:
    http:
      path: /
";

impl Page {
    fn id(&self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::Applications => "applications",
            Self::NewApplication | Self::EditApplication { .. } => "editor",
            Self::Application { .. } => "application",
            Self::Admin { .. } => "admin",
        }
    }

    fn title(&self) -> String {
        match self {
            Self::SignIn => "Sign in".to_owned(),
            Self::Applications => "Applications".to_owned(),
            Self::NewApplication => "New application".to_owned(),
            Self::Application { name, tab } => format!("{name} · {}", tab.title()),
            Self::EditApplication { name } => format!("Edit {name}"),
            Self::Admin { tab } => format!("Admin · {}", tab.title()),
        }
    }

    /// The whole page.
    #[must_use]
    pub fn render(&self) -> Markup {
        let asset = |file: &str| format!("/assets/{}/{file}", assets::version());
        let (app, tab) = match self {
            Self::Application { name, tab } => (Some(name.as_str()), Some(tab.as_str())),
            Self::EditApplication { name } => (Some(name.as_str()), None),
            Self::Admin { tab } => (None, Some(tab.as_str())),
            _ => (None, None),
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    title { (self.title()) " · Longin" }
                    link rel="icon" href=(asset("icon.svg")) type="image/svg+xml";
                    link rel="stylesheet" href=(asset("style.css"));
                    link rel="stylesheet" href=(asset("views.css"));
                    script type="module" src=(asset("main.js")) {}
                }
                body data-page=(self.id()) data-app=[app] data-tab=[tab] {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/" { "Longin" }
                        nav #nav aria-label="Main" hidden {
                            a href="/" { "Applications" }
                            a href="/apps/new" { "New application" }
                            a #nav-admin href="/admin" hidden { "Admin" }
                        }
                        span #who {}
                        button #sign-out type="button" hidden { "Sign out" }
                    }
                    div #banner role="status" aria-live="polite" hidden {}
                    main #main tabindex="-1" {
                        (self.body())
                    }
                    noscript { p { "The dashboard needs JavaScript. The " code { "longin" } " CLI does everything it does." } }
                }
            }
        }
    }

    fn body(&self) -> Markup {
        match self {
            Self::SignIn => sign_in(),
            Self::Applications => applications(),
            Self::NewApplication => editor(None),
            Self::EditApplication { name } => editor(Some(name)),
            Self::Application { name, tab } => application(name, *tab),
            Self::Admin { tab } => admin(*tab),
        }
    }
}

fn sign_in() -> Markup {
    html! {
        section.card.narrow {
            h1 #sign-in-title { "Sign in" }
            p #first-admin hidden { "No account exists yet: the first one you register becomes the administrator." }
            form #sign-in-form autocomplete="on" {
                label for="username" { "Username" }
                input #username name="username" autocomplete="username" required;
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            form #register-form hidden {
                label for="reg-username" { "Username" }
                input #reg-username name="username" autocomplete="username" required;
                label for="reg-email" { "Email" }
                input #reg-email name="email" type="email" autocomplete="email" required;
                label for="reg-password" { "Password" }
                input #reg-password name="password" type="password" autocomplete="new-password" required;
                button type="submit" { "Register" }
            }
            p { button #toggle-register.link type="button" hidden { "Create an account" } }
            p #sign-in-error.error role="alert" hidden {}
        }
    }
}

fn applications() -> Markup {
    html! {
        div.heading {
            h1 { "Applications" }
            a.button href="/apps/new" { "New application" }
        }
        form #filter.filters role="search" {
            label for="filter-name" { "Name" }
            input #filter-name name="name" type="search" placeholder="web";
            label for="filter-label" { "Label" }
            input #filter-label name="label" type="search" placeholder="team=web";
            label for="filter-phase" { "Phase" }
            select #filter-phase name="phase" {
                option value="" { "Any" }
                @for phase in ["Pending", "Deploying", "Running", "Degraded", "Failed", "Stopped", "Terminating"] {
                    option value=(phase) { (phase) }
                }
            }
        }
        div.table-wrap {
            table #apps {
                caption.visually-hidden { "Your applications" }
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th.owner-col scope="col" hidden { "Owner" }
                        th scope="col" { "Phase" }
                        th scope="col" { "Ready" }
                        th scope="col" { "Ports" }
                        th scope="col" { "Image" }
                        th scope="col" { "Age" }
                        th scope="col" { "CPU" }
                        th scope="col" { "Memory" }
                    }
                }
                tbody #apps-body {}
            }
        }
        p #apps-empty hidden { "No applications yet. " a href="/apps/new" { "Create one" } "." }
    }
}

fn editor(name: Option<&str>) -> Markup {
    html! {
        div.heading {
            h1 { @if let Some(name) = name { "Edit " (name) } @else { "New application" } }
        }
        form #editor-form.editor {
            label for="yaml" { "The application, as YAML (" code { "longin apply -f" } " takes the same)" }
            div.code {
                pre #gutter aria-hidden="true" {}
                textarea #yaml name="yaml" spellcheck="false" autocapitalize="off" rows="24" aria-describedby="editor-errors" {
                    @if name.is_none() { (TEMPLATE) }
                }
            }
            div.actions {
                button #apply type="submit" { "Apply" }
                @if let Some(name) = name { a.button.secondary href={ "/apps/" (name) } { "Cancel" } }
            }
        }
        p #editor-result role="status" hidden {}
        ul #editor-errors.error role="alert" hidden {}
    }
}

fn application(name: &str, tab: AppTab) -> Markup {
    html! {
        div.heading {
            h1 #app-name { (name) }
            span #app-phase.badge {}
            a.button.secondary href={ "/apps/" (name) "/edit" } { "Edit YAML" }
        }
        nav.tabs aria-label="Application" {
            @for t in AppTab::ALL {
                a href={ "/apps/" (name) "/" (t.as_str()) } data-tab=(t.as_str())
                    aria-current=[(t == tab).then_some("page")] { (t.title()) }
            }
        }
        section #panel aria-labelledby="app-name" aria-busy="true" {
            p.loading { "Loading…" }
        }
    }
}

fn admin(tab: AdminTab) -> Markup {
    html! {
        div.heading { h1 #admin-title { "Admin" } }
        nav.tabs aria-label="Admin" {
            @for t in AdminTab::ALL {
                a href={ "/admin/" (t.as_str()) } data-tab=(t.as_str())
                    aria-current=[(t == tab).then_some("page")] { (t.title()) }
            }
        }
        section #panel aria-labelledby="admin-title" aria-busy="true" {
            p.loading { "Loading…" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_pages_are_escaped() {
        let page = Page::Application {
            name: "<script>x</script>".to_owned(),
            tab: AppTab::Logs,
        }
        .render()
        .into_string();
        assert!(!page.contains("<script>x"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_current_tab_is_marked_and_assets_are_versioned() {
        let page = Page::Admin {
            tab: AdminTab::Audit,
        }
        .render()
        .into_string();
        assert!(
            page.contains(r#"href="/admin/audit" data-tab="audit" aria-current="page""#),
            "{page}"
        );
        assert!(page.contains(&format!("/assets/{}/main.js", assets::version())));
        assert!(
            !page.contains("style="),
            "no inline style: the CSP forbids it"
        );
    }

    #[test]
    fn tabs_parse_back() {
        for t in AppTab::ALL {
            assert_eq!(AppTab::parse(t.as_str()), Some(t));
        }
        assert_eq!(AdminTab::parse("nope"), None);
    }
}
