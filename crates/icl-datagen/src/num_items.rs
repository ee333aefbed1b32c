use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The number of training items K: a finite count or infinity (fresh items every sequence).
/// In JSON/YAML it is an integer or the string `"inf"` (also `"infinity"`, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumItems {
    Finite(usize),
    Infinite,
}

impl NumItems {
    pub fn is_infinite(&self) -> bool {
        matches!(self, NumItems::Infinite)
    }

    /// The finite count, or `None` for infinity.
    pub fn finite(&self) -> Option<usize> {
        match *self {
            NumItems::Finite(k) => Some(k),
            NumItems::Infinite => None,
        }
    }

    /// The task requires K >= 2 and even (exactly K/2 items per label) or infinity.
    /// Returns the message for key `K` when that does not hold.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            NumItems::Infinite => Ok(()),
            NumItems::Finite(k) if k < 2 => {
                Err(format!("must be an even integer >= 2 or \"inf\" (got {k})"))
            }
            NumItems::Finite(k) if !k.is_multiple_of(2) => Err(format!(
                "must be even so that exactly K/2 items get each label, or \"inf\" (got {k})"
            )),
            NumItems::Finite(k) if k > u32::MAX as usize => {
                Err(format!("must be at most {} (got {k})", u32::MAX))
            }
            NumItems::Finite(_) => Ok(()),
        }
    }
}

impl fmt::Display for NumItems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumItems::Finite(k) => write!(f, "{k}"),
            NumItems::Infinite => f.write_str("inf"),
        }
    }
}

impl std::str::FromStr for NumItems {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
            return Ok(NumItems::Infinite);
        }
        t.parse::<usize>()
            .map(NumItems::Finite)
            .map_err(|_| format!("expected a non-negative integer or \"inf\" (got {s:?})"))
    }
}

impl Serialize for NumItems {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            NumItems::Finite(k) => s.serialize_u64(k as u64),
            NumItems::Infinite => s.serialize_str("inf"),
        }
    }
}

impl<'de> Deserialize<'de> for NumItems {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumItems;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or the string \"inf\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumItems, E> {
                usize::try_from(v)
                    .map(NumItems::Finite)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumItems, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "expected a non-negative integer or \"inf\" (got {v})"
                    )));
                }
                self.visit_u64(v as u64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumItems, E> {
                // YAML `.inf` arrives as a float; integral floats are accepted as counts.
                if v.is_infinite() && v > 0.0 {
                    Ok(NumItems::Infinite)
                } else if v >= 0.0 && v.fract() == 0.0 && v < 1e15 {
                    Ok(NumItems::Finite(v as usize))
                } else {
                    Err(E::custom(format!(
                        "expected a non-negative integer or \"inf\" (got {v})"
                    )))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NumItems, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_forms() {
        let k: NumItems = serde_json::from_str("1000").unwrap();
        assert_eq!(k, NumItems::Finite(1000));
        for s in ["\"inf\"", "\"Infinity\"", "\"INF\""] {
            assert_eq!(
                serde_json::from_str::<NumItems>(s).unwrap(),
                NumItems::Infinite
            );
        }
        assert!(serde_json::from_str::<NumItems>("-4").is_err());
        assert!(serde_json::from_str::<NumItems>("\"lots\"").is_err());
        assert!(serde_json::from_str::<NumItems>("2.5").is_err());
        assert_eq!(
            serde_json::to_string(&NumItems::Infinite).unwrap(),
            "\"inf\""
        );
        assert_eq!(serde_json::to_string(&NumItems::Finite(8)).unwrap(), "8");
        assert_eq!(NumItems::Infinite.to_string(), "inf");
        assert_eq!(NumItems::Finite(12).to_string(), "12");
    }

    #[test]
    fn validation() {
        assert!(NumItems::Finite(0).validate().is_err());
        assert!(NumItems::Finite(1).validate().is_err());
        assert!(NumItems::Finite(7).validate().unwrap_err().contains("even"));
        assert!(NumItems::Finite(2).validate().is_ok());
        assert!(NumItems::Infinite.validate().is_ok());
    }
}
