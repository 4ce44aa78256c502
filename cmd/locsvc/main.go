// Command locsvc is the distributed SIP location service: `locsvc serve`
// runs a node; the other subcommands talk to a running node over gRPC.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its name, the synopsis of its arguments, the
// one line `locsvc help` shows for it, and what runs it.
type command struct {
	name, synopsis, summary string
	run                     func(args []string) error
}

// commands lists every subcommand in the order `locsvc help` shows them.
// It is filled by init because help itself reads it.
var commands []command

func init() {
	commands = []command{
		{"serve", "[flags]", "run a node (locsvc help serve lists the flags)", serve},
		{"register", "[flags] AOR [CONTACT...]", "register contacts (none: query; --wildcard --expires 0: remove all)", registerCmd},
		{"lookup", "[flags] AOR", "print the AoR's current bindings", lookupCmd},
		{"status", "[flags]", "print the node's view of the cluster", statusCmd},
		{"dump", "[flags]", "print every AoR of the cluster with its bindings (kamcmd ul.dump)", dumpCmd},
		{"rm", "[flags] AOR [CONTACT...]", "remove the AoR's bindings, or only those of CONTACTs, on every replica (kamcmd ul.rm)", rmCmd},
		{"counts", "[flags]", "print how many AoRs and bindings the cluster holds (kamcmd stats usrloc)", countsCmd},
		{"drain", "[flags] NODE_ID", "take the node at --server out of the cluster for good: hand off its records, then it exits", drainCmd},
		{"passwd", "USER REALM", "print credentials-file lines (password on stdin)", passwdMain},
		{"version", "", "print the version", versionCmd},
		{"help", "[COMMAND]", "print this, or COMMAND's flags", helpCmd},
	}
}

// lookupCommand finds a subcommand by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

const usageFooter = `
Flags may come before, after or between a subcommand's arguments; "--"
ends them (everything after it is an argument).

Every serve flag may also come from the environment as LOCSVC_<FLAG>
(dashes as underscores), e.g. LOCSVC_NODE_ID=node1, or from a YAML file
given by --config FILE (or LOCSVC_CONFIG) whose keys are the flag names,
e.g. node-id: node1 (docs/config.md). The command line wins over the
environment, which wins over the file.
`

// writeUsage prints the overview: one line per subcommand.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "locsvc — distributed SIP location service\n\nUsage:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace("locsvc "+c.name+" "+c.synopsis), c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, usageFooter)
}

// setUsage makes fs's -h print the subcommand's synopsis, its summary and,
// when it has any, its flags.
func setUsage(fs *flag.FlagSet, name string) {
	c, _ := lookupCommand(name)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("locsvc "+c.name+" "+c.synopsis), c.summary)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
}

// parseInterleaved parses the flags in args into fs wherever they stand,
// before, after or between the positional arguments, and returns the
// positional arguments in order. flag.FlagSet.Parse stops at the first
// positional argument, so `register AOR CONTACT --expires 5` would read
// "--expires" and "5" as contacts.
//
// "--" ends the flags: everything after it is positional. A lone "-" is
// positional. A flag written -x=v or --x=v is one token; a boolean flag
// (one whose Value has IsBoolFlag() true) takes no separate value; any
// other defined flag takes the next token as its value, whatever it looks
// like (so --expires -1 works). Unknown flags, -h and -help are left to
// fs.Parse, which reports them as it always does (the error names the
// flag; -h gives flag.ErrHelp).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(a[1:], "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBoolFlag(f) {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	// Every token handed to Parse was a flag or a flag's value, so Parse
	// consumed them all; anything left would be a bug above, kept rather
	// than dropped.
	return append(positional, fs.Args()...), nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseNoFlags parses the arguments of a subcommand that has no flags of
// its own, so that -h prints its usage and "--" works as elsewhere.
func parseNoFlags(name string, args []string) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	setUsage(fs, name)
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, usageError{err}
	}
	return rest, nil
}

// passwdMain gives passwd the same argument handling as the other
// subcommands (-h, "--" for a USER that starts with a dash).
func passwdMain(args []string) error {
	rest, err := parseNoFlags("passwd", args)
	if err != nil {
		return err
	}
	return passwdCmd(rest)
}

func versionCmd(args []string) error {
	rest, err := parseNoFlags("version", args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError{errors.New("version: takes no arguments")}
	}
	fmt.Println(version)
	return nil
}

// helpCmd prints the overview, or one subcommand's usage and flags (as
// `locsvc COMMAND -h` does).
func helpCmd(args []string) error {
	rest, err := parseNoFlags("help", args)
	if err != nil {
		return err
	}
	switch len(rest) {
	case 0:
		writeUsage(os.Stdout)
		return nil
	case 1:
		c, ok := lookupCommand(rest[0])
		if !ok {
			return usageError{fmt.Errorf("help: unknown command %q", rest[0])}
		}
		return c.run([]string{"-h"})
	default:
		return usageError{errors.New("help: takes at most one COMMAND")}
	}
}

// usageError marks a mistake in how locsvc was called (exit status 2).
type usageError struct{ error }

// Unwrap lets main see flag.ErrHelp through it: -h is not a mistake.
func (e usageError) Unwrap() error { return e.error }

func main() {
	if len(os.Args) < 2 {
		writeUsage(os.Stderr)
		os.Exit(2)
	}
	var err error
	switch name, args := os.Args[1], os.Args[2:]; name {
	case "-h", "-help", "--help":
		writeUsage(os.Stdout)
	default:
		if c, ok := lookupCommand(name); ok {
			err = c.run(args)
		} else {
			err = usageError{fmt.Errorf("unknown command %q (locsvc help lists them)", name)}
		}
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, "locsvc:", err)
	var ue usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}
