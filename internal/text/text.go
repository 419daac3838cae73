// Package text holds the few string helpers every ferry package needs to
// show a message to a person: one line, cut at a character (never inside a
// multi-byte rune), with the user information of URLs removed.
package text

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Ellipsis ends a string that was cut.
const Ellipsis = "…"

// OneLine collapses every run of whitespace, newlines included, into one
// space and cuts s to at most max characters (runes, not bytes), ending a
// cut string with an ellipsis. A multi-byte character is never split
// (TestOneLine).
func OneLine(s string, max int) string {
	return Truncate(strings.Join(strings.Fields(s), " "), max)
}

// Truncate cuts s to at most n characters (runes, not bytes), ending a cut
// string with an ellipsis. Forges count characters: GitHub refuses status
// descriptions over 140.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	runes := []rune(s)
	return string(runes[:n-1]) + Ellipsis
}

var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s]+)@`)

// Scrub removes secrets and the user information of URLs from s, which is
// about to be shown or logged.
func Scrub(s string, secrets ...string) string {
	for _, secret := range secrets {
		// Why a minimum length: replacing a one-letter "secret" would garble
		// every message while hiding nothing (TestScrub).
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return userinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfo.FindStringSubmatch(m)
		if sub[2] == "git" {
			return m // ssh://git@host names no one.
		}
		return sub[1] + "[redacted]@"
	})
}

// IsHex reports whether s is a non-empty run of hexadecimal digits.
func IsHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}
