//! The provider's route table: which path is which endpoint, its methods
//! and whether pages on other origins may call it (CORS).

use super::http::HttpResponse;

/// The provider's endpoints: the one table that dispatch, `405`'s `Allow`
/// header and CORS read (docs/ARCHITECTURE.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Favicon,
    Health,
    Discovery,
    Jwks,
    Authorize,
    AuthorizeComplete,
    Token,
    Userinfo,
    Revoke,
    Logout,
    FlowStart,
    FlowNext,
    FlowLink,
    OAuthAuthorize,
    OAuthExchange,
    OAuthCallback,
    LoginPage,
    /// `/v1/mgmt/...` (management.rs routes within).
    Management,
}

impl Route {
    /// The endpoint at `path` (below the base URL's path, and below the
    /// issuer's when `mounted`) of project `pid`.
    pub(super) fn at(path: &str, pid: &str, mounted: bool) -> Option<Route> {
        Some(match path {
            "/favicon.ico" => Route::Favicon,
            "/health" => Route::Health,
            "/oauth2/v1/authorize" => Route::Authorize,
            "/oauth2/v1/authorize/complete" => Route::AuthorizeComplete,
            "/oauth2/v1/token" => Route::Token,
            "/oauth2/v1/userinfo" => Route::Userinfo,
            "/oauth2/v1/revoke" => Route::Revoke,
            "/oauth2/v1/logout" => Route::Logout,
            "/v1/flow/start" => Route::FlowStart,
            "/v1/flow/next" => Route::FlowNext,
            "/v1/flow/link" => Route::FlowLink,
            "/v1/auth/oauth/authorize" => Route::OAuthAuthorize,
            "/v1/auth/oauth/exchange" => Route::OAuthExchange,
            "/v1/oauth/callback" => Route::OAuthCallback,
            _ if path.strip_prefix("/login/") == Some(pid) => Route::LoginPage,
            _ if path.starts_with("/v1/mgmt/") => Route::Management,
            // Discovery is under the issuer's path, where a mounted
            // provider's every endpoint already is.
            _ => match if mounted { Some(path) } else { path.strip_prefix('/').and_then(|p| p.strip_prefix(pid)) } {
                Some("/.well-known/openid-configuration") => Route::Discovery,
                Some("/.well-known/jwks.json") => Route::Jwks,
                _ => return None,
            },
        })
    }

    pub(super) fn methods(self) -> &'static [&'static str] {
        match self {
            Route::Token | Route::Revoke | Route::FlowStart | Route::FlowNext | Route::FlowLink | Route::OAuthAuthorize | Route::OAuthExchange => &["POST"],
            Route::Authorize | Route::Userinfo | Route::Logout | Route::OAuthCallback => &["GET", "POST"],
            Route::Favicon | Route::Health | Route::Discovery | Route::Jwks | Route::AuthorizeComplete | Route::LoginPage => &["GET"],
            Route::Management => &["GET", "POST", "PUT", "PATCH", "DELETE"],
        }
    }

    /// The route's name in metrics.
    pub(super) fn name(self) -> &'static str {
        match self {
            Route::Favicon => "favicon",
            Route::Health => "health",
            Route::Discovery => "discovery",
            Route::Jwks => "jwks",
            Route::Authorize => "authorize",
            Route::AuthorizeComplete => "authorize_complete",
            Route::Token => "token",
            Route::Userinfo => "userinfo",
            Route::Revoke => "revoke",
            Route::Logout => "logout",
            Route::FlowStart => "flow_start",
            Route::FlowNext => "flow_next",
            Route::FlowLink => "flow_link",
            Route::OAuthAuthorize => "oauth_authorize",
            Route::OAuthExchange => "oauth_exchange",
            Route::OAuthCallback => "oauth_callback",
            Route::LoginPage => "login_page",
            Route::Management => "management",
        }
    }

    /// The endpoints a web page on another origin calls (with CORS).
    pub(super) fn cors(self) -> bool {
        matches!(self, Route::Token | Route::Userinfo | Route::Revoke | Route::Discovery | Route::Jwks)
    }
}

pub(super) fn with_cors(r: HttpResponse) -> HttpResponse {
    r.with_header("Access-Control-Allow-Origin", "*")
        .with_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        .with_header("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
        .with_header("Access-Control-Expose-Headers", "WWW-Authenticate")
}

