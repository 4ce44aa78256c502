package main

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseInterleaved(t *testing.T) {
	type got struct {
		Expires  int64
		Server   string
		JSON     bool
		Timeout  time.Duration
		Wildcard bool
		Rest     []string
	}
	def := got{Expires: -1, Server: "s0", Timeout: time.Second}
	with := func(f func(*got)) got { g := def; f(&g); return g }
	for _, tc := range []struct {
		name string
		args []string
		want got
		err  string // substring of the error; "" for none
	}{
		{"nothing", nil, def, ""},
		{"flags first", []string{"--expires", "5", "sip:a@x", "sip:c@y"},
			with(func(g *got) { g.Expires = 5; g.Rest = []string{"sip:a@x", "sip:c@y"} }), ""},
		{"flags last", []string{"sip:a@x", "sip:c@y", "--expires", "5"},
			with(func(g *got) { g.Expires = 5; g.Rest = []string{"sip:a@x", "sip:c@y"} }), ""},
		{"flags between", []string{"sip:a@x", "-server", "s1", "sip:c@y", "--json"},
			with(func(g *got) { g.Server = "s1"; g.JSON = true; g.Rest = []string{"sip:a@x", "sip:c@y"} }), ""},
		{"single dash equals", []string{"sip:a@x", "-expires=7"},
			with(func(g *got) { g.Expires = 7; g.Rest = []string{"sip:a@x"} }), ""},
		{"double dash equals", []string{"--timeout=2s", "sip:a@x"},
			with(func(g *got) { g.Timeout = 2 * time.Second; g.Rest = []string{"sip:a@x"} }), ""},
		{"negative value", []string{"sip:a@x", "--expires", "-1"},
			with(func(g *got) { g.Rest = []string{"sip:a@x"} }), ""},
		{"bool takes no separate value", []string{"--json", "sip:a@x"},
			with(func(g *got) { g.JSON = true; g.Rest = []string{"sip:a@x"} }), ""},
		{"bool word after it is positional", []string{"--wildcard", "true"},
			with(func(g *got) { g.Wildcard = true; g.Rest = []string{"true"} }), ""},
		{"bool with equals", []string{"sip:a@x", "--json=false", "-wildcard=true"},
			with(func(g *got) { g.Wildcard = true; g.Rest = []string{"sip:a@x"} }), ""},
		{"double dash ends flags", []string{"--expires", "3", "--", "-bob", "--json"},
			with(func(g *got) { g.Expires = 3; g.Rest = []string{"-bob", "--json"} }), ""},
		{"value that is a double dash", []string{"--server", "--", "sip:a@x"},
			with(func(g *got) { g.Server = "--"; g.Rest = []string{"sip:a@x"} }), ""},
		{"lone dash is positional", []string{"-", "--json"},
			with(func(g *got) { g.JSON = true; g.Rest = []string{"-"} }), ""},
		{"unknown flag", []string{"sip:a@x", "--bogus", "1"}, got{}, "-bogus"},
		{"unknown flag with value", []string{"-nope=1"}, got{}, "-nope"},
		{"missing value", []string{"sip:a@x", "--expires"}, got{}, "needs an argument: -expires"},
		{"bad value", []string{"--expires", "soon"}, got{}, "-expires"},
		{"bad syntax", []string{"---x"}, got{}, "bad flag syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var g got
			fs.Int64Var(&g.Expires, "expires", -1, "")
			fs.StringVar(&g.Server, "server", "s0", "")
			fs.BoolVar(&g.JSON, "json", false, "")
			fs.DurationVar(&g.Timeout, "timeout", time.Second, "")
			fs.BoolVar(&g.Wildcard, "wildcard", false, "")
			rest, err := parseInterleaved(fs, tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g.Rest = rest
			if !reflect.DeepEqual(g, tc.want) {
				t.Fatalf("got %+v\nwant %+v", g, tc.want)
			}
		})
	}
}

func TestParseInterleavedHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"sip:a@x", "--help"}, {"sip:a@x", "-h", "sip:b@y"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Bool("json", false, "")
		if _, err := parseInterleaved(fs, args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: err = %v, want flag.ErrHelp", args, err)
		}
	}
}

// The report that started this: flags after the contacts were sent as
// contacts.
func TestParseClientFlagsAfterContacts(t *testing.T) {
	var expires int64 = -1
	var wildcard bool
	c, rest, err := parseClient("register",
		[]string{"sip:alice@example.com", "sip:x@192.0.2.1", "--expires", "5", "--json", "--wildcard", "--server=n1:7070"},
		func(fs *flag.FlagSet) {
			fs.Int64Var(&expires, "expires", -1, "")
			fs.BoolVar(&wildcard, "wildcard", false, "")
		})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sip:alice@example.com", "sip:x@192.0.2.1"}; !reflect.DeepEqual(rest, want) {
		t.Errorf("rest = %q, want %q", rest, want)
	}
	if expires != 5 || !wildcard || !c.json || c.server != "n1:7070" {
		t.Errorf("expires=%d wildcard=%v json=%v server=%q", expires, wildcard, c.json, c.server)
	}
}

func TestParseClientUnknownFlagIsUsageError(t *testing.T) {
	_, _, err := parseClient("lookup", []string{"sip:a@x", "--bogus"}, nil)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-bogus") {
		t.Fatalf("err = %v (%T), want a usageError naming -bogus", err, err)
	}
}

func TestEveryCommandHasOneUsageLine(t *testing.T) {
	var b strings.Builder
	writeUsage(&b)
	for _, c := range commands {
		n := strings.Count(b.String(), "\n  locsvc "+c.name+" ") + strings.Count(b.String(), "\n  locsvc "+c.name+"\n")
		if n != 1 {
			t.Errorf("locsvc help shows %d lines for %q, want 1", n, c.name)
		}
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "  locsvc ") {
			t.Errorf("continuation line in the command list: %q", line)
		}
	}
}
