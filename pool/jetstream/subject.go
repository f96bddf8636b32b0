package jetstream

import "strings"

// validSubject reports whether s is a NATS subject: dot-separated tokens,
// none empty nor holding white space; with wild, '*' tokens and a last '>'
// token too.
func validSubject(s string, wild bool) bool {
	if s == "" {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return false
		}
		if t == "*" || (t == ">" && i == len(toks)-1) {
			if !wild {
				return false
			}
			continue
		}
		if strings.ContainsAny(t, "*>") {
			return false
		}
	}
	return true
}

// matchSubject reports whether the literal subject subj matches pattern,
// which may hold wildcards.
func matchSubject(pattern, subj string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(subj, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

// matchAny reports whether subj matches one of patterns.
func matchAny(patterns []string, subj string) bool {
	for _, p := range patterns {
		if matchSubject(p, subj) {
			return true
		}
	}
	return false
}
