//! The user's language, for texts shown to people when the host does not choose one (the client
//! option `language`, the command line's `--lang`).
//!
//! Unix: the first of `LC_ALL`, `LC_MESSAGES` and `LANG` that is set and not empty (POSIX's order
//! for messages); `de…` (`de_DE.UTF-8`, `de_AT`, `de`) is German, anything else (`C`, `POSIX`,
//! `en_US.UTF-8`, `fr_FR`) and nothing at all is English. Windows: the user's UI language
//! (`GetUserDefaultUILanguage`), German when its primary language is `LANG_GERMAN` (0x07).

use crate::i18n::Language;

/// The language of the user's locale.
pub fn user_language() -> Language {
    #[cfg(windows)]
    {
        windows_ui_language()
    }
    #[cfg(not(windows))]
    {
        let var = |name: &str| std::env::var(name).ok();
        from_env(
            var("LC_ALL").as_deref(),
            var("LC_MESSAGES").as_deref(),
            var("LANG").as_deref(),
        )
    }
}

/// The language of the POSIX locale variables `LC_ALL`, `LC_MESSAGES` and `LANG` (the first set
/// and not empty wins).
pub fn from_env(lc_all: Option<&str>, lc_messages: Option<&str>, lang: Option<&str>) -> Language {
    let locale = [lc_all, lc_messages, lang]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty());
    match locale {
        Some(l) => from_locale_name(l),
        None => Language::En,
    }
}

/// The language of a locale name: `language[_territory][.codeset][@modifier]` (`de_DE.UTF-8`),
/// or a BCP 47 tag (`de-AT`).
pub fn from_locale_name(name: &str) -> Language {
    let language = name.split(['_', '-', '.', '@']).next().unwrap_or_default();
    if language.eq_ignore_ascii_case("de") {
        Language::De
    } else {
        Language::En
    }
}

/// The language of a Windows `LANGID` (its low 10 bits are the primary language; 0x07 is German).
pub fn from_langid(langid: u16) -> Language {
    const LANG_GERMAN: u16 = 0x07;
    if langid & 0x3ff == LANG_GERMAN {
        Language::De
    } else {
        Language::En
    }
}

/// The user's Windows UI language (`GetUserDefaultUILanguage`: the language of the user's
/// Windows, not the regional format).
#[cfg(windows)]
fn windows_ui_language() -> Language {
    // SAFETY: no arguments, no pointers; it only reads the calling user's setting.
    from_langid(unsafe { windows_sys::Win32::Globalization::GetUserDefaultUILanguage() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_order_first_set_and_not_empty_wins() {
        assert_eq!(from_env(None, None, Some("de_DE.UTF-8")), Language::De);
        assert_eq!(
            from_env(None, Some("de_AT"), Some("en_US.UTF-8")),
            Language::De
        );
        assert_eq!(
            from_env(Some("C"), Some("de_DE"), Some("de_DE")),
            Language::En
        );
        assert_eq!(from_env(Some("de_CH.UTF-8"), None, Some("C")), Language::De);
        assert_eq!(
            from_env(Some(""), Some(""), Some("de_DE.UTF-8")),
            Language::De
        );
        assert_eq!(
            from_env(Some("en_GB.UTF-8"), None, Some("de_DE.UTF-8")),
            Language::En
        );
    }

    #[test]
    fn unset_c_posix_and_other_languages_are_english() {
        assert_eq!(from_env(None, None, None), Language::En);
        assert_eq!(from_env(Some(""), None, Some("  ")), Language::En);
        for name in [
            "C",
            "POSIX",
            "C.UTF-8",
            "en_US.UTF-8",
            "fr_FR",
            "deu",
            "dev",
            "nl_DE",
        ] {
            assert_eq!(from_locale_name(name), Language::En, "{name}");
        }
    }

    #[test]
    fn german_locale_names_and_tags() {
        for name in [
            "de",
            "DE",
            "de_DE",
            "de_DE.UTF-8",
            "de_AT.ISO-8859-1",
            "de_DE@euro",
            "de-CH",
        ] {
            assert_eq!(from_locale_name(name), Language::De, "{name}");
        }
    }

    #[test]
    fn windows_langids() {
        assert_eq!(from_langid(0x0407), Language::De); // de-DE
        assert_eq!(from_langid(0x0c07), Language::De); // de-AT
        assert_eq!(from_langid(0x0807), Language::De); // de-CH
        assert_eq!(from_langid(0x0409), Language::En); // en-US
        assert_eq!(from_langid(0x040c), Language::En); // fr-FR
        assert_eq!(from_langid(0x0413), Language::En); // nl-NL
        assert_eq!(from_langid(0), Language::En);
    }
}
