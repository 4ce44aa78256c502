package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// drainTimeout is drain's default --timeout: the node's hand-off may take
// up to its 60 s bound, and the answer comes only once it is over.
const drainTimeout = 90 * time.Second

// drainCmd takes a node out of the cluster for good (AdminService.Drain).
//
// The node to drain is named twice on purpose, by --server and by its id:
// a drain is not undone, and a node whose id does not match refuses, so a
// mistyped address drains nothing. The call waits for the hand-off and
// prints what it did, because that is the moment the operator needs to
// know the records are safe; the node then leaves gossip and its process
// exits 0 on its own, so no second step (a SIGTERM, which would be a
// restart) is needed.
func drainCmd(args []string) error {
	c, rest, err := parseClient("drain", args, func(fs *flag.FlagSet) {
		f := fs.Lookup("timeout")
		f.DefValue = drainTimeout.String()
		_ = f.Value.Set(f.DefValue)
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{errors.New("drain: need exactly one NODE_ID, the id of the node at --server")}
	}
	conn, ctx, cancel, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	defer cancel()
	res, err := locsvcv1.NewAdminServiceClient(conn).Drain(ctx, &locsvcv1.DrainRequest{NodeId: rest[0]})
	if status.Code(err) == codes.DeadlineExceeded {
		return fmt.Errorf("no answer within --timeout %v: if %s accepted the drain it is still handing off, and exits once done (locsvc status on another node shows it leave)", c.timeout, rest[0])
	}
	if err != nil {
		return c.callError(err)
	}
	if c.json {
		if err := printJSON(res); err != nil {
			return err
		}
	} else {
		fmt.Printf("%s handed off: %d records read from its shards, %d copied to their new owners, %d failures; it is leaving the cluster and its process exits\n",
			res.NodeId, res.KeysScanned, res.KeysCopied, res.Failures)
	}
	if res.Failures > 0 || !res.Complete {
		return fmt.Errorf("the hand-off of %s was incomplete (complete=%v, %d failures): records it missed keep their other replicas, which repair on the remaining nodes copies again; check locsvc status there", res.NodeId, res.Complete, res.Failures)
	}
	return nil
}
