package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// configFlag names the flag that points at a config file. parseFlags
// reads a config file only for a FlagSet that defines it (serve does), so
// the subcommands that talk to a node are unaffected.
const configFlag = "config"

// applyConfigFile sets fs's flags from the YAML file at path. Its keys
// are the flag names themselves, so every flag, present and future, can
// be set in a file without code of its own; each value goes through the
// flag's own Set, so a file cannot express anything the command line
// cannot. Flags named in skip (already given on the command line or in
// the environment, which win) are checked but left alone.
func applyConfigFile(fs *flag.FlagSet, path string, skip map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	settings, err := parseConfigFile(fs, path, data)
	if err != nil {
		return err
	}
	for _, s := range settings {
		if skip[s.name] {
			continue
		}
		if err := fs.Set(s.name, s.value); err != nil {
			return fmt.Errorf("%s:%d: %s: invalid value %q: %v", path, s.line, s.name, s.value, err)
		}
	}
	return nil
}

// setting is one key of a config file, as the flag's string form.
type setting struct {
	name, value string
	line        int
}

// parseConfigFile turns a config file into flag settings, in file order.
// It checks the keys and the shape of each value, not the value itself:
// that is the flag's job.
func parseConfigFile(fs *flag.FlagSet, path string, data []byte) ([]setting, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty, or only comments
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document; a config file holds one mapping of flag names to values", path)
	}
	root := resolveAlias(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolveAlias(root.Content[0])
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of flag names to values (node-id: node1), got %s",
			path, root.Line, kindName(root))
	}
	var out []setting
	seen := make(map[string]int)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolveAlias(root.Content[i]), resolveAlias(root.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s:%d: a key must be a flag name, got %s", path, k.Line, kindName(k))
		}
		name := k.Value
		if name == configFlag {
			return nil, fmt.Errorf("%s:%d: %q cannot be set inside a config file (it names the file)", path, k.Line, name)
		}
		f := fs.Lookup(name)
		if f == nil {
			msg := fmt.Sprintf("%s:%d: unknown key %q: not a flag of locsvc %s", path, k.Line, name, fs.Name())
			if s := closestFlag(fs, name); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return nil, errors.New(msg)
		}
		if prev, ok := seen[name]; ok {
			return nil, fmt.Errorf("%s:%d: %s is set twice (first on line %d)", path, k.Line, name, prev)
		}
		seen[name] = k.Line
		value, err := flagString(f, v)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", path, v.Line, name, err)
		}
		out = append(out, setting{name: name, value: value, line: v.Line})
	}
	return out, nil
}

// flagString is a YAML value in the form f's Set takes: a scalar as
// written (numbers, booleans and durations parse as the flag parses them),
// a list joined with commas for the comma-separated flags, null as empty.
func flagString(f *flag.Flag, v *yaml.Node) (string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return "", nil
		}
		return v.Value, nil
	case yaml.SequenceNode:
		if !isListFlag(f) {
			return "", fmt.Errorf("a list, but --%s takes one value", f.Name)
		}
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			it = resolveAlias(it)
			if it.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("list item on line %d is %s; want a plain value", it.Line, kindName(it))
			}
			if it.Tag == "!!null" {
				continue
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), nil
	}
	want := "one value"
	if isListFlag(f) {
		want = "one value or a list"
	}
	return "", fmt.Errorf("got %s, but --%s takes %s", kindName(v), f.Name, want)
}

// isListFlag reports whether f takes a comma-separated list. Flags say so
// in their usage text, which keeps this generic: a new list flag needs no
// change here, only the phrase its -h text should carry anyway.
func isListFlag(f *flag.Flag) bool {
	return strings.Contains(f.Usage, "comma-separated")
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a plain value"
	case yaml.DocumentNode:
		return "a document"
	}
	return "an alias"
}

// closestFlag suggests the flag a mistyped key probably meant: the nearest
// by edit distance, once dashes and underscores are taken as the same, if
// near enough to be a typo rather than a different word.
func closestFlag(fs *flag.FlagSet, key string) string {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimLeft(key, "-"), "_", "-"))
	best, bestD := "", 0
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			return
		}
		if d := editDistance(norm, f.Name); best == "" || d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" || bestD > max(2, len(best)/4) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, bytewise.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
