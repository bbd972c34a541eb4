//! Claims about the user: id_token validation (signature, issuer,
//! audience, nonce, at_hash) and userinfo.

use super::*;

impl OidcClient {
    pub(super) fn validation(&self, issuer: Option<&str>) -> Validation {
        let mut v = Validation::new(&self.options.id_token_algorithms);
        v.issuer = issuer.map(str::to_owned);
        v.audience = vec![self.options.client_id.clone()];
        v.leeway = self.options.leeway;
        v.required_claims = vec!["iss".into(), "sub".into(), "aud".into(), "exp".into(), "iat".into()];
        v
    }
    /// Checks a verified id_token's claims beyond signature, iss, aud and
    /// times: azp, nonce and at_hash.
    fn check_id_token_claims(&self, claims: &Map<String, Value>, alg: Option<Algorithm>, nonce: Option<&str>, access_token: Option<&str>) -> Result<()> {
        let multi_aud = matches!(claims.get("aud"), Some(Value::Array(a)) if a.len() > 1);
        match str_claim(claims, "azp") {
            Some(azp) if azp != self.options.client_id => {
                return Err(Error::new(ErrorCode::InvalidAudience, "id_token azp is another client"))
            }
            None if multi_aud => return Err(Error::new(ErrorCode::InvalidAudience, "id_token has several audiences and no azp")),
            _ => {}
        }
        if let Some(expected) = nonce {
            match str_claim(claims, "nonce") {
                Some(n) if crate::pkce::constant_time_eq(n.as_bytes(), expected.as_bytes()) => {}
                Some(_) => return Err(Error::invalid_token("id_token nonce mismatch (replayed or foreign token)")),
                None => return Err(Error::invalid_token("id_token has no nonce but one was sent")),
            }
        }
        if let (Some(at_hash), Some(at), Some(alg)) = (str_claim(claims, "at_hash"), access_token, alg) {
            if at_hash != alg.half_hash(at) {
                return Err(Error::invalid_token("id_token at_hash does not match the access token"));
            }
        }
        Ok(())
    }
    /// Validates an id_token against `keys` (signature, iss, aud, azp,
    /// exp/iat, nonce, at_hash when present). Synchronous: no IO.
    pub fn validate_id_token_with(&self, keys: &KeySet, id_token: &str, nonce: Option<&str>, access_token: Option<&str>) -> Result<Map<String, Value>> {
        let issuer = self.endpoints().issuer;
        let token = jose::verify(id_token, keys, &self.validation(issuer.as_deref()))?;
        let alg = token.header.get("alg").and_then(Value::as_str).and_then(|a| Algorithm::parse(a).ok());
        self.check_id_token_claims(&token.claims, alg, nonce, access_token)?;
        Ok(token.claims)
    }
    /// Validates an id_token with the OP's JWKS (cached; an unknown `kid`
    /// refetches once).
    pub async fn validate_id_token(&self, id_token: &str, nonce: Option<&str>, access_token: Option<&str>) -> Result<Map<String, Value>> {
        let endpoints = self.fresh_endpoints().await;
        let jwks = self.jwks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let jwks = jwks.ok_or_else(|| Error::config("this provider has no jwks_uri: id_tokens cannot be verified (claims come from userinfo)"))?;
        let token = jwks.verify(id_token, &self.validation(endpoints.issuer.as_deref())).await?;
        let alg = token.header.get("alg").and_then(Value::as_str).and_then(|a| Algorithm::parse(a).ok());
        self.check_id_token_claims(&token.claims, alg, nonce, access_token)?;
        Ok(token.claims)
    }
    /// Verifies a stored id_token: signature through the JWKS cache, iss,
    /// aud and azp. Its expiry is not checked (a session outlives the
    /// id_token it started with); nonce and at_hash were checked at sign-in.
    pub async fn verify_id_token_signature(&self, id_token: &str) -> Result<Map<String, Value>> {
        let endpoints = self.fresh_endpoints().await;
        let jwks = self.jwks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let jwks = jwks.ok_or_else(|| Error::config("this provider has no jwks_uri: id_tokens cannot be verified"))?;
        // The clock is set to the token's own iat, so exp/nbf pass while the
        // signature, issuer and audience are still checked.
        let iat = id_token
            .split('.')
            .nth(1)
            .and_then(crate::b64::decode)
            .and_then(|p| crate::json::parse_object(&p).ok())
            .and_then(|c| c.get("iat").and_then(Value::as_u64))
            .ok_or_else(|| Error::invalid_token("the id_token has no iat"))?;
        let mut validation = self.validation(endpoints.issuer.as_deref());
        validation.now = Some(iat);
        let token = jwks.verify(id_token, &validation).await?;
        self.check_id_token_claims(&token.claims, None, None, None)?;
        Ok(token.claims)
    }
    /// The userinfo claims for `access_token` (JSON responses).
    pub async fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>> {
        let endpoints = self.fresh_endpoints().await;
        let url = endpoints.userinfo.ok_or_else(|| Error::config("this provider has no userinfo endpoint"))?;
        let timeout = self.options.timeout;
        let response = self
            .http
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(net("the userinfo request", timeout))?;
        let status = response.status().as_u16();
        let challenge = response.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = read_capped(response, timeout, "the userinfo response").await?;
        if status == 401 || status == 403 {
            let error = challenge
                .as_deref()
                .and_then(|c| c.split("error=\"").nth(1))
                .and_then(|r| r.split('"').next())
                .unwrap_or("invalid_token");
            return Err(Error::new(oauth_error_code(error), format!("userinfo refused the token ({error})")));
        }
        if !(200..300).contains(&status) {
            return Err(Error::network(format!("userinfo answered HTTP {status}")));
        }
        let info = crate::json::parse_object(&bytes).map_err(|_| Error::invalid_token("userinfo did not answer a JSON object"))?;
        if str_claim(&info, "sub").is_none_or(str::is_empty) {
            return Err(Error::invalid_token("userinfo has no sub"));
        }
        Ok(info)
    }
}
