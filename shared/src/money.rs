//! Money: an exact decimal amount in an ISO 4217 currency.
//!
//! Amounts are `rust_decimal::Decimal`, never floats. The currency's minor
//! units (USD 2, JPY 0, KWD 3) come from the `iso_currency` crate and bound
//! the scale an amount may have.

use std::fmt;
use std::str::FromStr;

use iso_currency::Currency as IsoCurrency;
use rust_decimal::Decimal;

/// Largest amount accepted on an invoice: anything above is a data error.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0); // 1_000_000_000_000

/// An ISO 4217 currency that has minor units (funds and metals such as XAU are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(IsoCurrency);

impl Currency {
    /// Parses an upper-case ISO 4217 code such as `USD`.
    pub fn parse(code: &str) -> Option<Self> {
        let iso = IsoCurrency::from_code(code)?;
        iso.exponent()?;
        Some(Self(iso))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Number of decimal places of the minor unit (USD 2, JPY 0, KWD 3).
    pub fn exponent(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl Ord for Currency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(other.code())
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why an amount string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("not a decimal number")]
    NotDecimal,
    #[error("negative")]
    Negative,
    #[error("more decimal places than the currency has")]
    TooPrecise,
    #[error("larger than the maximum accepted amount")]
    TooLarge,
}

/// Parses a decimal string such as `"1250.50"` for `currency`: plain digits with
/// an optional sign and point, no exponent, no thousands separators.
pub fn parse_amount(text: &str, currency: Currency) -> Result<Decimal, AmountError> {
    let plain = !text.is_empty()
        && text.len() <= 40
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && text.bytes().any(|b| b.is_ascii_digit());
    if !plain {
        return Err(AmountError::NotDecimal);
    }
    let value = Decimal::from_str(text).map_err(|_| AmountError::NotDecimal)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(AmountError::Negative);
    }
    if value.normalize().scale() > currency.exponent() {
        return Err(AmountError::TooPrecise);
    }
    if value > MAX_AMOUNT {
        return Err(AmountError::TooLarge);
    }
    Ok(value)
}

/// An amount in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }
}

/// `USD 1,234.50`, `JPY 120,000`, `KWD 3.250`: the code, grouped digits and
/// exactly the currency's minor units.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        let mut rounded = self.amount.round_dp(exponent);
        rounded.rescale(exponent);
        let text = rounded.abs().to_string();
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
            "-"
        } else {
            ""
        };
        write!(f, "{} {sign}{}", self.currency, group_thousands(int))?;
        if !frac.is_empty() {
            write!(f, ".{frac}")?;
        }
        Ok(())
    }
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).expect("known currency")
    }

    #[test]
    fn max_amount_is_one_trillion() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_i64));
    }

    #[test]
    fn currencies_without_minor_units_or_unknown_are_refused() {
        assert!(Currency::parse("XAU").is_none());
        assert!(Currency::parse("ABC").is_none());
        assert!(Currency::parse("usd").is_none());
        assert_eq!(cur("KWD").exponent(), 3);
        assert_eq!(cur("JPY").exponent(), 0);
    }

    #[test]
    fn amounts_respect_the_currency_minor_units() {
        assert_eq!(parse_amount("10.5", cur("USD")), Ok(Decimal::new(105, 1)));
        assert_eq!(parse_amount("10.50", cur("USD")), Ok(Decimal::new(1050, 2)));
        assert_eq!(
            parse_amount("10.505", cur("USD")),
            Err(AmountError::TooPrecise)
        );
        assert_eq!(
            parse_amount("10.505", cur("KWD")),
            Ok(Decimal::new(10505, 3))
        );
        assert_eq!(parse_amount("100.0", cur("JPY")), Ok(Decimal::new(1000, 1)));
        assert_eq!(
            parse_amount("100.5", cur("JPY")),
            Err(AmountError::TooPrecise)
        );
    }

    #[test]
    fn malformed_amounts_are_refused_with_a_reason() {
        for bad in ["", "abc", "1e3", "1,000", " 12", "NaN", "--1", "1.2.3", "."] {
            assert_eq!(
                parse_amount(bad, cur("USD")),
                Err(AmountError::NotDecimal),
                "{bad:?}"
            );
        }
        assert_eq!(parse_amount("-1", cur("USD")), Err(AmountError::Negative));
        assert_eq!(
            parse_amount("1000000000000.01", cur("USD")),
            Err(AmountError::TooLarge)
        );
        assert_eq!(parse_amount("-0", cur("USD")), Ok(Decimal::ZERO));
    }

    #[test]
    fn money_displays_code_grouping_and_minor_units() {
        let show = |a: &str, c: &str| Money::new(Decimal::from_str(a).unwrap(), cur(c)).to_string();
        assert_eq!(show("1234.5", "USD"), "USD 1,234.50");
        assert_eq!(show("120000", "JPY"), "JPY 120,000");
        assert_eq!(show("3.25", "KWD"), "KWD 3.250");
        assert_eq!(show("0", "EUR"), "EUR 0.00");
        assert_eq!(show("999", "USD"), "USD 999.00");
        assert_eq!(show("1000000", "USD"), "USD 1,000,000.00");
    }

    proptest! {
        #[test]
        fn displayed_amount_parses_back_to_the_same_value(cents in 0i64..100_000_000_000_000) {
            let usd = cur("USD");
            let money = Money::new(Decimal::new(cents, 2), usd);
            let shown = money.to_string();
            let digits = shown.trim_start_matches("USD ").replace(',', "");
            prop_assert_eq!(parse_amount(&digits, usd), Ok(money.amount));
        }
    }
}
