//! Config enums by the names their TOML takes (`method = "transnetv2"`, `device = "cuda"`), for
//! command-line flags and `FromStr`: one serde route, so a flag accepts exactly the names a
//! config file does and its error lists them.

use serde::de::DeserializeOwned;

/// The `T` named `name`, as serde reads it from a config file.
///
/// # Errors
/// When `name` is none of `T`'s names (the message lists them).
pub fn from_name<T: DeserializeOwned>(name: &str) -> Result<T, String> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name)).map_err(|e| e.to_string())
}
