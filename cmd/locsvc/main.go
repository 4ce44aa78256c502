// Command locsvc is the distributed SIP location service: `locsvc serve`
// runs a node; the other subcommands talk to a running node over gRPC.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `locsvc — distributed SIP location service

Usage:
  locsvc serve [flags]                 run a node (locsvc serve -h lists the flags)
  locsvc register [flags] AOR [CONTACT...]
                                       register contacts (none: query; --wildcard: remove all)
  locsvc lookup [flags] AOR            print the AoR's current bindings
  locsvc status [flags]                print the node's view of the cluster
  locsvc passwd USER REALM             print credentials-file lines (password on stdin)
  locsvc version                       print the version

Every serve flag may also come from the environment as LOCSVC_<FLAG>
(dashes as underscores), e.g. LOCSVC_NODE_ID=node1, or from a YAML file
given by --config FILE (or LOCSVC_CONFIG) whose keys are the flag names,
e.g. node-id: node1 (docs/config.md). The command line wins over the
environment, which wins over the file.
`

// usageError marks a mistake in how locsvc was called (exit status 2).
type usageError struct{ error }

// Unwrap lets main see flag.ErrHelp through it: -h is not a mistake.
func (e usageError) Unwrap() error { return e.error }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(args)
	case "register":
		err = registerCmd(args)
	case "lookup":
		err = lookupCmd(args)
	case "status":
		err = statusCmd(args)
	case "passwd":
		err = passwdCmd(args)
	case "version":
		fmt.Println(version)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
	default:
		err = usageError{fmt.Errorf("unknown command %q", cmd)}
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
