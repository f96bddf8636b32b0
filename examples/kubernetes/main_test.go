package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestProbesFromTheFirstSecond: the probes answer while the database, a
// readiness-gated child, is still starting: the probe server is the first
// child, not one queued behind that child's readiness. Here the database
// never becomes ready while the test runs, so a server queued behind it
// would never answer. (Issue 11, point 7.)
func TestProbesFromTheFirstSecond(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- run(ctx, logger, "127.0.0.1:0", time.Hour, func(a string) { addrs <- a }) }()
	base := "http://" + <-addrs
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	var live *http.Response
	deadline := time.Now().Add(10 * time.Second) // a bound for the failure case only
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/livez")
		if err == nil {
			live = resp
			break
		}
		time.Sleep(10 * time.Millisecond) // waiting for the listener, not ordering events
	}
	if live == nil {
		t.Fatal("no answer on /livez while the database starts")
	}
	live.Body.Close()
	if live.StatusCode != http.StatusOK {
		t.Fatalf("/livez = %d while the database starts, want 200", live.StatusCode)
	}
	resp, err := client.Get(base + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while the database starts, want 503:\n%s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
