package arbor

import "strconv"

// printable keeps one node on one line of Node.String: it quotes text
// holding control characters, such as a newline in a child's name or an
// error.
func printable(s string) string {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
