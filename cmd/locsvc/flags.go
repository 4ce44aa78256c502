package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// envPrefix: every flag can also be set from the environment as
// LOCSVC_<FLAG>, dashes as underscores (LOCSVC_NODE_ID).
const envPrefix = "LOCSVC_"

// envName is the environment variable that may set flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseFlags sets fs from, in order of precedence, the arguments, the
// environment and, when fs has a --config flag and it (or LOCSVC_CONFIG)
// names a file, that config file; the flags' defaults come last.
//
// The arguments are parsed first so that the config file's name is known
// and so that what they set is never overwritten: each lower source sets
// only the flags no higher source gave.
//
// serve takes no positional arguments: one is a mistake (a flag whose
// dashes were lost, a value split by the shell) that would otherwise pass
// in silence.
func parseFlags(fs *flag.FlagSet, args []string) error {
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%s takes flags only; %q is not one", fs.Name(), rest[0])
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var fromEnv []string
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, serr)
			}
			fromEnv = append(fromEnv, f.Name)
		}
	})
	if err != nil {
		return err
	}
	cf := fs.Lookup(configFlag)
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	for _, name := range fromEnv {
		given[name] = true
	}
	return applyConfigFile(fs, cf.Value.String(), given)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// joinErrs joins err and more into one error (nil when all are nil).
func joinErrs(err error, more []error) error {
	return errors.Join(append([]error{err}, more...)...)
}
