package integration

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/api/statuspage"
)

// A real 3-node cluster loses one memcached (kill -9); a real browser,
// headless Chromium, renders the node's /status page, and both its DOM and
// its pixels must show the one unhealthy shard among two healthy ones.
func TestStatusPageChromium(t *testing.T) {
	browser := findChromium(t)
	c := StartCluster(t, 3)
	node := c.Nodes[0]
	url := "http://" + node.HTTP + "/status"

	// The legend shows every colour even when all is well, so the dead
	// shard must add unhealthy pixels beyond that baseline.
	healthyBefore, unhealthyBefore := colourCounts(t, browser.screenshot(t, url))
	t.Logf("all healthy: %d healthy-colour and %d unhealthy-colour pixels", healthyBefore, unhealthyBefore)

	dead := c.Shards[2]
	dead.Kill()
	WaitFor(t, 20*time.Second, "node1 to mark "+dead.Addr+" unhealthy", func() bool {
		st, err := node.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
		if err != nil {
			return false
		}
		unhealthy := 0
		for _, s := range st.Shards {
			if !s.Healthy {
				unhealthy++
			}
		}
		return len(st.Shards) == 3 && unhealthy == 1
	})

	dom := browser.dumpDOM(t, url)
	shards, text := parseDOM(t, dom)
	if len(shards) != 3 {
		t.Fatalf("%d shard elements in the rendered DOM, want 3\n%s", len(shards), dom)
	}
	var unhealthy []map[string]string
	sum := 0.0
	for _, s := range shards {
		own, err := strconv.ParseFloat(s["data-ownership"], 64)
		if err != nil {
			t.Fatalf("shard %s: data-ownership %q: %v", s["data-shard"], s["data-ownership"], err)
		}
		sum += own
		if s["data-healthy"] == "false" {
			unhealthy = append(unhealthy, s)
			if own != 0 || s["data-state"] != "unhealthy" {
				t.Errorf("unhealthy shard %s: ownership %v, state %q", s["data-shard"], own, s["data-state"])
			}
		} else if own < 0.45 || own > 0.55 {
			// R=2 over two healthy shards: each holds a copy of everything.
			t.Errorf("healthy shard %s owns %v, want about 0.5", s["data-shard"], own)
		}
	}
	if len(unhealthy) != 1 || unhealthy[0]["data-shard"] != dead.Addr {
		t.Errorf("unhealthy shards %v, want just %s", unhealthy, dead.Addr)
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("ownership shares sum to %v", sum)
	}
	for _, want := range []string{"50.0%", "0.0%", "2 healthy, 1 not", "unhealthy"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page does not show %q", want)
		}
	}

	img := browser.screenshot(t, url)
	healthy, unhealthyPx := colourCounts(t, img)
	t.Logf("one shard down: %d healthy-colour and %d unhealthy-colour pixels", healthy, unhealthyPx)
	if healthy < 5000 {
		t.Errorf("only %d pixels of the healthy colour %s: the ownership arcs are not drawn", healthy, statuspage.StatusColorHealthy)
	}
	if unhealthyPx < unhealthyBefore+400 {
		t.Errorf("%d pixels of the unhealthy colour %s (%d with all healthy): the dead shard is not drawn",
			unhealthyPx, statuspage.StatusColorUnhealthy, unhealthyBefore)
	}
	if out := os.Getenv("LOCSVC_STATUSPAGE_PNG"); out != "" {
		// A copy for a human to look at (CI artifacts, reviews).
		if err := os.WriteFile(out, img, 0o644); err != nil {
			t.Error(err)
		}
	}
}

type chromium struct{ path string }

// findChromium fails, not skips, when the browser is missing, as the
// other integration tests do for their external programs.
func findChromium(t *testing.T) chromium {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium: %v (CI installs it in .ci/run)", err)
	}
	return chromium{path: path}
}

// dumpDOM is the DOM after the page has loaded, serialised as HTML.
func (b chromium) dumpDOM(t *testing.T, url string) []byte {
	t.Helper()
	return b.run(t, "--dump-dom", url)
}

// screenshot is a PNG of the page's first screenful.
func (b chromium) screenshot(t *testing.T, url string) []byte {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "status.png")
	b.run(t, "--screenshot="+file, "--window-size=1000,1300", url)
	img, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	return img
}

// run starts Chromium with a throw-away profile, waits for it, and makes
// sure none of the helper processes it forks outlives the call.
func (b chromium) run(t *testing.T, args ...string) []byte {
	t.Helper()
	profile := t.TempDir()
	base := []string{
		"--headless", "--no-sandbox", // the sandbox refuses to run as root, which CI is
		"--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + profile, "--crash-dumps-dir=" + profile,
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-default-apps",
		"--disable-sync", "--disable-background-networking", "--disable-component-update",
		"--disable-breakpad", "--no-pings", "--metrics-recording-only",
		// Only loopback: names do not resolve, and the page is fetched by
		// IP address, so the browser cannot reach anything else.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		// Colours exactly as written, for the pixel checks.
		"--force-color-profile=srgb", "--hide-scrollbars",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.path, append(base, args...)...)
	// Its own process group, so that the browser and every helper it
	// forks can be killed together, by the group's ID and nothing broader.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A helper holding stdout open must not hang Wait.
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // helpers that outlived the browser
	if left := survivors(pgid, profile, 5*time.Second); len(left) > 0 {
		t.Errorf("chromium processes %v survived their group being killed", left)
	}
	t.Logf("chromium %s took %v", args[0], time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("chromium %v: %v (timeout %v)\n%s", args, err, errors.Is(ctx.Err(), context.DeadlineExceeded), tail(stderr.String(), 4000))
	}
	return stdout.Bytes()
}

// parseDOM reads Chromium's HTML serialisation (void elements unclosed,
// so not XML) with encoding/xml's lenient HTML mode, and returns the
// attributes of each shard element and the page's text.
func parseDOM(t *testing.T, dom []byte) ([]map[string]string, string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(dom))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var shards []map[string]string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("rendered DOM: %v\n%s", err, dom)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Name.Local] = a.Value
			}
			if tok.Name.Local == "g" && attrs["class"] == "shard" {
				shards = append(shards, attrs)
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	return shards, text.String()
}

// colourCounts decodes a PNG and counts the pixels of the healthy and the
// unhealthy colour (anti-aliased edges aside, fills are exact in sRGB).
func colourCounts(t *testing.T, data []byte) (healthy, unhealthy int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	h, u := hexRGB(t, statuspage.StatusColorHealthy), hexRGB(t, statuspage.StatusColorUnhealthy)
	bounds := img.Bounds()
	if bounds.Dx() < 500 || bounds.Dy() < 500 {
		t.Fatalf("screenshot is only %v", bounds.Size())
	}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			switch {
			case near(img, x, y, h):
				healthy++
			case near(img, x, y, u):
				unhealthy++
			}
		}
	}
	return healthy, unhealthy
}

func near(img image.Image, x, y int, want [3]int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
	for i := range got {
		if d := got[i] - want[i]; d > 4 || d < -4 {
			return false
		}
	}
	return true
}

func hexRGB(t *testing.T, s string) [3]int {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	if err != nil || len(s) != 7 {
		t.Fatalf("colour %q", s)
	}
	return [3]int{int(v >> 16 & 0xff), int(v >> 8 & 0xff), int(v & 0xff)}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
