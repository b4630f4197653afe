//! Closed sets stored as their names: one macro writes, for an enum of
//! unit variants, its names (`as_str`), the reverse (`parse`, with a typed
//! error for a name this build does not know), `ALL` for table tests,
//! `Display`, serde as the name, and comparison with a `&str` (so a
//! timeline read back is checked against the name people read in the
//! store).
//!
//! Rule: the names are stored; renaming one is a schema migration.

/// `named_set! { /// doc  pub enum Name / Error ("what") { /// doc  Variant = "name", … } }`
macro_rules! named_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident / $error:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        #[doc = concat!("A ", $what, " this build does not know (read back from the store).")]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("unknown {what} '{0}'", what = $what)]
        pub struct $error(pub String);

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name, as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The variant of a stored name.
            pub fn parse(text: &str) -> Result<$name, $error> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    other => Err($error(other.to_owned())),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<$name, $error> {
                $name::parse(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use named_set;
