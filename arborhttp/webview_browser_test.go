//go:build unix

package arborhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arborgo/arbor"
)

// The browser test drives a real headless Chromium through chromedriver with
// the WebDriver protocol (W3C), spoken here over plain HTTP and JSON.

const (
	chromiumPath = "/usr/bin/chromium"
	browserWait  = 20 * time.Second // the longest any wait for the page may take
	commandWait  = time.Minute      // the longest one WebDriver command may take (starting Chromium on a busy machine)
)

// webDriver is a WebDriver client for one session.
type webDriver struct {
	t       *testing.T
	base    string // chromedriver's URL
	client  *http.Client
	session string
}

// call sends a WebDriver command and decodes its "value" into out (if not
// nil). A WebDriver error comes back as an error naming it. It does not use
// t.Context, which ends before the cleanup that deletes the session.
func (d *webDriver) call(method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandWait)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %s: %.200s", method, path, res.Status, raw)
	}
	if res.StatusCode != http.StatusOK {
		var we struct{ Error, Message string }
		_ = json.Unmarshal(env.Value, &we)
		return fmt.Errorf("%s %s: %s: %s: %s", method, path, res.Status, we.Error, we.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Value, out)
}

// must is call that fails the test on an error.
func (d *webDriver) must(method, path string, in, out any) {
	d.t.Helper()
	if err := d.call(method, path, in, out); err != nil {
		d.t.Fatal(err)
	}
}

// script runs JavaScript in the page and decodes what it returns into out.
func (d *webDriver) script(js string, out any) {
	d.t.Helper()
	d.must("POST", "/session/"+d.session+"/execute/sync", map[string]any{"script": js, "args": []any{}}, out)
}

// text returns the rendered text of the element that css selects, or an
// error if there is none.
func (d *webDriver) text(css string) (string, error) {
	var el map[string]string
	if err := d.call("POST", "/session/"+d.session+"/element", map[string]string{"using": "css selector", "value": css}, &el); err != nil {
		return "", err
	}
	id := el["element-6066-11e4-a52e-4f735466cecf"] // the W3C element key
	var s string
	err := d.call("GET", "/session/"+d.session+"/element/"+id+"/text", nil, &s)
	return s, err
}

// waitFor polls cond every 100 ms until it returns true, for at most
// browserWait: a bounded wait for the page to catch up with the tree, not a
// timing assertion. What describes the last state is reported on failure.
func (d *webDriver) waitFor(what string, cond func() (bool, string)) {
	d.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("page never showed %s within %v; last: %s", what, browserWait, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pageStates returns every node element's data-path and data-state.
func (d *webDriver) pageStates() map[string]string {
	d.t.Helper()
	var m map[string]string
	d.script(`var m = {};
		document.querySelectorAll("[data-path]").forEach(function (e) {
			m[e.getAttribute("data-path")] = e.getAttribute("data-state");
		});
		return m;`, &m)
	return m
}

// startChromedriver starts chromedriver on a free port and returns its URL
// once it is ready. Cleanup kills it, and whatever it started, and waits.
func startChromedriver(t *testing.T, path string, client *http.Client) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// Its output goes to a file, not a pipe: Chromium's crash handlers
	// leave its process group and would hold a pipe open after it exits.
	logPath := filepath.Join(t.TempDir(), "chromedriver.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	output := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	cmd := exec.Command(path, "--port="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so that we can kill its browsers too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", output())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(browserWait)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/status", nil)
		var st struct {
			Value struct{ Ready bool } `json:"value"`
		}
		res, err := client.Do(req)
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
		}
		cancel()
		if err == nil && st.Value.Ready {
			return base
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("chromedriver exited: %v\n%s", err, output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready within %v: %v", browserWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestViewBrowser opens ViewHandler's page in headless Chromium, waits until
// it shows the whole tree running, makes children fail, and checks that the
// page, without being reloaded, shows their states and errors as text. It
// runs in real time, and is skipped when Chromium or chromedriver is missing
// and in short mode, unless ARBOR_BROWSER_TEST=1, which CI sets. With
// ARBOR_SCREENSHOT=file.png it saves a screenshot of the page with a child
// restarting (a relative name is relative to this package's directory).
func TestViewBrowser(t *testing.T) {
	driver, err := exec.LookPath("chromedriver")
	if _, serr := os.Stat(chromiumPath); err != nil || serr != nil {
		if os.Getenv("ARBOR_BROWSER_TEST") == "1" {
			t.Fatalf("ARBOR_BROWSER_TEST=1 but no browser: chromedriver: %v; chromium: %v", err, serr)
		}
		t.Skip("needs " + chromiumPath + " and chromedriver (Debian: apt-get install chromium chromium-driver)")
	}
	if testing.Short() && os.Getenv("ARBOR_BROWSER_TEST") != "1" {
		t.Skip("runs a browser in real time; skipped in short mode")
	}

	// The tree: root{db{conn, cache}, api, jobs}. conn and api wait an hour
	// in backoff when they fail, so that they stay restarting.
	root := arbor.New("root", arbor.WithLogger(nil))
	db := arbor.New("db", arbor.WithLogger(nil))
	conn, cache, api, jobs := newWorker(), newWorker(), newWorker(), newWorker()
	hour := arbor.WithBackoff(arbor.ConstantBackoff(time.Hour))
	for _, err := range []error{
		db.Add("conn", conn, hour),
		db.Add("cache", cache),
		root.Add("db", db),
		root.Add("api", api, hour),
		root.Add("jobs", jobs),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- root.Serve(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	// Mounted as ViewHandler's documentation says.
	mux := http.NewServeMux()
	mux.Handle("/arbor/", http.StripPrefix("/arbor", ViewHandler(root)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	transport := &http.Transport{}
	client := &http.Client{Transport: transport}
	t.Cleanup(transport.CloseIdleConnections)
	d := &webDriver{t: t, client: client, base: startChromedriver(t, driver, client)}

	var sess struct {
		SessionID string `json:"sessionId"`
	}
	d.must("POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromiumPath,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--disable-background-networking", "--window-size=1100,700"},
		},
	}}}, &sess)
	d.session = sess.SessionID
	t.Cleanup(func() {
		if err := d.call("DELETE", "/session/"+d.session, nil, nil); err != nil {
			t.Errorf("deleting the session: %v", err)
		}
	})

	d.must("POST", "/session/"+d.session+"/url", map[string]string{"url": srv.URL + "/arbor/"}, nil)
	paths := []string{"root", "root/db", "root/db/conn", "root/db/cache", "root/api", "root/jobs"}
	d.waitFor("every node running", func() (bool, string) {
		st := d.pageStates()
		for _, p := range paths {
			if st[p] != "running" {
				return false, fmt.Sprint(st)
			}
		}
		return len(st) == len(paths), fmt.Sprint(st)
	})
	if s, err := d.text("#ready"); err != nil || s != "ready" {
		t.Errorf("header: %q, %v; want ready", s, err)
	}
	var none any
	d.script(`window.arborLoaded = 42; return null;`, &none) // gone if the page reloads

	// jobs fails and is restarted at once: running, with its last error.
	jobs.exit <- errors.New("queue: lease lost")
	d.waitFor("jobs restarted with its error", func() (bool, string) {
		s, err := d.text(`[data-path="root/jobs"]`)
		return err == nil && strings.Contains(s, "running") && strings.Contains(s, "queue: lease lost"), s
	})

	// conn fails and waits an hour in backoff.
	const connErr = "dial tcp 10.0.0.7:5432: connect: connection refused"
	conn.exit <- errors.New(connErr)
	d.waitFor("conn restarting with its error", func() (bool, string) {
		st := d.pageStates()
		s, err := d.text(`[data-path="root/db/conn"]`)
		return st["root/db/conn"] == "restarting" && err == nil && strings.Contains(s, connErr) &&
			strings.Contains(s, "in 59m"), fmt.Sprint(st["root/db/conn"], " ", s, err)
	})
	if s, err := d.text("#ready"); err != nil || s != "not ready" {
		t.Errorf("header: %q, %v; want not ready", s, err)
	}
	if s, err := d.text("#live"); err != nil || s != "live" {
		t.Errorf("header: %q, %v; want live", s, err)
	}

	var shot string
	d.must("GET", "/session/"+d.session+"/screenshot", nil, &shot)
	png, err := base64.StdEncoding.DecodeString(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if out := os.Getenv("ARBOR_SCREENSHOT"); out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", out, len(png))
	}

	// Markup in an error is shown as text, never parsed.
	const evil = `<img src=x onerror="document.title='pwned'"><b id=evil>bold</b>`
	api.exit <- errors.New(evil)
	d.waitFor("api's error as text", func() (bool, string) {
		s, err := d.text(`[data-path="root/api"]`)
		return err == nil && strings.Contains(s, evil), s
	})
	var page struct {
		Elements int    `json:"elements"`
		Title    string `json:"title"`
		Loaded   int    `json:"loaded"`
	}
	d.script(`return {elements: document.querySelectorAll("#evil, tbody img, tbody b").length,
		title: document.title, loaded: window.arborLoaded || 0};`, &page)
	if page.Elements != 0 || strings.Contains(page.Title, "pwned") {
		t.Errorf("markup in an error was parsed: %+v", page)
	}
	if page.Loaded != 42 {
		t.Errorf("the page was reloaded: %+v", page)
	}
}
