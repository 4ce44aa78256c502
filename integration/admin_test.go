package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// contact2 is the second contact of the users that have two.
func contact2(i int) string { return fmt.Sprintf("sip:user%d@198.51.100.%d:5070", i, i%250+1) }

// dumpGRPC dumps the cluster through n's AdminService: each AoR's
// contacts, sorted; an AoR that comes twice fails the test.
func dumpGRPC(t *testing.T, n *Node) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := locsvcv1.NewAdminServiceClient(n.conn).Dump(ctx, &locsvcv1.DumpRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("dump through %s: %v after %d AoRs", n.ID, err, len(got))
		}
		if _, dup := got[msg.Aor]; dup {
			t.Errorf("%s dumped twice", msg.Aor)
		}
		uris := []string{}
		for _, b := range msg.Bindings {
			uris = append(uris, b.Uri)
		}
		slices.Sort(uris)
		got[msg.Aor] = uris
	}
}

// checkTable compares a dump with the table expected.
func checkTable(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d AoRs, want %d", what, len(got), len(want))
	}
	wrong := 0
	for aor, uris := range want {
		if !slices.Equal(got[aor], uris) {
			if wrong++; wrong <= 3 {
				t.Errorf("%s: %s has %q, want %q", what, aor, got[aor], uris)
			}
		}
	}
	if wrong > 3 {
		t.Errorf("%s: %d AoRs wrong in all", what, wrong)
	}
}

func lookupURIs(t *testing.T, n *Node, aor string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
	if err != nil {
		t.Fatalf("lookup %s through %s: %v", aor, n.ID, err)
	}
	uris := []string{}
	for _, b := range res.Bindings {
		uris = append(uris, b.Uri)
	}
	slices.Sort(uris)
	return uris
}

// Kamailio's ul.dump, ul.rm and stats usrloc against a real cluster: 3
// nodes, each fronting its own memcached, R=2, 10,000 AoRs.
//
//   - A dump through one node (gRPC, the CLI, HTTP) gives each AoR once,
//     with its bindings.
//   - The counts agree with the dump and with the copies memcached holds
//     (R per AoR).
//   - rm through node 1 is seen through node 3; rm with a contact takes only
//     that one; and neither is undone by stale copies put back on the
//     shards behind the store's back, nor by the repair passes a memcached
//     restarted empty sets off.
func TestAdminOperations(t *testing.T) {
	c := StartCluster(t, 3)
	const users, twoContacts = 10000, 50
	start := time.Now()
	if failed := RegisterMany(t, c.Nodes[0], 0, users, 32); failed != 0 {
		t.Fatalf("%d of %d registrations failed", failed, users)
	}
	if failed := parallel(t, 0, twoContacts, 8, func(ctx context.Context, i int) error {
		_, err := c.Nodes[1].Location.Register(ctx, &locsvcv1.RegisterRequest{
			Aor: AoR(i), CallId: fmt.Sprintf("second-%d", i), Cseq: 1, Expires: proto.Int64(3600),
			Contacts: []*locsvcv1.Contact{{Uri: contact2(i)}},
		})
		return err
	}); failed != 0 {
		t.Fatalf("%d second contacts failed", failed)
	}
	t.Logf("registered %d users in %v", users, time.Since(start).Round(time.Millisecond))
	want := map[string][]string{}
	bindings := 0
	for i := range users {
		want[AoR(i)] = []string{Contact(i)}
		if i < twoContacts {
			want[AoR(i)] = append(want[AoR(i)], contact2(i))
			slices.Sort(want[AoR(i)])
		}
		bindings += len(want[AoR(i)])
	}
	keys := Keys(0, users)
	WaitFor(t, 30*time.Second, "every record on its 2 replicas", func() bool {
		n, err := c.underReplicated(c.Ring(), keys, 2, 0)
		return err == nil && n == 0
	})

	// The dump, through node 2, by gRPC, by the CLI and by HTTP.
	start = time.Now()
	checkTable(t, "gRPC dump", dumpGRPC(t, c.Nodes[1]), want)
	t.Logf("gRPC dump of %d AoRs through node2 in %v", users, time.Since(start).Round(time.Millisecond))
	out, err := cli(t, nil, "dump", "--json", "--server", c.Nodes[1].GRPC)
	if err != nil {
		t.Fatalf("locsvc dump: %v\n%.2000s", err, out)
	}
	cliDump := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") {
			if line != fmt.Sprintf("%d AoRs, %d bindings", users, bindings) {
				t.Errorf("locsvc dump summary %q", line)
			}
			continue
		}
		var msg locsvcv1.DumpResponse
		if err := protojson.Unmarshal([]byte(line), &msg); err != nil {
			t.Fatalf("locsvc dump line %q: %v", line, err)
		}
		if _, dup := cliDump[msg.Aor]; dup {
			t.Errorf("locsvc dump: %s twice", msg.Aor)
		}
		for _, b := range msg.Bindings {
			cliDump[msg.Aor] = append(cliDump[msg.Aor], b.Uri)
		}
		slices.Sort(cliDump[msg.Aor])
	}
	checkTable(t, "locsvc dump", cliDump, want)
	resp, err := c.Nodes[1].HTTPClient.Get(c.Nodes[1].HTTPBase + "/v1/dump")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"error"`) {
			t.Errorf("HTTP dump: %s", sc.Text())
		}
		lines++
	}
	resp.Body.Close()
	if lines != users {
		t.Errorf("HTTP dump: %d lines, want %d", lines, users)
	}

	// The counts: the dump's figures, and R copies of each record on the
	// shards.
	counts := func(n *Node) (aors, bindings int) {
		t.Helper()
		out, err := cli(t, nil, "counts", "--json", "--server", n.GRPC)
		var res struct {
			AoRs     int `json:"aors,string"`
			Bindings int `json:"bindings,string"`
		}
		if err != nil || json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("locsvc counts: %v\n%s", err, out)
		}
		return res.AoRs, res.Bindings
	}
	if a, b := counts(c.Nodes[2]); a != users || b != bindings {
		t.Errorf("locsvc counts: %d AoRs and %d bindings, want %d and %d", a, b, users, bindings)
	}
	held := 0
	for _, m := range c.Shards {
		has, err := m.Has(keys)
		if err != nil {
			t.Fatal(err)
		}
		held += len(has)
	}
	if held != 2*users {
		t.Errorf("the shards hold %d copies of %d AoRs, want R=2 each", held, users)
	}

	// Copies of the records about to lose bindings, as their first replica
	// holds them now: stale once rm has run.
	const gone, trimmed = 5, 7
	stale := map[string]*memcache.Item{}
	firsts := map[string]bool{} // shards that are one of the two's first replica
	for _, i := range []int{gone, trimmed} {
		key := locsvc.StoreKey(AoR(i))
		first := c.Ring().ReplicaSet(key, 1, nil)[0].Addr
		firsts[first] = true
		for _, m := range c.Shards {
			if m.Addr == first {
				it, err := m.Client().Get(key)
				if err != nil {
					t.Fatal(err)
				}
				stale[first+" "+key] = it
			}
		}
	}

	// rm through node 1, seen through node 3.
	if out, err := cli(t, nil, "rm", "--server", c.Nodes[0].GRPC, AoR(gone)); err != nil || !strings.Contains(out, "removed 2 binding(s)") {
		t.Fatalf("locsvc rm %s: %v\n%s", AoR(gone), err, out)
	}
	if out, err := cli(t, nil, "rm", "--server", c.Nodes[0].GRPC, AoR(trimmed), "<"+contact2(trimmed)+">"); err != nil || !strings.Contains(out, "removed 1 binding(s)") {
		t.Fatalf("locsvc rm %s %s: %v\n%s", AoR(trimmed), contact2(trimmed), err, out)
	}
	out, err = cli(t, nil, "rm", "--server", c.Nodes[0].GRPC, AoR(9), "sip:nobody@192.0.2.99")
	if err == nil || !strings.Contains(out, "no live binding of "+AoR(9)+" has contact sip:nobody@192.0.2.99") {
		t.Errorf("locsvc rm of a contact the AoR lacks: %v\n%s", err, out)
	}
	want[AoR(trimmed)] = []string{Contact(trimmed)}
	delete(want, AoR(gone))
	bindings -= 3
	check := func(when string) {
		t.Helper()
		for _, n := range c.Nodes {
			if got := lookupURIs(t, n, AoR(gone)); len(got) != 0 {
				t.Errorf("%s: %s through %s: %q, want none", when, AoR(gone), n.ID, got)
			}
			if got := lookupURIs(t, n, AoR(trimmed)); !slices.Equal(got, want[AoR(trimmed)]) {
				t.Errorf("%s: %s through %s: %q, want %q", when, AoR(trimmed), n.ID, got, want[AoR(trimmed)])
			}
		}
	}
	check("after rm")

	// The stale copies go back, behind the store's back, on every shard
	// but the first replica: the other replica (one that missed the
	// removal) and a shard that is no replica (a copy left by an older
	// ring, which repair pushes to the replicas). Reads merge them. Then a
	// memcached that is no record's first replica restarts empty, which
	// sets off a repair pass on every node: it refills that shard from the
	// others, stale copies included.
	var restart *Memcached
	for _, m := range c.Shards {
		if !firsts[m.Addr] {
			restart = m
		}
	}
	for firstKey, it := range stale {
		first, _, _ := strings.Cut(firstKey, " ")
		for _, m := range c.Shards {
			if m.Addr == first {
				continue
			}
			if err := m.Client().Set(it); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("with stale copies on the other shards")
	passes := make([]uint64, len(c.Nodes))
	for i, n := range c.Nodes {
		st, err := n.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		passes[i] = st.Repair.GetPasses()
	}
	restart.Restart()
	WaitFor(t, 60*time.Second, "a repair pass on every node after the restart", func() bool {
		for i, n := range c.Nodes {
			st, err := n.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
			if err != nil || st.Repair.GetPasses() <= passes[i] || st.Repair.GetRunning() {
				return false
			}
		}
		return true
	})
	WaitFor(t, 60*time.Second, "every record back on its 2 replicas", func() bool {
		n, err := c.underReplicated(c.Ring(), keys, 2, 0)
		return err == nil && n == 0
	})
	check("after repair")

	checkTable(t, "dump through node3 after rm and repair", dumpGRPC(t, c.Nodes[2]), want)
	if a, b := counts(c.Nodes[0]); a != users-1 || b != bindings {
		t.Errorf("locsvc counts after rm: %d AoRs and %d bindings, want %d and %d", a, b, users-1, bindings)
	}
}
