//! Reading environment variables, the one way every configuration does:
//! a blank value is an absent one, and an invalid value is an error naming
//! the variable and what it accepts. Nothing falls back silently.

use std::ops::RangeInclusive;

use super::ConfigError;
use crate::contact::EmailAddress;
use crate::render::Locale;

/// Variables through a lookup (the process environment, or a map in tests).
pub struct Env<F> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(get: F) -> Self {
        Self { get }
    }

    /// The value when set and not blank, as given.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value, trimmed; an error naming it when unset or blank.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name)
            .map(|v| v.trim().to_owned())
            .ok_or(ConfigError::Missing(name))
    }

    /// A whole number in `range`, `default` when unset.
    pub fn number(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        name,
                        format!(
                            "`{}` is not a whole number from {} to {}",
                            v.trim(),
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }

    /// A whole number in `range`, `None` when unset.
    pub fn optional_number(
        &self,
        name: &'static str,
        range: RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        match self.optional(name) {
            None => Ok(None),
            Some(_) => self.number(name, *range.start(), range).map(Some),
        }
    }

    /// An email address, `None` when unset.
    pub fn email(&self, name: &'static str) -> Result<Option<EmailAddress>, ConfigError> {
        self.optional(name)
            .map(|v| {
                EmailAddress::parse(v.trim())
                    .ok_or_else(|| ConfigError::invalid(name, "not an email address"))
            })
            .transpose()
    }

    /// A locale we write (`en` when unset).
    pub fn locale(&self, name: &'static str) -> Result<Locale, ConfigError> {
        match self.optional(name) {
            None => Ok(Locale::En),
            Some(tag) => Locale::parse(tag.trim()).ok_or_else(|| {
                ConfigError::invalid(
                    name,
                    format!("`{}` is not one of en, zh-Hans, zh-Hant", tag.trim()),
                )
            }),
        }
    }

    /// `true` or `false` (`false` when unset).
    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref().map(str::trim) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ConfigError::invalid(
                name,
                format!("`{other}` is not true or false"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn an_invalid_value_names_the_variable_and_what_it_accepts() {
        let e = env(&[("N", "0"), ("L", "fr"), ("F", "yes"), ("M", "x@")]);
        let err = e.number("N", 3, 1..=10).unwrap_err().to_string();
        assert!(err.contains("N") && err.contains("from 1 to 10"), "{err}");
        let err = e.locale("L").unwrap_err().to_string();
        assert!(err.contains("`fr`") && err.contains("zh-Hans"), "{err}");
        assert!(e
            .flag("F")
            .unwrap_err()
            .to_string()
            .contains("true or false"));
        assert!(e.email("M").unwrap_err().to_string().contains("M"));
    }

    #[test]
    fn blank_is_absent_and_absent_takes_the_default() {
        let e = env(&[("BLANK", "  ")]);
        assert_eq!(e.number("BLANK", 7, 1..=10), Ok(7));
        assert_eq!(e.optional_number("UNSET", 0..=24), Ok(None));
        assert_eq!(e.locale("UNSET"), Ok(Locale::En));
        assert_eq!(e.flag("UNSET"), Ok(false));
        assert_eq!(e.required("BLANK"), Err(ConfigError::Missing("BLANK")));
    }
}
