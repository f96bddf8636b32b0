package arbor

import (
	"strconv"
	"unicode/utf8"
)

// printable keeps one node on one line of Node.String, and text that
// cannot deceive a reader: it quotes text holding anything not safely
// printable (strconv.IsPrint): control characters, C1 controls, line and
// paragraph separators, bidirectional overrides, invalid UTF-8.
func printable(s string) string {
	safe := utf8.ValidString(s)
	for _, r := range s {
		safe = safe && strconv.IsPrint(r)
	}
	if safe {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
