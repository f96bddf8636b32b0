package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arborgo/arbor"
)

// broker is a Source as a broker would be: it counts deliveries, and logs
// what the pool tells each.
type broker struct {
	ready chan *delivery
	mu    sync.Mutex
	log   []string
	fail  error // Lease returns it once, if set
}

type delivery struct {
	b         *broker
	id        string
	body      string
	delivered int
	bad       bool // cannot be decoded
}

func newBroker() *broker { return &broker{ready: make(chan *delivery, 100)} }

func (b *broker) publish(id, body string, delivered int) {
	b.ready <- &delivery{b: b, id: id, body: body, delivered: delivered}
}

func (b *broker) record(format string, args ...any) {
	b.mu.Lock()
	b.log = append(b.log, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

func (b *broker) entries() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.log...)
}

func (b *broker) Lease(ctx context.Context) (Lease[string], error) {
	b.mu.Lock()
	fail := b.fail
	b.fail = nil
	b.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	select {
	case d := <-b.ready:
		d.delivered++
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *delivery) Task() (string, error) {
	if d.bad {
		return "", errors.New("bad encoding")
	}
	return d.body, nil
}
func (d *delivery) Attempt() int { return d.delivered }
func (d *delivery) Ack(context.Context) error {
	d.b.record("ack %s#%d", d.id, d.delivered)
	return nil
}
func (d *delivery) Nack(_ context.Context, delay time.Duration) error {
	d.b.record("nack %s#%d %v", d.id, d.delivered, delay)
	time.AfterFunc(delay, func() { d.b.ready <- d })
	return nil
}
func (d *delivery) Extend(context.Context) error {
	d.b.record("extend %s#%d", d.id, d.delivered)
	return nil
}
func (d *delivery) DeadLetter(_ context.Context, err *DeadLetterError) error {
	d.b.record("dead %s#%d after %d", d.id, d.delivered, err.Attempt)
	return nil
}

func sourcePool(t *testing.T, b *broker, h Handler[string, string], opts ...Option) *Pool[string, string] {
	t.Helper()
	p, err := New("jobs", h, quiet(append([]Option{WithSource[string](b), WithWorkers(1)}, opts...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("broker saw\n%q\nwant\n%q", got, want)
	}
}

func TestSourceAckNackDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker()
		p := sourcePool(t, b, func(_ context.Context, s string) (string, error) {
			if s == "bad" {
				return "", errors.New("fails")
			}
			return s, nil
		}, WithMaxAttempts(3), WithRetryBackoff(arbor.ConstantBackoff(time.Second)))
		sv := serve(t, p)
		b.publish("a", "good", 0)
		synctest.Wait()
		b.publish("b", "bad", 0)
		time.Sleep(time.Minute)
		// Delivered twice already elsewhere: its third delivery is its last.
		b.publish("c", "bad", 2)
		time.Sleep(time.Minute)
		equal(t, b.entries(), []string{"ack a#1", "nack b#1 1s", "nack b#2 1s", "dead b#3 after 3", "dead c#3 after 3"})
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSourceUndecodableDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker()
		ran := false
		p := sourcePool(t, b, func(_ context.Context, s string) (string, error) { ran = true; return s, nil })
		sv := serve(t, p)
		b.ready <- &delivery{b: b, id: "x", bad: true}
		synctest.Wait()
		equal(t, b.entries(), []string{"dead x#1 after 1"})
		if ran {
			t.Fatal("an undecodable task ran")
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A long attempt's lease is extended while it runs, abandoned or not; at
// shutdown a running attempt that fails goes back to the source at once.
func TestSourceExtendAndShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker()
		release := make(chan struct{})
		p := sourcePool(t, b, func(ctx context.Context, s string) (string, error) {
			if s == "hang" {
				<-release
				return "", errors.New("gave up")
			}
			<-ctx.Done()
			return "", ctx.Err()
		}, WithLeaseExtension(10*time.Second), WithTimeLimit(0, 25*time.Second), WithRetryBackoff(arbor.ConstantBackoff(time.Second)))
		sv := serve(t, p)
		b.publish("h", "hang", 0)
		time.Sleep(35 * time.Second) // abandoned at 25s, still extended
		close(release)
		synctest.Wait()
		b.publish("w", "wait", 0)
		synctest.Wait()
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
		equal(t, b.entries(), []string{"extend h#1", "extend h#1", "extend h#1", "nack h#1 1s", "nack w#1 0s"})
	})
}

func TestSourceLeaseErrorFailsWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker()
		b.fail = errors.New("connection refused")
		var mu sync.Mutex
		var sourceErrs []error
		p := sourcePool(t, b, func(_ context.Context, s string) (string, error) { return s, nil },
			WithEventHandler(func(e Event) {
				if e.Kind == EventSourceError {
					mu.Lock()
					sourceErrs = append(sourceErrs, e.Err)
					mu.Unlock()
				}
			}))
		sv := serve(t, p)
		b.publish("a", "x", 0)
		synctest.Wait()
		equal(t, b.entries(), []string{"ack a#1"})
		if len(sourceErrs) != 1 {
			t.Fatalf("source errors %v", sourceErrs)
		}
		if infos := p.Supervisor().Children(); len(infos) != 1 || infos[0].Restarts != 1 {
			t.Fatalf("workers %+v; want worker-1 restarted once", infos)
		}
		if _, err := p.Submit(context.Background(), "x"); !errors.Is(err, arbor.ErrInvalid) {
			t.Fatalf("Submit to a pool with a Source: %v, want ErrInvalid", err)
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// The in-memory queue is a Source too.
var _ Source[int] = (*queue[int, string])(nil)

// A delivery beyond the maximum number of attempts (earlier ones died with
// their processes) is dead-lettered without running.
func TestSourceOverDeliveredDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker()
		ran := false
		p := sourcePool(t, b, func(_ context.Context, s string) (string, error) { ran = true; return s, nil },
			WithMaxAttempts(3))
		sv := serve(t, p)
		b.publish("x", "crashes its process", 3) // this is delivery 4
		synctest.Wait()
		equal(t, b.entries(), []string{"dead x#4 after 4"})
		if ran {
			t.Fatal("an over-delivered task ran")
		}
		if err := sv.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
