// Package bench compares the cost of supervision in arbor with
// github.com/thejerf/suture/v4 and with a minimal hand-written supervisor
// ("raw": one goroutine and one context.WithCancel per run, restarted by a
// single loop), which serves as a lower bound.
//
// pool_test.go compares arbor's task pool (package pool) with
// github.com/alitto/pond/v2, github.com/panjf2000/ants/v2, errgroup with
// SetLimit and channel lower bounds.
//
// The package has no API; its benchmarks live in bench_test.go and
// pool_test.go and are described, with the numbers of a reference run, in
// README.md. It is a separate module so that arbor itself does not depend
// on suture or the pools it is compared with. Run them with
//
//	cd bench && go test -run '^$' -bench . -benchmem ./...
package bench
