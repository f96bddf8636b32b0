// Package bench compares the cost of supervision in arbor with
// github.com/thejerf/suture/v4 and with a minimal hand-written supervisor
// ("raw": one goroutine and one context.WithCancel per run, restarted by a
// single loop), which serves as a lower bound.
//
// The package has no API; its benchmarks live in bench_test.go and are
// described, with the numbers of a reference run, in README.md. It is a
// separate module so that arbor itself does not depend on suture. Run them
// with
//
//	cd bench && go test -run '^$' -bench . -benchmem ./...
package bench
