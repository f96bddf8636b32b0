// Command pipeline runs a data-ingestion pipeline, reader → parser → writer,
// under a RestForOne supervisor, injects a parse failure, and shows that no
// record is lost and exactly which record is processed again.
//
// Each stage is a child, added in pipeline order. A stage's output channel
// belongs to the stage's current run: the run opens it when it starts and
// drops it when it ends, and the next stage reads from whatever run is
// current. So when the parser fails, its writer must start again too, to
// read from the new parser's channel; the reader before it keeps running.
// That is RestForOne: the failed child and the children added after it are
// restarted, the ones before it are not.
//
// Nothing is lost on the way because every hand-off is unbuffered and a
// stage marks an item done only once it has passed it on: the item a failed
// run held is handed again to the next run (the reader's position, like a
// file offset, lives outside the reader's run). The writer skips an offset it
// has already written, so a record handed again after it was written is not
// written twice.
//
//	go run ./examples/pipeline [-fail 4] [-interval 100ms]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arborgo/arbor"
)

// source is the input, one record a line, as a file or a queue would hold it.
var source = []string{
	"sensor-a,21.5", "sensor-b,19.0", "sensor-a,21.7", "sensor-c,23.1",
	"sensor-b,19.4", "sensor-c,22.8", "sensor-a,21.9", "sensor-b,19.8",
}

// A record is a line of input with its offset; a reading is a parsed record.
type (
	record struct {
		offset int
		line   string
	}
	reading struct {
		offset  int
		sensor  string
		celsius float64
	}
)

func main() {
	failAt := flag.Int("fail", 4, "offset of the record whose first parse fails (-1: none)")
	interval := flag.Duration("interval", 100*time.Millisecond, "time the reader takes to read a record")
	timeout := flag.Duration("timeout", 5*time.Second, "stop after this long even if not all records are written")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))

	var (
		lines    pipe[record]  // reader → parser
		readings pipe[reading] // parser → writer
		pos      int           // the reader's position in source: survives its restarts
		failed   bool          // the injected failure has happened
		again    []int         // offsets handed again to a new parser run
		out      = newSink(len(source))
	)
	sup := arbor.New("pipeline", arbor.WithStrategy(arbor.RestForOne), arbor.WithLogger(logger))
	must(sup.Add("reader", stage("reader", func(ctx context.Context, run int) error {
		ch := lines.open()
		defer lines.close()
		for pos < len(source) {
			select {
			case <-time.After(*interval):
			case <-ctx.Done():
				return nil
			}
			rec := record{pos, source[pos]}
			fmt.Printf("reader/%d: read   #%d %q\n", run, rec.offset, rec.line)
			select {
			case ch <- rec: // the parser holds it now
				pos++
			case <-ctx.Done():
				return nil
			}
		}
		<-ctx.Done() // end of input: wait for more, as a tail -f would
		return nil
	})))
	must(sup.Add("parser", stage("parser", func(ctx context.Context, run int) error {
		ch := readings.open()
		defer readings.close()
		for {
			rec, redo, err := lines.next(ctx)
			if err != nil {
				return nil // stopped
			}
			if redo {
				again = append(again, rec.offset)
				fmt.Printf("parser/%d: #%d again: the last run did not finish it\n", run, rec.offset)
			}
			if rec.offset == *failAt && !failed {
				failed = true
				err := fmt.Errorf("parse #%d: injected failure", rec.offset)
				fmt.Printf("parser/%d: %v\n", run, err)
				return err
			}
			r, err := parse(rec)
			if err != nil {
				return err
			}
			fmt.Printf("parser/%d: parsed #%d %s %.1f°C\n", run, r.offset, r.sensor, r.celsius)
			select {
			case ch <- r: // the writer holds it now
				lines.done()
			case <-ctx.Done():
				return nil
			}
		}
	})))
	must(sup.Add("writer", stage("writer", func(ctx context.Context, run int) error {
		for {
			r, _, err := readings.next(ctx)
			if err != nil {
				return nil // stopped
			}
			out.write(run, r)
			readings.done()
		}
	})))

	fmt.Printf("%d records to ingest", len(source))
	if *failAt >= 0 {
		fmt.Printf("; the first parse of #%d fails", *failAt)
	}
	fmt.Println()
	done := make(chan error, 1)
	go func() { done <- sup.Serve(ctx) }()
	select {
	case <-out.complete:
		fmt.Println("all records written; stopping")
	case <-ctx.Done():
		fmt.Println("stopping before all records were written")
	}
	cancel()
	err := <-done

	fmt.Println("pipeline returned:", err)
	for _, c := range sup.Children() {
		fmt.Printf("  %-6s %-7v restarts=%d last error=%v\n", c.Name, c.State, c.Restarts, c.LastError)
	}
	lost, unwritten := out.missing()
	fmt.Printf("written %d of %d records in order, %d skipped as already written, lost: %s\n",
		len(out.rows), len(source), out.skipped, offsets(lost))
	if len(unwritten) > 0 {
		fmt.Println("not written yet (the run was cut short):", offsets(unwritten))
	}
	fmt.Println("processed again:", offsets(again))
	if err != nil || len(lost) > 0 {
		os.Exit(1)
	}
}

// stage returns a worker that runs body with its run number (1 for the first
// run) and reports when it is stopped.
func stage(name string, body func(ctx context.Context, run int) error) arbor.Worker {
	runs := 0 // the supervisor never runs two copies of a child at once
	return arbor.WorkerFunc(func(ctx context.Context) error {
		runs++
		err := body(ctx, runs)
		if ctx.Err() != nil {
			fmt.Printf("%s/%d: stopped\n", name, runs)
		}
		return err
	})
}

func parse(rec record) (reading, error) {
	sensor, value, ok := strings.Cut(rec.line, ",")
	if !ok {
		return reading{}, fmt.Errorf("parse #%d: no comma in %q", rec.offset, rec.line)
	}
	c, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return reading{}, fmt.Errorf("parse #%d: %w", rec.offset, err)
	}
	return reading{rec.offset, sensor, c}, nil
}

// A pipe connects a stage to the next. Each run of the upstream stage opens
// its own unbuffered channel in it and drops it when the run ends. The
// downstream stage takes items with next and marks them finished with done;
// an item taken and not finished, because its run failed or was stopped, is
// what next returns first to the following run.
type pipe[T any] struct {
	mu      sync.Mutex
	ch      chan T        // the current upstream run's channel, or nil
	opened  chan struct{} // closed once ch is set
	pending *T            // taken downstream, not done
}

// open creates the channel of a new upstream run.
func (p *pipe[T]) open() chan T {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opened == nil {
		p.opened = make(chan struct{})
	}
	p.ch = make(chan T)
	close(p.opened)
	return p.ch
}

// close drops the channel of the upstream run that ends, so that no
// downstream run started later reads from it.
func (p *pipe[T]) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ch, p.opened = nil, make(chan struct{})
}

var errStopped = errors.New("stopped")

// next returns the item the last downstream run did not finish (redo true),
// or else the next item from the current upstream run.
func (p *pipe[T]) next(ctx context.Context) (item T, redo bool, err error) {
	p.mu.Lock()
	if p.pending != nil {
		item = *p.pending
		p.mu.Unlock()
		return item, true, nil
	}
	if p.opened == nil {
		p.opened = make(chan struct{})
	}
	opened := p.opened
	p.mu.Unlock()
	select {
	case <-opened:
	case <-ctx.Done():
		return item, false, errStopped
	}
	p.mu.Lock()
	ch := p.ch
	p.mu.Unlock()
	select {
	case item = <-ch:
		p.mu.Lock()
		p.pending = &item
		p.mu.Unlock()
		return item, false, nil
	case <-ctx.Done():
		return item, false, errStopped
	}
}

// done marks the item next returned as finished.
func (p *pipe[T]) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = nil
}

// A sink is where the writer writes: it keeps the highest offset written and
// skips a record at or below it, so that writing is idempotent.
type sink struct {
	rows     []reading
	last     int
	skipped  int
	total    int
	complete chan struct{} // closed when offset total-1 is written
}

func newSink(total int) *sink {
	return &sink{last: -1, total: total, complete: make(chan struct{})}
}

func (s *sink) write(run int, r reading) {
	if r.offset <= s.last {
		s.skipped++
		fmt.Printf("writer/%d: #%d already written, skipped\n", run, r.offset)
		return
	}
	s.rows = append(s.rows, r)
	s.last = r.offset
	fmt.Printf("writer/%d: wrote  #%d\n", run, r.offset)
	if r.offset == s.total-1 {
		close(s.complete)
	}
}

// missing returns the offsets of source that were skipped, below the last
// one written (lost: the writer never goes back), and those after it (not
// written yet).
func (s *sink) missing() (lost, unwritten []int) {
	next := 0
	for _, r := range s.rows {
		for ; next < r.offset; next++ {
			lost = append(lost, next)
		}
		next = r.offset + 1
	}
	for ; next < s.total; next++ {
		unwritten = append(unwritten, next)
	}
	return lost, unwritten
}

func offsets(xs []int) string {
	if len(xs) == 0 {
		return "none"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = "#" + strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
