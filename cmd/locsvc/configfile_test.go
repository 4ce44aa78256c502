package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeConfig writes text to a config file in a temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "locsvc.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadServe runs serve's flag handling (parse, then check) on args.
func loadServe(t *testing.T, args ...string) (config, error) {
	t.Helper()
	var cfg config
	fs, finish := serveFlags(&cfg)
	fs.SetOutput(discard{})
	if err := parseFlags(fs, args); err != nil {
		return cfg, err
	}
	return cfg, finish()
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// clearEnv unsets every LOCSVC_ variable for the test, so that the
// environment the tests run in cannot leak into them.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

func TestConfigFilePrecedence(t *testing.T) {
	file := writeConfig(t, `
node-id: from-file
replicas: 3
memcached: [127.0.0.1:11211, "127.0.0.1:11212"]
join:
  - 10.0.0.2:7946
pprof: true
memcached-timeout: 2s
register-rate: 2.5
trusted: 10.0.0.0/8
`)
	other := writeConfig(t, "node-id: from-other-file\n")
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c config)
	}{
		{"defaults without a file", nil, nil, func(t *testing.T, c config) {
			host, _ := os.Hostname()
			if c.NodeID != host || c.Replicas != 2 || c.Memcached != nil || c.Pprof {
				t.Errorf("%+v", c)
			}
		}},
		{"the file over the defaults", nil, []string{"--config", file}, func(t *testing.T, c config) {
			if c.NodeID != "from-file" || c.Replicas != 3 || c.MemcachedTimeout != 2*time.Second || !c.Pprof ||
				c.RegisterRate != 2.5 || len(c.Trusted) != 1 || c.GRPC != "127.0.0.1:7070" {
				t.Errorf("%+v", c)
			}
			if !slices.Equal(c.Memcached, []string{"127.0.0.1:11211", "127.0.0.1:11212"}) ||
				!slices.Equal(c.Join, []string{"10.0.0.2:7946"}) {
				t.Errorf("lists: memcached %q join %q", c.Memcached, c.Join)
			}
		}},
		{"the environment over the file", map[string]string{"LOCSVC_NODE_ID": "from-env", "LOCSVC_PPROF": "false"},
			[]string{"--config", file}, func(t *testing.T, c config) {
				if c.NodeID != "from-env" || c.Pprof || c.Replicas != 3 {
					t.Errorf("%+v", c)
				}
			}},
		{"the command line over both", map[string]string{"LOCSVC_NODE_ID": "from-env", "LOCSVC_REPLICAS": "1"},
			[]string{"--config", file, "--node-id", "from-args", "--memcached", "127.0.0.1:1"}, func(t *testing.T, c config) {
				if c.NodeID != "from-args" || c.Replicas != 1 || !slices.Equal(c.Memcached, []string{"127.0.0.1:1"}) {
					t.Errorf("%+v", c)
				}
			}},
		{"the file named by LOCSVC_CONFIG", map[string]string{"LOCSVC_CONFIG": file}, nil, func(t *testing.T, c config) {
			if c.NodeID != "from-file" {
				t.Errorf("node-id %q", c.NodeID)
			}
		}},
		{"--config over LOCSVC_CONFIG", map[string]string{"LOCSVC_CONFIG": file}, []string{"--config", other},
			func(t *testing.T, c config) {
				if c.NodeID != "from-other-file" || c.Replicas != 2 {
					t.Errorf("%+v", c)
				}
			}},
		{"--config= turns LOCSVC_CONFIG off", map[string]string{"LOCSVC_CONFIG": "/nonexistent.yaml"}, []string{"--config="},
			func(t *testing.T, c config) {
				if c.Replicas != 2 {
					t.Errorf("%+v", c)
				}
			}},
		{"a flag given after --config wins too", nil, []string{"--replicas", "1", "--config", file}, func(t *testing.T, c config) {
			if c.Replicas != 1 || c.NodeID != "from-file" {
				t.Errorf("%+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := loadServe(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // in the error, beside the file name
	}{
		{"unknown key", "node-id: a\n\nnodeid: b\n", []string{":3:", `unknown key "nodeid"`, `did you mean "node-id"`}},
		{"underscores", "max_contacts: 3\n", []string{":1:", `"max_contacts"`, `did you mean "max-contacts"`}},
		{"dashes kept", "--replicas: 3\n", []string{`did you mean "replicas"`}},
		{"nothing close", "colour: blue\n", []string{`unknown key "colour"`}},
		{"a mapping for a string", "node-id: a\ngrpc:\n  host: 127.0.0.1\n  port: 7070\n", []string{":3:", "grpc", "got a mapping", "--grpc takes one value"}},
		{"a mapping for a list flag", "memcached: {a: b}\n", []string{"--memcached takes one value or a list"}},
		{"a list for a single value", "grpc: [a, b]\n", []string{":1:", "a list, but --grpc takes one value"}},
		{"a mapping in a list", "memcached:\n  - 127.0.0.1:11211\n  - {a: b}\n", []string{":2:", "list item on line 3"}},
		{"an invalid number", "replicas: two\n", []string{":1:", `replicas: invalid value "two"`}},
		{"an invalid duration", "memcached-timeout: 5\n", []string{`memcached-timeout: invalid value "5"`}},
		{"an invalid boolean", "pprof: maybe\n", []string{`pprof: invalid value "maybe"`}},
		{"config inside the file", "config: other.yaml\n", []string{":1:", `"config" cannot be set inside a config file`}},
		{"a key twice", "replicas: 2\nreplicas: 3\n", []string{":2:", "replicas is set twice (first on line 1)"}},
		{"not YAML", "node-id: [a\n", []string{"yaml:"}},
		{"not a mapping", "- node-id\n- a\n", []string{":1:", "want a mapping"}},
		{"two documents", "node-id: a\n---\nnode-id: b\n", []string{"more than one YAML document"}},
		{"a key that is not a name", "[a, b]: c\n", []string{":1:", "a key must be a flag name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			path := writeConfig(t, tt.text)
			_, err := loadServe(t, "--config", path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append([]string{path}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}

	t.Run("unreadable file", func(t *testing.T) {
		clearEnv(t)
		path := filepath.Join(t.TempDir(), "missing.yaml")
		_, err := loadServe(t, "--config", path)
		if err == nil || !strings.Contains(err.Error(), "config file") || !strings.Contains(err.Error(), path) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("the flags' own checks still apply", func(t *testing.T) {
		clearEnv(t)
		_, err := loadServe(t, "--config", writeConfig(t, "replicas: 0\n"))
		if err == nil || !strings.Contains(err.Error(), "--replicas") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("a bad value of a flag the command line overrides", func(t *testing.T) {
		// The command line wins, so the file's value is never used; but
		// the key is still checked.
		clearEnv(t)
		if _, err := loadServe(t, "--config", writeConfig(t, "replicas: two\n"), "--replicas", "2"); err != nil {
			t.Errorf("overridden value refused: %v", err)
		}
		if _, err := loadServe(t, "--config", writeConfig(t, "replicaz: 2\n"), "--replicas", "2"); err == nil {
			t.Error("unknown key accepted")
		}
	})
	t.Run("empty and comment-only files", func(t *testing.T) {
		clearEnv(t)
		for _, text := range []string{"", "# nothing\n", "---\n"} {
			if _, err := loadServe(t, "--config", writeConfig(t, text)); err != nil {
				t.Errorf("%q: %v", text, err)
			}
		}
	})
	t.Run("null is empty", func(t *testing.T) {
		clearEnv(t)
		c, err := loadServe(t, "--config", writeConfig(t, "sip:\nmemcached: ~\n"))
		if err != nil || c.SIP != "" || c.Memcached != nil {
			t.Errorf("%+v, %v", c, err)
		}
	})
}

// examplePath is the example config file shipped in docs/.
const examplePath = "../../docs/locsvc.example.yaml"

// commentedKey matches a commented-out setting of the example ("# key:
// value"); prose comments start with a capital or are not key: value.
var commentedKey = regexp.MustCompile(`^# ?([a-z][a-z0-9-]*):(\s.*)?$`)

// The example config file loads, sets only flags, and names every serve
// flag (set, or commented out at its default), so it cannot drift from
// the code: a new flag fails this test until the example shows it.
func TestExampleConfig(t *testing.T) {
	clearEnv(t)
	// The example's api-token names a file of the machine it is written
	// for; the command line overrides it with one of the test's.
	token := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(token, []byte("example-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadServe(t, "--config", examplePath, "--api-token", token); err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg config
	fs, _ := serveFlags(&cfg)
	active, err := parseConfigFile(fs, examplePath, data)
	if err != nil {
		t.Fatal(err)
	}
	// The commented-out settings, uncommented, must load too, and show
	// the default.
	var commented strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if m := commentedKey.FindStringSubmatch(line); m != nil {
			commented.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ") + "\n")
		}
	}
	defaults, err := parseConfigFile(fs, examplePath+" (commented-out lines)", []byte(commented.String()))
	if err != nil {
		t.Fatal(err)
	}
	named := make(map[string]string)
	for _, s := range active {
		named[s.name] = "set"
	}
	for _, s := range defaults {
		if named[s.name] != "" {
			t.Errorf("%s is both set and commented out", s.name)
		}
		named[s.name] = "commented"
		if f := fs.Lookup(s.name); s.value != f.DefValue {
			t.Errorf("commented-out %s: %q, but the default is %q", s.name, s.value, f.DefValue)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			if named[f.Name] != "" {
				t.Errorf("the example sets %s", f.Name)
			}
			return
		}
		if named[f.Name] == "" {
			t.Errorf("serve flag --%s is missing from %s (set it, or show its default commented out)", f.Name, examplePath)
		}
	})
}

func TestClosestFlag(t *testing.T) {
	var cfg config
	fs, _ := serveFlags(&cfg)
	for key, want := range map[string]string{
		"nodeid": "node-id", "node_id": "node-id", "NODE-ID": "node-id", "memcache": "memcached",
		"sip_max_message": "sip-max-message", "register-rates": "register-rate", "listen": "", "config": "",
	} {
		if got := closestFlag(fs, key); got != want {
			t.Errorf("closestFlag(%q) = %q, want %q", key, got, want)
		}
	}
}
