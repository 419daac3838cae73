package state

// Short returns the seven-character abbreviation of a commit SHA, the
// form people see in statuses, messages and logs.
func Short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// SameCommit reports whether the full SHA full starts with the
// abbreviation abbrev (at least 4 hexadecimal digits, any case).
func SameCommit(full, abbrev string) bool {
	if len(abbrev) < 4 || len(abbrev) > len(full) {
		return false
	}
	for i := range len(abbrev) {
		a, f := lower(abbrev[i]), lower(full[i])
		if !(a >= '0' && a <= '9' || a >= 'a' && a <= 'f') || a != f {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
