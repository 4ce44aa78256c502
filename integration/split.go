package integration

import "os/exec"

// Split moves hosts to a second switch: they still reach each other but no
// longer the rest, as a rack that lost its uplink does. Cut, by contrast,
// leaves each cut host alone, which a node notices by seeing no other
// member at all; a side of a split keeps a cluster of its own and must
// find the other side again by itself. Reunite undoes Split.
func (hs *Hosts) Split(side ...*Host) {
	hs.t.Helper()
	if exec.Command("ip", "-n", hs.sw, "link", "show", "br1").Run() != nil {
		hs.ip("-n", hs.sw, "link", "add", "br1", "type", "bridge")
		hs.ip("-n", hs.sw, "link", "set", "br1", "up")
	}
	for _, h := range side {
		hs.ip("-n", hs.sw, "link", "set", h.port, "master", "br1")
	}
}

// Reunite puts hosts moved by Split back on the main switch.
func (hs *Hosts) Reunite(side ...*Host) {
	hs.t.Helper()
	for _, h := range side {
		hs.ip("-n", hs.sw, "link", "set", h.port, "master", "br0")
	}
}
