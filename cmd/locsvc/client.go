package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/internal/apitoken"
	"github.com/locsvc/locsvc/node"
)

// clientFlags are shared by the subcommands that call a running node.
type clientFlags struct {
	server  string
	timeout time.Duration
	json    bool
	// TLS towards a node serving with --tls-cert (and --tls-client-ca).
	ca, cert, key string
	token         string // --api-token: a file whose first token is sent
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", node.DefaultConfig().GRPC, "gRPC address of a locsvc node (env LOCSVC_GRPC)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "call timeout")
	fs.BoolVar(&c.json, "json", false, "print the answer as JSON")
	fs.StringVar(&c.ca, "ca", "", "PEM CA bundle verifying the node's certificate: connect over TLS (env LOCSVC_CA)")
	fs.StringVar(&c.cert, "cert", "", "PEM client certificate, for a node that requires one (env LOCSVC_CERT)")
	fs.StringVar(&c.key, "key", "", "PEM private key of --cert (env LOCSVC_KEY)")
	fs.StringVar(&c.token, "api-token", "", "file of API tokens, for a node serving with --api-token; the first is sent (env LOCSVC_API_TOKEN)")
}

// clientEnvFlags may come from the environment (LOCSVC_CA, ...). The other
// client flags do not: LOCSVC_TIMEOUT or LOCSVC_JSON set for a node would
// change what a script calling locsvc lookup prints.
// LOCSVC_API_TOKEN is the variable serve reads too, so one setting
// serves a node and the commands run beside it.
var clientEnvFlags = []string{"ca", "cert", "key", "api-token"}

// call dials the node and runs fn on the connection with the call's
// context (--timeout); a failed call is explained by callError.
func (c *clientFlags) call(fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	conn, ctx, cancel, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	defer cancel()
	if err := fn(ctx, conn); err != nil {
		return c.callError(err)
	}
	return nil
}

func (c *clientFlags) dial() (*grpc.ClientConn, context.Context, context.CancelFunc, error) {
	if c.server == node.DefaultConfig().GRPC {
		if env := os.Getenv("LOCSVC_GRPC"); env != "" {
			c.server = env
		}
	}
	creds := insecure.NewCredentials()
	conf, err := clientTLS(c.ca, c.cert, c.key, "--")
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	if conf != nil {
		creds = credentials.NewTLS(conf)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if c.token != "" {
		tokens, err := apitoken.Load(c.token)
		if err != nil {
			return nil, nil, nil, usageError{fmt.Errorf("--api-token: %v", err)}
		}
		opts = append(opts, grpc.WithPerRPCCredentials(api.BearerToken(func() string { return tokens[0] })))
	}
	conn, err := grpc.NewClient(c.server, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if c.timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), c.timeout)
	}
	return conn, ctx, cancel, nil
}

// parseClient parses a client subcommand's flags (the shared ones and those
// extra adds) wherever they stand among its arguments, and returns the
// positional arguments.
func parseClient(name string, args []string, extra func(*flag.FlagSet)) (*clientFlags, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	setUsage(fs, name)
	var c clientFlags
	c.register(fs)
	if extra != nil {
		extra(fs)
	}
	for _, name := range clientEnvFlags {
		if v, ok := os.LookupEnv(envName(name)); ok {
			if err := fs.Set(name, v); err != nil {
				return nil, nil, usageError{fmt.Errorf("%s: %v", envName(name), err)}
			}
		}
	}
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return &c, rest, nil
}

func registerCmd(args []string) error {
	var expires int64 = -1
	var callID, userAgent string
	var cseq uint
	var wildcard bool
	c, rest, err := parseClient("register", args, func(fs *flag.FlagSet) {
		fs.Int64Var(&expires, "expires", -1, "Expires header in seconds (default: the server's)")
		fs.StringVar(&callID, "call-id", "", "Call-ID (default: a fresh one)")
		fs.UintVar(&cseq, "cseq", 1, "CSeq number")
		fs.BoolVar(&wildcard, "wildcard", false, "Contact: * (needs --expires 0)")
		fs.StringVar(&userAgent, "user-agent", "locsvc-cli", "User-Agent")
	})
	if err != nil {
		return err
	}
	if len(rest) < 1 {
		return usageError{errors.New("register: need AOR [CONTACT...]")}
	}
	if callID == "" {
		callID = fmt.Sprintf("cli-%d@locsvc", time.Now().UnixNano())
	}
	req := &locsvcv1.RegisterRequest{
		Aor: rest[0], Wildcard: wildcard, CallId: callID, Cseq: uint32(cseq), UserAgent: userAgent,
	}
	if expires >= 0 {
		req.Expires = &expires
	}
	for _, ct := range rest[1:] {
		req.Contacts = append(req.Contacts, &locsvcv1.Contact{Uri: strings.Trim(ct, "<>")})
	}
	var res *locsvcv1.RegisterResponse
	if err := c.call(func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		res, err = locsvcv1.NewLocationServiceClient(conn).Register(ctx, req)
		return err
	}); err != nil {
		return err
	}
	return printBindings(c, res, res.Aor, res.Bindings)
}

func lookupCmd(args []string) error {
	c, rest, err := parseClient("lookup", args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{errors.New("lookup: need exactly one AOR")}
	}
	var res *locsvcv1.LookupResponse
	if err := c.call(func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		res, err = locsvcv1.NewLocationServiceClient(conn).Lookup(ctx, &locsvcv1.LookupRequest{Aor: rest[0]})
		return err
	}); err != nil {
		return err
	}
	return printBindings(c, res, res.Aor, res.Bindings)
}

// callError explains a failed call. Every Unavailable a node answers
// carries a SipError detail; one without it came from the connection
// (node down, TLS handshake refused, a plaintext client at a TLS node), and
// "no replica reachable" would send the operator to the wrong place. An
// Unauthenticated is the node's API protection: the token is what to fix.
func (c *clientFlags) callError(err error) error {
	st, ok := status.FromError(err)
	switch {
	case ok && st.Code() == codes.Unavailable && len(st.Details()) == 0:
		return fmt.Errorf("cannot reach %s: %s", c.server, st.Message())
	case ok && st.Code() == codes.Unauthenticated:
		return fmt.Errorf("%s refused the call: %s (its token file: --api-token FILE or LOCSVC_API_TOKEN)", c.server, st.Message())
	}
	return api.FromStatus(err)
}

func printBindings(c *clientFlags, msg proto.Message, aor string, bs []*locsvcv1.Binding) error {
	if c.json {
		return printJSON(msg)
	}
	if len(bs) == 0 {
		fmt.Printf("%s: no bindings\n", aor)
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n", aor)
	fmt.Fprintln(tw, "CONTACT\tEXPIRES\tQ\tNODE\tUSER-AGENT")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%d\t%.3g\t%s\t%s\n", b.Uri, b.Expires, b.Q, b.Node, b.UserAgent)
	}
	return tw.Flush()
}

func statusCmd(args []string) error {
	c, rest, err := parseClient("status", args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError{errors.New("status: takes no arguments")}
	}
	var st *locsvcv1.StatusResponse
	if err := c.call(func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		st, err = locsvcv1.NewClusterServiceClient(conn).Status(ctx, &locsvcv1.StatusRequest{})
		return err
	}); err != nil {
		return err
	}
	if c.json {
		return printJSON(st)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "node %s (version %s), store %s, R=%d\n\n", st.NodeId, st.Version, st.Store, st.Replicas)
	fmt.Fprintln(tw, "MEMBER\tSTATE\tALIVE\tGRPC\tSIP\tZONE")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", m.NodeId, m.State, m.Alive, m.GrpcAddr, m.SipAddr, m.Zone)
	}
	fmt.Fprintln(tw, "\nSHARD\tNODE\tHEALTHY\tOWNERSHIP")
	for _, s := range st.Shards {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%.1f%%\n", s.Id, s.NodeId, s.Healthy, s.Ownership*100)
	}
	if r := st.Repair; r != nil {
		fmt.Fprintf(tw, "\nrepair: running=%v passes=%d scanned=%d copied=%d failures=%d\n",
			r.Running, r.Passes, r.KeysScanned, r.KeysCopied, r.Failures)
	}
	return tw.Flush()
}

func printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true}.Marshal(m)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
