//! The token endpoint: the code exchange with client authentication,
//! refresh, the token response, and revocation.

use super::*;

/// A token endpoint answer; `claims` are the validated id_token's (merged
/// with userinfo when the OP has no JWKS).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "TokenResponse"))]
pub struct TokenSet {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
    /// The claims; Swift and Kotlin see them as JSON text, `claimsJson`.
    #[cfg_attr(feature = "uniffi", uniffi(name = "claims_json"))]
    pub claims: Option<Map<String, Value>>,
}

impl TokenSet {
    /// The token response's own field names (RFC 6749 §5.1), plus `claims`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"access_token": self.access_token, "token_type": self.token_type});
        for (k, val) in [("refresh_token", &self.refresh_token), ("id_token", &self.id_token), ("scope", &self.scope)] {
            if let Some(x) = val {
                v[k] = x.clone().into();
            }
        }
        if let Some(e) = self.expires_in {
            v["expires_in"] = e.into();
        }
        if let Some(c) = &self.claims {
            v["claims"] = Value::Object(c.clone());
        }
        v
    }

    /// The inverse of [`TokenSet::to_json`]: a token response by its wire
    /// names, checked as the token endpoint's answer would be.
    pub fn from_json(v: &Map<String, Value>) -> Result<TokenSet> {
        let claims = match v.get("claims") {
            None | Some(Value::Null) => None,
            Some(Value::Object(c)) => Some(c.clone()),
            Some(_) => return Err(Error::invalid_request("claims must be an object")),
        };
        let mut tokens = OidcClient::token_response_fields(200, v)?;
        tokens.claims = claims;
        Ok(tokens)
    }
}

impl OidcClient {
    /// Parses a token endpoint answer (RFC 6749 §5.1/§5.2) without IO.
    pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenSet> {
        let doc = crate::json::parse_object(body).map_err(|_| {
            Error::network(format!("the token endpoint answered HTTP {status} without a JSON object"))
        })?;
        OidcClient::token_response_fields(status, &doc)
    }
    /// The checks and fields of a parsed token response.
    fn token_response_fields(status: u16, doc: &Map<String, Value>) -> Result<TokenSet> {
        if let Some(error) = str_claim(doc, "error") {
            return Err(Error::new(oauth_error_code(error), describe(error, str_claim(doc, "error_description"))));
        }
        if !(200..300).contains(&status) {
            return Err(Error::network(format!("the token endpoint answered HTTP {status}")));
        }
        let access_token = str_claim(doc, "access_token")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid_token("the token response has no access_token"))?
            .to_owned();
        let token_type = str_claim(doc, "token_type").unwrap_or_default().to_owned();
        if !token_type.eq_ignore_ascii_case("bearer") && !token_type.eq_ignore_ascii_case("dpop") {
            return Err(Error::invalid_token(format!("unsupported token_type {token_type:?}")));
        }
        let expires_in = match doc.get("expires_in") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            Some(_) => None,
        };
        Ok(TokenSet {
            access_token,
            token_type,
            expires_in,
            refresh_token: str_claim(doc, "refresh_token").map(str::to_owned),
            id_token: str_claim(doc, "id_token").map(str::to_owned),
            scope: str_claim(doc, "scope").map(str::to_owned),
            claims: None,
        })
    }
    /// The client-side work of one callback, network excluded: state check,
    /// token-response parse and id_token validation against `keys`.
    pub fn complete_with(&self, keys: &KeySet, callback_url: &str, expected_state: &str, nonce: &str, token_status: u16, token_body: &[u8]) -> Result<TokenSet> {
        self.parse_callback(callback_url, expected_state)?;
        let mut tokens = OidcClient::parse_token_response(token_status, token_body)?;
        let id_token = tokens.id_token.as_deref().ok_or_else(|| Error::invalid_token("the token response has no id_token"))?;
        tokens.claims = Some(self.validate_id_token_with(keys, id_token, Some(nonce), Some(&tokens.access_token))?);
        Ok(tokens)
    }
    async fn post_token(&self, endpoints: &Endpoints, mut form: Vec<(String, String)>) -> Result<TokenSet> {
        let mut request = self.http.post(&endpoints.token).header(reqwest::header::ACCEPT, "application/json");
        match &self.options.auth {
            ClientAuth::None => form.push(("client_id".into(), self.options.client_id.clone())),
            ClientAuth::ClientSecretBasic(secret) => {
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let raw = format!("{}:{}", enc(&self.options.client_id), enc(secret));
                request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {}", crate::b64::encode_std(raw)));
            }
            ClientAuth::ClientSecretPost(secret) => {
                form.push(("client_id".into(), self.options.client_id.clone()));
                form.push(("client_secret".into(), secret.clone()));
            }
            ClientAuth::PrivateKeyJwt(key) => {
                form.push(("client_id".into(), self.options.client_id.clone()));
                form.push(("client_assertion_type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()));
                form.push(("client_assertion".into(), self.client_assertion(key, endpoints)?));
            }
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
        let timeout = self.options.timeout;
        let response = request
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(net("the token request", timeout))?;
        let status = response.status().as_u16();
        let bytes = read_capped(response, timeout, "the token response").await?;
        OidcClient::parse_token_response(status, &bytes)
    }
    /// An RFC 7523 assertion: iss = sub = client id, aud = [issuer, token
    /// endpoint], a unique jti, exp 5 minutes ahead.
    pub fn client_assertion(&self, key: &Key, endpoints: &Endpoints) -> Result<String> {
        let now = now_secs();
        let aud = match &endpoints.issuer {
            Some(i) => json!([i, endpoints.token]),
            None => json!(endpoints.token),
        };
        let claims = json!({
            "iss": self.options.client_id, "sub": self.options.client_id, "aud": aud,
            "jti": random_id("")?, "iat": now, "exp": now + 300,
        });
        match claims {
            Value::Object(m) => jose::sign(&m, key, None),
            _ => Err(Error::internal("assertion claims are an object")),
        }
    }
    /// Claims for a token set: the id_token's (validated), with userinfo
    /// merged over them when the OP has a userinfo endpoint and profile
    /// claims were asked for (OIDC Core §5.4: with an access token, an OP
    /// may put them in userinfo only); without a JWKS, userinfo alone.
    async fn claims_for(&self, endpoints: &Endpoints, tokens: &TokenSet, nonce: Option<&str>) -> Result<Option<Map<String, Value>>> {
        let has_jwks = self.jwks.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        let mut claims = match (&tokens.id_token, has_jwks) {
            (Some(id), true) => Some(self.validate_id_token(id, nonce, Some(&tokens.access_token)).await?),
            _ => None,
        };
        let granted = tokens.scope.as_deref().map_or_else(
            || self.options.scopes.clone(),
            |s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect(),
        );
        let profile_asked = granted.iter().any(|s| matches!(s.as_str(), "email" | "profile" | "phone" | "address"));
        if endpoints.userinfo.is_some() && !tokens.access_token.is_empty() && (claims.is_none() || !has_jwks || profile_asked) {
            let info = self.userinfo(&tokens.access_token).await?;
            if let Some(c) = &claims {
                if str_claim(c, "sub") != str_claim(&info, "sub") {
                    return Err(Error::invalid_token("userinfo sub differs from the id_token's"));
                }
            }
            // The id_token's protocol claims stay as validated.
            const PROTOCOL: [&str; 9] = ["iss", "aud", "exp", "iat", "nonce", "azp", "at_hash", "auth_time", "sid"];
            let mut merged = claims.unwrap_or_default();
            let keep_protocol = !merged.is_empty();
            merged.extend(info.into_iter().filter(|(k, _)| !keep_protocol || !PROTOCOL.contains(&k.as_str())));
            claims = Some(merged);
        }
        Ok(claims)
    }
    /// Exchanges an authorization code (with its PKCE verifier) for tokens
    /// and validates the id_token (nonce, at_hash).
    pub async fn exchange_code(&self, code: &str, code_verifier: Option<&str>, nonce: Option<&str>, redirect_uri: Option<&str>, extra: &[(String, String)]) -> Result<TokenSet> {
        let endpoints = self.fresh_endpoints().await;
        let mut form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.unwrap_or(&self.options.redirect_uri).to_owned()),
        ];
        if let Some(v) = code_verifier {
            form.push(("code_verifier".into(), v.to_owned()));
        }
        form.extend(extra.iter().cloned());
        let mut tokens = self.post_token(&endpoints, form).await?;
        if tokens.id_token.is_none() && self.options.scopes.iter().any(|s| s == "openid") && endpoints.userinfo.is_none() {
            return Err(Error::invalid_token("the token response has no id_token (scope openid was requested)"));
        }
        tokens.claims = self.claims_for(&endpoints, &tokens, nonce).await?;
        Ok(tokens)
    }
    /// Parses and checks a callback, then exchanges the code or validates
    /// the implicit id_token.
    pub async fn handle_callback(&self, input: &str, request: &AuthorizationRequest) -> Result<TokenSet> {
        let callback = self.parse_callback(input, &request.state)?;
        match (&callback.code, &callback.id_token) {
            (Some(code), _) => {
                self.exchange_code(code, request.code_verifier.as_deref(), Some(&request.nonce), Some(&request.redirect_uri), &[]).await
            }
            (None, Some(id_token)) => {
                let claims = self.validate_id_token(id_token, Some(&request.nonce), None).await?;
                Ok(TokenSet {
                    access_token: String::new(),
                    token_type: "none".into(),
                    expires_in: None,
                    refresh_token: None,
                    id_token: Some(id_token.clone()),
                    scope: None,
                    claims: Some(claims),
                })
            }
            (None, None) => Err(Error::invalid_request("the callback has neither code nor id_token")),
        }
    }
    /// Refreshes; a new id_token is validated (without nonce).
    pub async fn refresh(&self, refresh_token: &str, scope: Option<&[String]>) -> Result<TokenSet> {
        let endpoints = self.fresh_endpoints().await;
        let mut form = vec![("grant_type".to_owned(), "refresh_token".to_owned()), ("refresh_token".to_owned(), refresh_token.to_owned())];
        if let Some(s) = scope {
            form.push(("scope".into(), s.join(" ")));
        }
        let mut tokens = self.post_token(&endpoints, form).await?;
        if let Some(id) = &tokens.id_token {
            if self.jwks.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                tokens.claims = Some(self.validate_id_token(id, None, Some(&tokens.access_token)).await?);
            }
        }
        Ok(tokens)
    }
    /// Revokes a token (RFC 7009).
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> Result<()> {
        let endpoints = self.fresh_endpoints().await;
        let url = endpoints.revocation.clone().ok_or_else(|| Error::config("this provider has no revocation endpoint"))?;
        let mut form = vec![("token".to_owned(), token.to_owned())];
        if let Some(h) = hint {
            form.push(("token_type_hint".into(), h.to_owned()));
        }
        let revocation = Endpoints { token: url, ..endpoints };
        match self.post_token(&revocation, form).await {
            Ok(_) => Ok(()),
            // RFC 7009 answers 200 with an empty body.
            Err(e) if e.code == ErrorCode::Network && e.message.contains("HTTP 200") => Ok(()),
            Err(e) => Err(e),
        }
    }
}
