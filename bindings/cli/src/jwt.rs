//! `idflow jwt`: sign, verify (with a key, a PEM or a JWKS) and decode.

use crate::keys::{load_key, load_keys, Keys};
use crate::{json_object, pretty, read_input};
use clap::{Args, Subcommand};
use idflow::jose::{self, Validation, ValidationOptions};
use idflow::Error;

#[derive(Subcommand)]
pub(crate) enum JwtCommand {
    /// Sign claims (JSON) into a compact JWT.
    Sign {
        /// Private key file (JWK JSON or PEM).
        #[arg(long)]
        key: String,
        /// Claims as JSON text, @FILE, or - for stdin.
        #[arg(long)]
        claims: String,
        /// Extra header members as JSON text (may set "alg", "typ", "kid").
        #[arg(long)]
        header: Option<String>,
    },
    /// Verify a JWT and print its claims.
    Verify(VerifyArgs),
    /// Decode a JWT WITHOUT verifying it (debugging only).
    Decode {
        /// The token, or - for stdin.
        token: String,
    },
}
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The token, or - for stdin.
    #[arg(allow_hyphen_values = true)]
    token: String,
    /// Key file (JWK, JWKS or PEM).
    #[arg(long)]
    key: String,
    /// Allowed algorithm; repeat for several. Required.
    #[arg(long = "alg", required = true)]
    algorithms: Vec<String>,
    #[arg(long)]
    issuer: Option<String>,
    /// Accepted audience; repeat for several.
    #[arg(long = "audience")]
    audience: Vec<String>,
    /// Clock leeway in seconds (default 60, at most 300).
    #[arg(long, default_value_t = 60)]
    leeway: u64,
    /// Required claim; repeat for several (default: exp).
    #[arg(long = "require")]
    require: Vec<String>,
    /// Pin the clock (seconds since the epoch).
    #[arg(long)]
    now: Option<u64>,
}

pub(crate) fn run(command: JwtCommand) -> Result<String, Error> {
    match command {
        JwtCommand::Sign { key, claims, header } => {
            let key = load_key(&key)?;
            let claims = json_object(&read_input(&claims)?, "--claims")?;
            let header = header.map(|h| json_object(&h, "--header")).transpose()?;
            jose::sign(&claims, &key, header.as_ref())
        }
        JwtCommand::Verify(args) => {
            let token = read_input(&args.token)?;
            let v = Validation::from_options(ValidationOptions {
                algorithms: args.algorithms,
                issuer: args.issuer,
                audience: args.audience,
                leeway: Some(args.leeway),
                required_claims: (!args.require.is_empty()).then_some(args.require),
                max_token_size: None,
                now: args.now,
            })?;
            let verified = match load_keys(&args.key)? {
                Keys::One(k) => jose::verify(&token, &k, &v)?,
                Keys::Set(s) => jose::verify(&token, &s, &v)?,
            };
            Ok(pretty(&verified.claims))
        }
        JwtCommand::Decode { token } => {
            let t = jose::decode_unverified(&read_input(&token)?)?;
            Ok(pretty(&serde_json::json!({"header": t.header, "claims": t.claims, "verified": false})))
        }
    }
}
