//! `${ENV_VAR}` references in configuration values: secrets stay out of
//! project files, client settings and connector definitions. One rule for
//! every place that accepts them (docs/configuration.md lists those).

/// Resolves `${ENV_VAR}` references (whole value or embedded) so secrets
/// stay out of project files. A missing variable is a `config` error naming it.
pub fn resolve_env(text: &str) -> crate::error::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| crate::error::Error::config("\"${\" without a closing \"}\" in a secret reference"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(crate::error::Error::config(format!("{name:?} is not an environment variable name")));
        }
        let value = std::env::var(name)
            .map_err(|_| crate::error::Error::config(format!("environment variable {name} is not set")))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
