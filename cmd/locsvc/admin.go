package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// The operators' subcommands (AdminService): dump, rm, counts, what
// kamcmd's ul.dump, ul.rm and stats usrloc are to Kamailio. They dial the
// node as lookup does.

// untimed makes --timeout default to none: a dump or count of a large
// table takes as long as its records take at the node's pace.
func untimed(fs *flag.FlagSet) {
	f := fs.Lookup("timeout")
	f.Usage = "call timeout (0: none; the walk takes records / --rate seconds, Ctrl-C stops it)"
	f.DefValue = "0s"
	_ = f.Value.Set("0s")
}

func dumpCmd(args []string) error {
	var rate uint
	c, rest, err := parseClient("dump", args, func(fs *flag.FlagSet) {
		untimed(fs)
		fs.UintVar(&rate, "rate", 0, "records read a second at most (0, or above the node's --repair-rate: that rate)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError{errors.New("dump: takes no arguments")}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if !c.json {
		fmt.Fprintln(out, "AOR\tCONTACT\tEXPIRES\tQ\tNODE\tUSER-AGENT")
	}
	aors, bindings := 0, 0
	err = c.call(func(ctx context.Context, conn *grpc.ClientConn) error {
		stream, err := locsvcv1.NewAdminServiceClient(conn).Dump(ctx, &locsvcv1.DumpRequest{Rate: uint32(rate)})
		if err != nil {
			return walkError(err)
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return walkError(err)
			}
			aors++
			bindings += len(msg.Bindings)
			if err := printDumped(out, c.json, msg); err != nil {
				return err
			}
		}
	})
	// What came before a failure is printed; the summary says how much.
	out.Flush()
	fmt.Fprintf(os.Stderr, "%d AoRs, %d bindings\n", aors, bindings)
	return err
}

// printDumped writes one AoR: a line per binding, tab-separated (cut -f),
// or with --json the DumpResponse as one line of JSON.
func printDumped(w *bufio.Writer, asJSON bool, msg *locsvcv1.DumpResponse) error {
	if asJSON {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
		if err != nil {
			return err
		}
		w.Write(b)
		return w.WriteByte('\n')
	}
	for _, b := range msg.Bindings {
		fmt.Fprintf(w, "%s\t%s\t%d\t%.3g\t%s\t%s\n", msg.Aor, b.Uri, b.Expires, b.Q, b.Node, b.UserAgent)
	}
	return nil
}

func rmCmd(args []string) error {
	c, rest, err := parseClient("rm", args, nil)
	if err != nil {
		return err
	}
	if len(rest) < 1 {
		return usageError{errors.New("rm: need AOR [CONTACT...]")}
	}
	req := &locsvcv1.RemoveRequest{Aor: rest[0]}
	for _, ct := range rest[1:] {
		req.Contacts = append(req.Contacts, strings.Trim(ct, "<>"))
	}
	var res *locsvcv1.RemoveResponse
	if err := c.call(func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		res, err = locsvcv1.NewAdminServiceClient(conn).Remove(ctx, req)
		return err
	}); err != nil {
		return err
	}
	if c.json {
		if err := printJSON(res); err != nil {
			return err
		}
	} else {
		fmt.Printf("removed %d binding(s) of %s\n", res.Removed, res.Aor)
		if err := printBindings(c, res, res.Aor, res.Bindings); err != nil {
			return err
		}
	}
	if len(res.Unmatched) > 0 {
		// A typo in a contact must not pass for a removal.
		return fmt.Errorf("rm: no live binding of %s has contact %s", res.Aor, strings.Join(res.Unmatched, ", "))
	}
	return nil
}

func countsCmd(args []string) error {
	var rate uint
	c, rest, err := parseClient("counts", args, func(fs *flag.FlagSet) {
		untimed(fs)
		fs.UintVar(&rate, "rate", 0, "records read a second at most (0, or above the node's --repair-rate: that rate)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError{errors.New("counts: takes no arguments")}
	}
	var res *locsvcv1.CountsResponse
	if err := c.call(func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		res, err = locsvcv1.NewAdminServiceClient(conn).Counts(ctx, &locsvcv1.CountsRequest{Rate: uint32(rate)})
		return walkError(err)
	}); err != nil {
		return err
	}
	if c.json {
		return printJSON(res)
	}
	fmt.Printf("aors      %d\nbindings  %d\n", res.Aors, res.Bindings)
	return nil
}

// walkError keeps the node's own words when it could not walk the whole
// table (they name the shard left out, or say the node is stopping),
// which callError would turn into "no replica reachable". Errors of the
// connection (no SipError detail) are left to callError.
func walkError(err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable && len(st.Details()) > 0 {
		return errors.New(st.Message())
	}
	return err
}
